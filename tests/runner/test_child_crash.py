"""A failure of cafstore's own inside a task process reaches the user with its cause.

Before, the child caught everything and exited with status 70, and the
user read "exited with code 70 without reporting a result".  Now the one
child entry point sends a failed result carrying the traceback; failing
that, the traceback as text the parent quotes; failing that, on stderr.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import env_for, run_flow

from cafstore.runner.execution.executors import child
from cafstore.runner.execution.executors.process import LocalProcessExecutor
from cafstore.runner.execution.executors.spawn import CHILD_MODULE
from cafstore.runner.execution.runs import start_run
from cafstore.runner.execution.spec import TaskSpec
from cafstore.runner.graph import graph_from_class
from cafstore.store import Store

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "flows" / "contract.py"


@pytest.mark.parametrize("executor", ["fork", "spawn"])
def test_unsendable_result_shows_the_real_cause(tmp_path, executor):
    """The step's exception cannot be pickled into its result: the run says so, with the traceback."""
    done = run_flow(CONTRACT, "--executor", executor, store=tmp_path / "s", env={"CONTRACT_MODE": "unsendable"})
    assert done.returncode == 1
    assert "internal error" in done.stderr and "cannot pickle" in done.stderr and "Traceback" in done.stderr
    assert "code 70" not in done.stderr and "without reporting a result" not in done.stderr
    assert "had failed before that" in done.stderr and "headline cannot be pickled" in done.stderr


def _spec(tmp_path) -> TaskSpec:
    """A real task of the contract flow, in a real store."""
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("crash_contract_flow", CONTRACT)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["crash_contract_flow"] = module
    module_spec.loader.exec_module(module)
    graph = graph_from_class(module.ContractFlow)
    store = Store(tmp_path / "store")
    info = start_run(store, "ContractFlow", str(CONTRACT), graph.to_dict(), {}, "tester", [])
    store.close()
    node = graph["start"]
    return TaskSpec(
        flow_name="ContractFlow",
        run_id=info.run_id,
        step="start",
        task_id=1,
        attempt=0,
        max_attempts=1,
        store_path=str(store.path),
        flow_file=str(CONTRACT),
        flow_class="ContractFlow",
        cwd=str(CONTRACT.parent),
        code=str(info.code),
        node={"type": node.type, "out_funcs": list(node.out_funcs), "foreach": node.foreach_param},
        params={},
        user="tester",
    )


def test_when_nothing_can_be_sent_the_traceback_goes_to_stderr(tmp_path):
    """The last resort: the result pipe is unusable (fd 99 is not open), so the child writes to fd 2."""
    job = pickle.dumps({"spec": _spec(tmp_path), "echo": False})
    done = subprocess.run(
        [sys.executable, "-m", CHILD_MODULE, "99"], input=job, capture_output=True, env=env_for(), timeout=60
    )
    stderr = done.stderr.decode()
    assert done.returncode == child.INTERNAL_ERROR_EXIT
    assert "internal error" in stderr and "Traceback" in stderr and "Bad file descriptor" in stderr
    assert "ContractFlow/" in stderr  # it names the task


def test_child_entry_usage_error():
    done = subprocess.run([sys.executable, "-m", CHILD_MODULE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage:" in done.stderr and "Traceback" not in done.stderr


class _StartedBy(LocalProcessExecutor):
    """Local executor whose processes are started by a test-given function (the public hook)."""

    def __init__(self, start):
        super().__init__(kill_grace=1.0)
        self.start = start

    def start_process(self, spec, channels):
        return self.start(spec)


def _run_one(executor):
    executor.submit(_minimal_spec())
    results = []
    for _ in range(60):
        results += executor.wait(1.0)
        if results:
            break
    executor.shutdown()
    assert len(results) == 1
    return results[0]


def _minimal_spec() -> TaskSpec:
    return TaskSpec(
        flow_name="F",
        run_id=1,
        step="start",
        task_id=1,
        attempt=0,
        max_attempts=1,
        store_path="",
        flow_file="",
        flow_class="F",
        cwd=".",
        code="",
        node={},
        params={},
    )


def test_a_crash_report_is_quoted_in_the_death_message():
    """A child that cannot even read its task sends the traceback as text: the parent quotes it."""

    def start(spec):
        read_end, write_end = os.pipe()
        popen = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE, str(write_end)],
            stdin=subprocess.PIPE,
            pass_fds=(write_end,),
            start_new_session=True,
        )
        os.close(write_end)
        popen.stdin.write(b"this is not a pickled task")
        popen.stdin.close()
        return popen.pid, read_end, popen

    result = _run_one(_StartedBy(start))
    error = result.error
    assert not result.ok and result.record is None and error["internal"] and error["user_error"] is False
    assert "exited with code 70 after an internal error" in error["message"]
    assert "UnpicklingError" in error["message"] and "Traceback" in error["traceback"]


def test_exit_70_without_a_report_points_at_stderr():
    def start(spec):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os._exit(child.INTERNAL_ERROR_EXIT)
        os.close(write_end)
        return pid, read_end, None

    result = _run_one(_StartedBy(start))
    assert "exited with code 70" in result.error["message"] and "stderr" in result.error["message"]
    assert result.error["user_error"] is True and not result.error.get("internal")
