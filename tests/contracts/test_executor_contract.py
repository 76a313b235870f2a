"""The contract every executor must honour (design §5), run over every registered one.

The suite is parametrised over ``executors.names()``: an executor added to
the registry (a distributed one, later) runs these tests unchanged.  They
use only the abstract interface (submit / wait / running / kill / shutdown)
with plain TaskSpec and TaskResult objects, against a real store on disk.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import signal
import sys
import time
from pathlib import Path

import pytest

from cafstore.runner.execution import executors
from cafstore.runner.execution.runs import start_run
from cafstore.runner.execution.spec import TaskResult, TaskSpec
from cafstore.runner.graph import graph_from_class
from cafstore.store import Store

FLOWS = Path(__file__).parent / "flows"
FLOW_FILE = FLOWS / "contract.py"


def _load_flow():
    spec = importlib.util.spec_from_file_location("contract_flow", FLOW_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["contract_flow"] = module  # inspect (the graph reader) finds the source through it
    spec.loader.exec_module(module)
    return module.ContractFlow


FLOW = _load_flow()


@pytest.fixture(params=executors.names())
def executor(request, monkeypatch):
    settings = {}
    if request.param == "dask":  # the session's cluster (tests/daskcluster.py); the tasks get our CONTRACT_*
        settings["scheduler_address"] = request.getfixturevalue("dask_cluster").address
        monkeypatch.setenv("CAFSTORE_DASK_ENV", "CONTRACT_*")
    made = executors.create(request.param, flow_cls=FLOW, kill_grace=1.0, echo=False, **settings)
    yield made
    made.shutdown()


def slots(executor, wanted):
    """How many attempts can run at once, up to ``wanted``: a cluster has as many as its workers' threads."""
    client = getattr(executor, "client", None)
    if client is None:
        return wanted
    return min(wanted, sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()))


@pytest.fixture
def run(tmp_path):
    store = Store(tmp_path / "store")
    graph = graph_from_class(FLOW)
    info = start_run(store, "ContractFlow", str(FLOW_FILE), graph.to_dict(), {}, "tester", [])
    store.close()
    return store, graph, info


def spec_for(run, step="start", task_id=1, parents=(), stack=()):
    store, graph, info = run
    node = graph[step]
    return TaskSpec(
        flow_name="ContractFlow",
        run_id=info.run_id,
        step=step,
        task_id=task_id,
        attempt=0,
        max_attempts=1,
        store_path=str(store.path),
        flow_file=str(FLOW_FILE),
        flow_class="ContractFlow",
        cwd=str(FLOWS),
        code=str(info.code),
        node={"type": node.type, "out_funcs": list(node.out_funcs), "foreach": node.foreach_param},
        params={},
        parents=list(parents),
        parent_steps=["start"] * len(parents),
        foreach_stack=list(stack),
        user="tester",
    )


def wait_all(executor, count, timeout=60.0):
    results, deadline = [], time.time() + timeout
    while len(results) < count and time.time() < deadline:
        results += executor.wait(1.0)
    assert len(results) == count, results
    for result in results:
        assert_plain(result)
    return results


PLAIN = (str, int, float, bool, type(None))


def assert_plain(result):
    """A result is plain data: it pickles without cafstore's classes and comes back equal."""
    assert type(result) is TaskResult

    def check(value, where):
        if isinstance(value, dict):
            for key, item in value.items():
                assert type(key) is str, f"{where}: key {key!r}"
                check(item, f"{where}[{key!r}]")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                check(item, f"{where}[{index}]")
        else:
            assert type(value) in PLAIN, f"{where} is a {type(value).__qualname__}, not plain data"

    check(vars(result), "result")
    assert pickle.loads(pickle.dumps(result)) == result


@pytest.fixture
def env(monkeypatch):
    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))

    return set_env


def start_foreach(executor, run, env, items=3):
    env(CONTRACT_MODE="ok", CONTRACT_ITEMS=items)
    executor.submit(spec_for(run))
    (start,) = wait_all(executor, 1)
    assert start.ok and start.num_splits == items
    return start


def frame(start, index):
    return {
        "step": "start",
        "var": "items",
        "index": index,
        "num_splits": start.num_splits,
        "values": start.foreach_values,
    }


def test_successful_task_reports_its_record(executor, run, env):
    env(CONTRACT_MODE="ok")
    executor.submit(spec_for(run))
    assert executor.running == 1
    (result,) = wait_all(executor, 1)
    assert result.ok and result.num_splits == 3 and result.error is None
    assert result.pid > 0 and result.pid != os.getpid()
    store = run[0]
    record = store.get_record(result.record)
    assert record["status"] == "ok" and record["num_splits"] == 3
    assert store.get_ref(f"tasks/ContractFlow/{run[2].run_id:010d}/start/{1:010d}") == result.record
    assert executor.running == 0
    store.close()


