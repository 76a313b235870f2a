"""A step opens its own task, step and run through the client while it runs, as in Metaflow.

Metaflow's local mode registers a task when it starts, so ``Task(current.pathspec)``
works inside the step (its tag_mutation test does ``.parent.parent.add_tag``).
The running task shows as not finished, with no artifacts or logs yet.
"""

from __future__ import annotations

import pytest
from shapes import TASKS, render_flow

HEADER = "from cafstore import Task, Step, Run, retry"

# Every step looks at itself; what it saw is stored so the test can compare it with the record.
LOOK = """
me = Task(current.pathspec)
assert me.pathspec == current.pathspec and me.id == current.task_id
assert (me.finished, me.successful, me.finished_at, me.exception) == (False, False, None, None)
assert list(me) == [] and len(me) == 0 and me.stdout == "" and me.created_at is not None
meta = me.metadata_dict
assert meta["attempt"] == str(current.retry_count) and "attempt_ok" not in meta, meta
step_obj = me.parent
assert step_obj.pathspec == "/".join([current.flow_name, current.run_id, current.step_name])
assert current.task_id in [t.id for t in step_obj], list(step_obj)
assert Step(step_obj.pathspec)[current.task_id] == me and step_obj.task is not None
run = me.parent.parent
assert run == Run(current.flow_name + "/" + current.run_id) and current.run.pathspec == run.pathspec
assert current.step_name in [s.id for s in run] and current.step_name in run
assert current.task.finished is False and current.task.pathspec == current.pathspec
assert not run.finished
tag = "seen-" + current.task_id
run.add_tag(tag)
assert tag in run.user_tags and tag in Run(run.pathspec).user_tags
run.remove_tag(tag)
assert tag not in run.user_tags
self.parents_seen = me.parent_task_pathspecs
self.index_seen = me.index
"""
INNER = LOOK + "assert me.index == self.index, (me.index, self.index)\n"


@pytest.mark.parametrize("shape", ["linear", "branch", "foreach", "nested_foreach", "switch", "recursive_switch"])
def test_a_step_sees_its_own_running_task_step_and_run(lab, shape):
    lab.run(render_flow(shape, {"all": LOOK, "inner": INNER}, header=HEADER))
    run = lab.latest()
    assert run.successful
    assert not any(tag.startswith("seen-") for tag in run.user_tags)
    assert {step.id: len(list(step)) for step in run} == TASKS[shape]
    for step in run:
        for task in step:
            assert task.finished and task.successful and "attempt_ok" in task.metadata_dict
            assert task["parents_seen"].data == task.parent_task_pathspecs
            assert task["index_seen"].data == task.index


def test_a_retried_task_shows_its_running_attempt_and_its_failed_one(lab):
    body = """
me = Task(current.pathspec)
assert me.attempt == current.retry_count and not me.finished
if current.retry_count == 0:
    raise ValueError("first attempt fails")
before = Task(current.pathspec, attempt=0)
assert before.finished and not before.successful and "first attempt fails" in before.exception.message
assert [t.attempt for t in me.parent] == [1]
"""
    lab.run(render_flow("linear", {"all": body}, header=HEADER, decorators={"all": ["retry(times=1)"]}))
    for step in lab.latest():
        assert step.task.attempt == 1 and step.task.successful
