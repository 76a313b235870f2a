"""The contract every Executor must pass (design §5): the local ones now, a distributed one later.

An implementation is added by extending ``EXECUTORS``; the tests only use
the abstract interface (submit / wait / running / kill / shutdown) with
plain TaskSpec and TaskResult objects.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import pytest

from helpers import FLOWS

from cafstore.runner.execution.executors.local import LocalForkExecutor, LocalSpawnExecutor
from cafstore.runner.graph import graph_from_class
from cafstore.runner.execution.runs import start_run
from cafstore.runner.execution.spec import TaskResult, TaskSpec
from cafstore.store import Store


def _load_flow():
    spec = importlib.util.spec_from_file_location("contract_flow", FLOWS / "contract.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["contract_flow"] = module  # inspect (the graph reader) finds the source through it
    spec.loader.exec_module(module)
    return module.ContractFlow


FLOW = _load_flow()
EXECUTORS = {
    "fork": lambda: LocalForkExecutor(FLOW, kill_grace=1.0, echo=False),
    "spawn": lambda: LocalSpawnExecutor(kill_grace=1.0),
}


@pytest.fixture(params=sorted(EXECUTORS))
def executor(request):
    made = EXECUTORS[request.param]()
    yield made
    made.shutdown()


@pytest.fixture
def run(tmp_path):
    store = Store(tmp_path / "store")
    graph = graph_from_class(FLOW)
    info = start_run(store, "ContractFlow", str(FLOWS / "contract.py"), graph.to_dict(), {}, "tester", [])
    store.close()
    return store, graph, info


def spec_for(run, step="start", task_id=1, parents=(), stack=()):
    store, graph, info = run
    node = graph[step]
    return TaskSpec(flow_name="ContractFlow", run_id=info.run_id, step=step, task_id=task_id, attempt=0,
                    max_attempts=1, store_path=str(store.path), flow_file=str(FLOWS / "contract.py"),
                    flow_class="ContractFlow", cwd=str(FLOWS), code=str(info.code),
                    node={"type": node.type, "out_funcs": list(node.out_funcs), "foreach": node.foreach_param},
                    params={}, parents=list(parents), parent_steps=["start"] * len(parents),
                    foreach_stack=list(stack), user="tester")


def wait_all(executor, count, timeout=60.0):
    results, deadline = [], time.time() + timeout
    while len(results) < count and time.time() < deadline:
        results += executor.wait(1.0)
    assert len(results) == count, results
    return results


@pytest.fixture
def mode(monkeypatch):
    def set_mode(value):
        monkeypatch.setenv("CONTRACT_MODE", value)
    return set_mode


def test_successful_task_reports_its_record(executor, run, mode):
    mode("ok")
    executor.submit(spec_for(run))
    assert executor.running == 1
    (result,) = wait_all(executor, 1)
    assert isinstance(result, TaskResult) and result.ok and result.num_splits == 3
    assert result.pid > 0 and result.pid != os.getpid()
    store = run[0]
    record = store.get_record(result.record)
    assert record["status"] == "ok" and record["num_splits"] == 3
    assert store.get_ref(f"tasks/ContractFlow/{run[2].run_id:010d}/start/{1:010d}") == result.record
    assert executor.running == 0
    store.close()


def test_parallel_foreach_children(executor, run, mode):
    mode("ok")
    executor.submit(spec_for(run))
    (start,) = wait_all(executor, 1)
    for index in range(3):
        frame = {"step": "start", "var": "items", "index": index, "num_splits": 3, "values": start.foreach_values}
        executor.submit(spec_for(run, "each", 2 + index, [start.record], [frame]))
    results = wait_all(executor, 3)
    assert sorted(r.task_id for r in results) == [2, 3, 4] and all(r.ok for r in results)
    store = run[0]
    assert sorted(store.get_artifact(store.get_record(r.record)["artifacts"]["value"]) for r in results) == [2, 4, 6]
    store.close()


def test_failing_task(executor, run, mode):
    mode("fail")
    executor.submit(spec_for(run))
    (result,) = wait_all(executor, 1)
    assert not result.ok and "asked to fail" in result.error["message"]
    assert "RuntimeError" in result.error["traceback"] and result.record


def test_dead_task(executor, run, mode):
    mode("die")
    executor.submit(spec_for(run))
    (result,) = wait_all(executor, 1)
    assert not result.ok and result.record is None and "exited with code 9" in result.error["message"]


def test_kill_stops_running_tasks(executor, run, mode):
    mode("sleep")
    executor.submit(spec_for(run))
    time.sleep(0.5)
    started = time.time()
    executor.kill()
    assert executor.running == 0 and time.time() - started < 5
    assert executor.wait(0.1) == []


def test_hard_timeout(executor, run, mode):
    mode("sleep")
    executor.submit(spec_for(run), timeout=0.5)
    (result,) = wait_all(executor, 1, timeout=20)
    assert not result.ok and "timeout" in result.error["message"]