def test_parallel_foreach_children(executor, run, env):
    start = start_foreach(executor, run, env)
    for index in range(3):
        executor.submit(spec_for(run, "each", 2 + index, [start.record], [frame(start, index)]))
    results = wait_all(executor, 3)
    assert sorted(r.task_id for r in results) == [2, 3, 4] and all(r.ok for r in results)
    store = run[0]
    assert sorted(store.get_artifact(store.get_record(r.record)["artifacts"]["value"]) for r in results) == [2, 4, 6]
    store.close()


def test_many_tasks_run_at_once(executor, run, env):
    count = 12
    start = start_foreach(executor, run, env, items=count)
    env(CONTRACT_EACH_SLEEP=1.0)
    for index in range(count):
        executor.submit(spec_for(run, "each", 2 + index, [start.record], [frame(start, index)]))
    assert executor.running == count
    results = wait_all(executor, count, timeout=120)
    assert all(r.ok for r in results) and executor.running == 0
    assert len({r.pid for r in results}) == count  # one process per attempt
    store = run[0]
    spans = []
    for result in results:
        artifacts = store.get_record(result.record)["artifacts"]
        spans.append((store.get_artifact(artifacts["started"]), store.get_artifact(artifacts["finished"])))
    store.close()
    most = max(sum(1 for s, f in spans if s <= moment < f) for moment, _ in spans)
    assert most >= 2, f"the tasks ran one at a time: {sorted(spans)}"


def test_failing_step_is_a_failed_result_with_its_traceback(executor, run, env):
    env(CONTRACT_MODE="fail")
    executor.submit(spec_for(run))
    (result,) = wait_all(executor, 1)
    assert not result.ok and "asked to fail" in result.error["message"]
    assert "RuntimeError" in result.error["traceback"] and "contract.py" in result.error["traceback"]
    assert result.record and run[0].get_record(result.record)["status"] == "failed"
    run[0].close()


def test_os_exit_is_reported_as_died(executor, run, env):
    env(CONTRACT_MODE="die")
    executor.submit(spec_for(run))
    (result,) = wait_all(executor, 1)
    assert not result.ok and result.record is None and result.error["lost"]
    assert "exited with code 9" in result.error["message"]


def test_signal_is_reported_as_died(executor, run, env):
    env(CONTRACT_MODE="signal")
    executor.submit(spec_for(run))
    (result,) = wait_all(executor, 1)
    assert not result.ok and result.record is None and result.error["lost"]
    assert "killed by signal 9 (SIGKILL)" in result.error["message"]


def test_internal_error_is_reported_with_its_cause(executor, run, env):
    """A failure of cafstore's own in the task (here: its result cannot be pickled) shows the real cause."""
    env(CONTRACT_MODE="unsendable")
    executor.submit(spec_for(run))
    (result,) = wait_all(executor, 1)
    error = result.error
    assert not result.ok and error["user_error"] is False and error.get("internal") is True
    assert "cannot pickle" in error["traceback"] and "lock" in error["traceback"]
    assert "internal error" in error["message"] and "code 70" not in error["message"]


def test_hard_timeout_kills_and_reports(executor, run, env):
    env(CONTRACT_MODE="sleep")
    started = time.time()
    executor.submit(spec_for(run), timeout=0.5)
    (result,) = wait_all(executor, 1, timeout=20)
    assert not result.ok and result.record is None and "timeout" in result.error["message"]
    assert "killed" in result.error["message"] and time.time() - started < 15


def test_kill_stops_running_tasks(executor, run, env):
    env(CONTRACT_MODE="sleep")
    executor.submit(spec_for(run))
    time.sleep(0.5)
    started = time.time()
    executor.kill()
    assert executor.running == 0 and time.time() - started < 5
    assert executor.wait(0.1) == []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_stops_every_attempt_and_what_it_started(executor, run, env, tmp_path):
    """kill() stops all attempts and their process groups, even a grandchild that ignores SIGTERM."""
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    env(CONTRACT_MODE="tree", CONTRACT_PIDS=pids_dir)
    count = slots(executor, 3)
    for task_id in range(1, count + 1):
        executor.submit(spec_for(run, task_id=task_id))
    deadline = time.time() + 60
    while len([p for p in pids_dir.iterdir() if not p.name.endswith(".tmp")]) < count and time.time() < deadline:
        time.sleep(0.05)
    pids = [
        int(pid) for path in pids_dir.iterdir() if not path.name.endswith(".tmp") for pid in path.read_text().split()
    ]
    try:
        assert len(pids) == 2 * count, pids
        started = time.time()
        executor.kill()
        assert executor.running == 0 and executor.wait(0.1) == []
        while any(_alive(pid) for pid in pids) and time.time() - started < 5:
            time.sleep(0.05)
        assert not [pid for pid in pids if _alive(pid)], "kill() left processes running"
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
