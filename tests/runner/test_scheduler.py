"""The scheduler's decisions, driven through a scripted executor that starts no processes.

:class:`ScriptedExecutor` is an ordinary :class:`Executor`: it records every
``submit`` and ends attempts (oldest or newest first) with the outcome a
test scripts for them: success (with a foreach width for ``start``), a
step failure, or a death.  The store is real (the scheduler writes a
record for an attempt that died), the flow's steps never run.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from typing import Callable, List, Optional

import pytest
from helpers import FLOWS

from cafstore.runner.execution.config import RunnerConfig
from cafstore.runner.execution.executors import Executor, lost_attempt
from cafstore.runner.execution.runs import start_run
from cafstore.runner.execution.scheduler import RunContext, Scheduler
from cafstore.runner.execution.spec import TaskResult, TaskSpec
from cafstore.runner.graph import graph_from_class, validate
from cafstore.schema import task_ref
from cafstore.store import Store, hash_bytes

FLOW_FILE = FLOWS / "scheduling.py"


def _load_flow() -> type:
    spec = importlib.util.spec_from_file_location("scheduling_flow", FLOW_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scheduling_flow"] = module  # the graph reader finds the source through it
    spec.loader.exec_module(module)
    return module.SchedulingFlow


FLOW = _load_flow()
GRAPH = graph_from_class(FLOW)
validate(GRAPH)  # as `run` does: it also works out which split each join closes


def index_of(spec: TaskSpec) -> Optional[int]:
    return spec.foreach_stack[-1]["index"] if spec.foreach_stack else None


def record_of(spec: TaskSpec) -> str:
    """The (made-up) record id the scripted attempt of ``spec`` reports."""
    return str(hash_bytes(f"{spec.pathspec} attempt {spec.attempt}".encode()))


class ScriptedExecutor(Executor):
    """Runs nothing: records submits, ends attempts one per ``wait`` with scripted outcomes.

    ``decide(spec)`` returns ``"ok"``, ``"fail"`` or ``"die"`` (default: all
    succeed); ``splits`` is how many items ``start`` reports; ``newest_first``
    ends the latest submitted attempt first instead of the oldest.
    """

    def __init__(
        self, decide: Callable[[TaskSpec], str] = lambda spec: "ok", splits: int = 3, newest_first: bool = False
    ) -> None:
        self.decide, self.splits, self.newest_first = decide, splits, newest_first
        self.submitted: List[TaskSpec] = []
        self.ended: List[TaskSpec] = []
        self.in_flight: List[TaskSpec] = []
        self.peak = 0
        self.killed = False
        self.ended_before_submit: dict = {}  # task id -> pathspecs ended when it was submitted

    def submit(self, spec: TaskSpec, timeout: Optional[float] = None) -> None:
        self.submitted.append(spec)
        self.ended_before_submit[spec.task_id] = [s.pathspec for s in self.ended]
        self.in_flight.append(spec)
        self.peak = max(self.peak, len(self.in_flight))

    @property
    def running(self) -> int:
        return len(self.in_flight)

    def wait(self, timeout: Optional[float] = None) -> List[TaskResult]:
        if not self.in_flight:
            return []
        spec = self.in_flight.pop(-1 if self.newest_first else 0)
        self.ended.append(spec)
        outcome = self.decide(spec)
        if outcome == "die":
            return [
                lost_attempt(
                    spec,
                    4242,
                    "The task process (pid 4242) was killed by signal 9 (SIGKILL) without reporting a result.",
                )
            ]
        if outcome == "fail":
            error = {
                "type": "RuntimeError",
                "message": "scripted failure",
                "where": "",
                "headline": "",
                "traceback": "Traceback (most recent call last):\nRuntimeError: scripted failure\n",
                "user_error": False,
            }
            return [
                TaskResult(
                    spec.task_id, spec.step, spec.attempt, "failed", record=record_of(spec), error=error, pid=4242
                )
            ]
        assert outcome == "ok", outcome
        splits = self.splits if spec.step == "start" else None
        values = str(hash_bytes(b"the items")) if splits else None
        return [
            TaskResult(
                spec.task_id,
                spec.step,
                spec.attempt,
                "ok",
                record=record_of(spec),
                num_splits=splits,
                foreach_values=values,
                pid=4242,
            )
        ]

    def kill(self) -> None:
        self.killed = True
        self.in_flight.clear()

    def steps(self) -> List[str]:
        return [spec.step for spec in self.submitted]

    def specs(self, step: str) -> List[TaskSpec]:
        return [spec for spec in self.submitted if spec.step == step]


class Outcome:
    def __init__(self, ok: bool, store: Store, run_id: int, out: str, err: str) -> None:
        self.ok, self.store, self.run_id, self.out, self.err = ok, store, run_id, out, err


@pytest.fixture
def schedule(tmp_path):
    """``schedule(executor, max_workers=16, max_num_splits=100)``: one run of SchedulingFlow on it."""
    opened = []

    def run(executor: ScriptedExecutor, max_workers: int = 16, max_num_splits: int = 100) -> Outcome:
        store = Store(tmp_path / "store")
        opened.append(store)
        info = start_run(store, "SchedulingFlow", str(FLOW_FILE), GRAPH.to_dict(), {}, "tester", [])
        ctx = RunContext(info, str(store.path), str(FLOW_FILE), "SchedulingFlow", str(FLOWS), None)
        config = RunnerConfig(max_workers=max_workers, max_num_splits=max_num_splits)
        out, err = io.StringIO(), io.StringIO()
        ok = Scheduler(GRAPH, FLOW, ctx, store, executor, config, out, err).run()
        return Outcome(ok, store, info.run_id, out.getvalue(), err.getvalue())

    yield run
    for store in opened:
        store.close()


def test_every_step_in_graph_order(schedule):
    executor = ScriptedExecutor()
    done = schedule(executor)
    assert done.ok and "Error" not in done.err
    assert executor.steps() == ["start", "work", "work", "work", "gather", "branch", "left", "right", "meet", "end"]
    assert [spec.task_id for spec in executor.submitted] == list(range(1, 11))
    assert all(spec.attempt == 0 for spec in executor.submitted)
    start = executor.submitted[0]
    assert start.parents == [] and [index_of(s) for s in executor.specs("work")] == [0, 1, 2]
    assert all(s.parents == [record_of(start)] for s in executor.specs("work"))
    (branch,) = executor.specs("branch")
    assert [s.parents for s in executor.specs("left") + executor.specs("right")] == [[record_of(branch)]] * 2


@pytest.mark.parametrize("limit", [1, 3])
def test_max_workers_caps_what_runs_at_once(schedule, limit):
    executor = ScriptedExecutor(splits=10)
    assert schedule(executor, max_workers=limit).ok
    assert executor.peak == limit  # reached, never passed
    assert len(executor.specs("work")) == 10


def test_foreach_fans_out_and_its_join_waits_for_every_item(schedule):
    executor = ScriptedExecutor(splits=6, newest_first=True)  # items end out of order
    assert schedule(executor).ok
    work = executor.specs("work")
    assert sorted(index_of(s) for s in work) == list(range(6))
    assert all(s.foreach_stack[-1]["num_splits"] == 6 for s in work)
    (gather,) = executor.specs("gather")
    assert set(executor.ended_before_submit[gather.task_id]) >= {s.pathspec for s in work}
    by_index = sorted(work, key=index_of)
    assert gather.parents == [record_of(s) for s in by_index]  # in foreach order, not in finishing order
    assert gather.parent_steps == ["work"] * 6


def test_static_join_waits_for_both_branches_in_branch_order(schedule):
    executor = ScriptedExecutor(newest_first=True)  # right ends before left
    assert schedule(executor).ok
    (left,), (right,), (meet,) = executor.specs("left"), executor.specs("right"), executor.specs("meet")
    ended = executor.ended_before_submit[meet.task_id]
    assert left.pathspec in ended and right.pathspec in ended
    assert ended.index(right.pathspec) < ended.index(left.pathspec)
    assert meet.parents == [record_of(left), record_of(right)] and meet.parent_steps == ["left", "right"]


def test_a_failed_attempt_is_retried_until_it_succeeds(schedule):
    executor = ScriptedExecutor(lambda s: "fail" if s.step == "work" and index_of(s) == 1 and s.attempt < 2 else "ok")
    done = schedule(executor)
    assert done.ok
    attempts = [s for s in executor.specs("work") if index_of(s) == 1]
    assert [s.attempt for s in attempts] == [0, 1, 2]
    assert len({s.task_id for s in attempts}) == 1  # the same task, attempted again
    assert [s.previous_attempt for s in attempts] == [None, record_of(attempts[0]), record_of(attempts[1])]
    assert done.out.count("Retrying now") == 2


def test_retries_run_out_and_the_run_fails(schedule):
    executor = ScriptedExecutor(lambda s: "fail" if s.step == "work" and index_of(s) == 0 else "ok")
    done = schedule(executor)
    assert not done.ok
    assert [s.attempt for s in executor.specs("work") if index_of(s) == 0] == [0, 1, 2]  # 1 + @retry(times=2)
    assert "gather" not in executor.steps()
    assert "Step 'work' failed" in done.err and "attempt 3 of 3" in done.err and "scripted failure" in done.err


def test_a_failure_starts_nothing_new_but_lets_running_tasks_finish(schedule):
    executor = ScriptedExecutor(lambda s: "fail" if s.step == "left" else "ok")
    done = schedule(executor)
    assert not done.ok and not executor.killed
    assert executor.steps()[-2:] == ["left", "right"]  # right was running: it ended, nothing followed
    assert executor.specs("right")[0] in executor.ended and executor.running == 0
    assert "meet" not in executor.steps() and "end" not in executor.steps()
    assert "Step 'left' failed" in done.err


def test_a_died_attempt_is_retried_then_recorded(schedule):
    executor = ScriptedExecutor(lambda s: "die" if s.step == "work" and index_of(s) == 2 else "ok")
    done = schedule(executor)
    assert not done.ok
    attempts = [s for s in executor.specs("work") if index_of(s) == 2]
    assert [s.attempt for s in attempts] == [0, 1, 2]
    assert all(s.previous_attempt for s in attempts[1:])  # the records the scheduler wrote for the dead ones
    record = done.store.get_record(
        done.store.get_ref(task_ref("SchedulingFlow", done.run_id, "work", attempts[0].task_id))
    )
    assert record["status"] == "failed" and record["attempt"] == 2
    assert "killed by signal 9" in record["exception"]["message"]
    assert "task died" in done.err and "killed by signal 9" in done.err


def test_too_wide_a_foreach_starts_none_of_it(schedule):
    executor = ScriptedExecutor(splits=150)
    done = schedule(executor, max_num_splits=100)
    assert not done.ok and executor.steps() == ["start"]
    assert "--max-num-splits 150" in done.err
