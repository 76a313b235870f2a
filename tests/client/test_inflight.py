"""The task running in this process (cafstore.client.inflight): shown in its own run and store only,
and only until it is cleared. The runner registers it for the step's duration; these tests register
a provisional record by hand against real runs."""

from __future__ import annotations

import time

import pytest

from cafstore import Run, Step, Task, schema
from cafstore.client import inflight
from cafstore.exception import NotFound


def _record(real_store, step: str, task_id: int) -> dict:
    start = Run("TagFlow/1")["start"].task
    return schema.running_task_record(
        flow="TagFlow",
        run_id=1,
        step=step,
        task_id=task_id,
        attempt=0,
        parents=[str(start._oid)],
        code=str(start._record["code"]),
        foreach_stack=[],
        user="anne",
        started=time.time(),
        hostname="here",
        pid=1,
    )


@pytest.fixture
def registered(real_store):
    inflight.register(real_store.path, _record(real_store, "square", 99))
    yield real_store
    inflight.clear()


def test_the_running_task_shows_in_its_run_as_unfinished(registered):
    run = Run("TagFlow/1")
    task = Task("TagFlow/1/square/99")
    assert (task.finished, task.successful, task.finished_at, list(task), task.stdout) == (False, False, None, [], "")
    assert "attempt_ok" not in task.metadata_dict and task.metadata_dict["attempt"] == "0"
    square = Step("TagFlow/1/square")
    assert [t.id for t in square][0] == "99" and square.task == task and len(list(square)) == 4
    assert task.parent_task_pathspecs == ["TagFlow/1/start/1"]
    assert task.parent.parent == run


def test_other_runs_and_other_stores_do_not_see_it(registered, tmp_path):
    with pytest.raises(NotFound, match="no finished task 99"):
        Task("TagFlow/2/square/99")
    inflight.register(tmp_path / "elsewhere", _record(registered, "square", 99))
    with pytest.raises(NotFound, match="no finished task 99"):
        Task("TagFlow/1/square/99")


def test_a_cleared_task_is_gone(registered):
    inflight.clear()
    assert "99" not in [t.id for t in Step("TagFlow/1/square")]
    with pytest.raises(NotFound):
        Task("TagFlow/1/square/99")
