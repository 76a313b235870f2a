"""In-process tests of the small pieces: parameters, config, current, decorators, log capture."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

from cafstore import JSONType, Parameter, current
from cafstore.exception import CommandLineError, MetaflowExceptionWrapper, ParameterError
from cafstore.runner.authoring.decorators import catch, retry, step, step_options, timeout
from cafstore.runner.authoring.parameters import IncludeFile, ParameterContext, builtin_type_of
from cafstore.runner.execution import logs
from cafstore.runner.execution.config import RunnerConfig

CTX = ParameterContext("F", "me", "p")


def test_type_inference():
    assert builtin_type_of(3) is int and builtin_type_of(2.5) is float and builtin_type_of(True) is bool
    assert builtin_type_of("s") is str and builtin_type_of([1]) is JSONType and builtin_type_of({}) is JSONType
    assert Parameter("x").type is str and Parameter("x", default=1).type is int


def test_conversion_and_precedence():
    p = Parameter("n", default=1)
    assert p.resolve("5", {}, CTX) == 5
    assert p.resolve(None, {"CAFSTORE_RUN_N": "6"}, CTX) == 6
    assert p.resolve("7", {"CAFSTORE_RUN_N": "6"}, CTX) == 7
    assert p.resolve(None, {}, CTX) == 1
    with pytest.raises(ParameterError, match="CAFSTORE_RUN_N"):
        p.resolve(None, {"CAFSTORE_RUN_N": "x"}, CTX)
    assert Parameter("max-size", default=1).env_var == "CAFSTORE_RUN_MAX_SIZE"


def test_json_error_has_position():
    p = Parameter("cfg", type=JSONType)
    with pytest.raises(ParameterError) as info:
        p.resolve('{"a": 1,,}', {}, CTX)
    assert "column 9" in str(info.value) and "'cfg'" in str(info.value)
    assert Parameter("cfg", type=JSONType, default='{"a": 1}').resolve(None, {}, CTX) == {"a": 1}
    assert Parameter("cfg", default={"b": 2}).resolve(None, {}, CTX) == {"b": 2}


def test_callable_default_called_once_with_or_without_context():
    calls = []

    def with_ctx(ctx):
        calls.append(ctx.parameter_name)
        return "v"

    assert Parameter("p", default=with_ctx).resolve(None, {}, CTX) == "v" and calls == ["p"]
    assert Parameter("q", default=lambda: 3, type=int).resolve(None, {}, CTX) == 3


def test_separator_and_custom_type():
    assert Parameter("s", separator=",").resolve("a,b", {}, CTX) == ["a", "b"]
    assert Parameter("s", separator=";", default="x;y").resolve(None, {}, CTX) == ["x", "y"]
    assert Parameter("n", type=int, separator=",").errors
    upper = Parameter("u", type=str.upper)
    assert upper.resolve("abc", {}, CTX) == "ABC"


def test_include_file(tmp_path):
    (tmp_path / "f.txt").write_text("data")
    assert IncludeFile("f").resolve(str(tmp_path / "f.txt"), {}, CTX) == "data"
    assert IncludeFile("f", is_text=False).resolve(str(tmp_path / "f.txt"), {}, CTX) == b"data"
    assert IncludeFile("f").resolve(None, {}, CTX) is None
    assert IncludeFile("f", default=str(tmp_path / "f.txt")).resolve(None, {}, CTX) == "data"
    with pytest.raises(ParameterError, match="Missing required file --f"):
        IncludeFile("f", required=True).resolve(None, {}, CTX)


def test_runner_config():
    assert RunnerConfig.from_env({}).max_workers == 16
    assert RunnerConfig.from_env({}).max_num_splits == 100
    config = RunnerConfig.from_env({"CAFSTORE_RUN_MAX_WORKERS": "3", "CAFSTORE_RUN_MAX_NUM_SPLITS": "7"}, max_workers=5)
    assert (config.max_workers, config.max_num_splits) == (5, 7)
    with pytest.raises(CommandLineError, match="CAFSTORE_RUN_MAX_WORKERS"):
        RunnerConfig.from_env({"CAFSTORE_RUN_MAX_WORKERS": "zero"})
    with pytest.raises(CommandLineError, match="CAFSTORE_START_METHOD"):
        RunnerConfig.from_env({"CAFSTORE_START_METHOD": "thread"})


def test_current_outside_a_run():
    assert current.is_running_flow is False
    assert current.pathspec is None and current.flow_name is None and current.run_id is None
    assert current.get("task_id", "none") is None and "step_name" not in current


def test_decorators_stack_in_any_order():
    @retry(times=4, minutes_between_retries=0)
    @catch(var="e")
    @timeout(minutes=1, seconds=5)
    @step
    def a(self):
        pass

    @step
    @retry
    @catch
    def b(self):
        pass

    oa, ob = step_options(a), step_options(b)
    assert (oa.attempts, oa.minutes_between_retries, oa.catch_var, oa.timeout) == (5, 0.0, "e", 65.0)
    # no delay unless one is given: Metaflow's local runtime retries at once
    assert (ob.attempts, ob.minutes_between_retries, ob.catch, ob.catch_var) == (4, 0.0, True, None)
    assert (oa.max_attempts, ob.max_attempts) == (6, 6)  # @catch's fallback attempts, within Metaflow's limit of 6
    assert a.is_step and b.is_step
    caught = MetaflowExceptionWrapper(ValueError("bad"))
    assert str(caught) == "[no stacktrace]\nbuiltins.ValueError: bad" and caught.exception == "bad"


def test_capture_stamps_lines_when_printed(capfd, monkeypatch):
    # like a task process: Python's streams write to fds 1 and 2 (pytest normally swaps them)
    monkeypatch.setattr(sys, "stdout", open(1, "w", closefd=False))
    monkeypatch.setattr(sys, "stderr", open(2, "w", closefd=False))
    capture = logs.Capture("Flow/1/start/1 (pid 1)")
    capture.start()
    print("one")
    time.sleep(0.3)
    os.write(1, b"two\n")
    print("three", file=sys.stderr)
    out, err = capture.stop()
    echoed = capfd.readouterr()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[Flow/1/start/1 \(pid 1\)\] one$", echoed.out, re.M)
    assert "] three" in echoed.err
    assert logs.strip_stamps(out) == b"one\ntwo\n" and logs.strip_stamps(err) == b"three\n"
    stamps = [line[:26] for line in out.splitlines()]
    from datetime import datetime

    first, second = (datetime.strptime(s.decode(), "%Y-%m-%dT%H:%M:%S.%f") for s in stamps)
    assert (second - first).total_seconds() >= 0.25
