"""Client traversal across shapes: parent/child tasks and steps, end_task, origin_pathspec of a plain run.

Each task records its own pathspec and the pathspecs of the tasks it started
from (like Metaflow's runtime_dag test), so the client's answers are checked
against what the run itself saw.
"""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, SHAPES, render_flow

BODIES = {
    "start": "self.parents = set()\nself.me = current.pathspec",
    "join": "self.parents = {i.me for i in inputs}\nself.me = current.pathspec",
    "all": "self.parents = {self.me}\nself.me = current.pathspec",
}


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_parents_children_and_steps_follow_the_run(lab, shape):
    lab.run(render_flow(shape, BODIES))
    run = lab.latest()
    nodes = SHAPES[shape].nodes
    assert run.end_task.pathspec == run["end"].task.pathspec
    assert run.origin_pathspec is None
    ran = {step.id for step in run}  # a switch skips some steps; those have no Step to yield
    for step in run:
        assert step.origin_pathspec is None
        assert [s.id for s in step.child_steps] == [t for t in nodes[step.id].targets if t in ran]
        assert sorted(s.id for s in step.parent_steps) == sorted(
            n for n, node in nodes.items() if step.id in node.targets and n in ran
        )
        following = [t for s in step.child_steps for t in s]
        for task in step:
            assert task.pathspec == task.data.me and task.origin_pathspec is None
            assert {t.pathspec for t in task.parent_tasks} == task.data.parents
            assert set(task.parent_task_pathspecs) == task.data.parents
            expected = {t.pathspec for t in following if task.pathspec in t.data.parents}
            assert {t.pathspec for t in task.child_tasks} == expected
            assert set(task.child_task_pathspecs) == expected
