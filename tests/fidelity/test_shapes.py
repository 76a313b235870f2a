"""The shapes themselves: each renders a flow that runs, with the tasks its graph implies."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, SHAPES, render_flow

# Tasks per step that each shape must produce (the foreach lists are in shapes.py).
EXPECTED_TASKS = {
    "linear": {"start": 1, "middle": 1, "end": 1},
    "branch": {"start": 1, "left": 1, "right": 1, "join": 1, "end": 1},
    "nested_branches": {name: 1 for name in SHAPES["nested_branches"].nodes},
    "foreach": {"start": 1, "body": 3, "join": 1, "end": 1},
    "nested_foreach": {"start": 1, "outer": 2, "inner": 4, "inner_join": 2, "outer_join": 1, "end": 1},
    "switch": {"start": 1, "choose": 1, "chosen": 1, "end": 1},
    "switch_in_branch": {"start": 1, "left": 1, "chosen": 1, "right": 1, "join": 1, "end": 1},
    "switch_in_foreach": {"start": 1, "body": 3, "even": 2, "odd": 1, "join": 1, "end": 1},
    "branch_in_switch": {"start": 1, "fan": 1, "left": 1, "right": 1, "fan_join": 1, "end": 1},
    "foreach_in_switch": {"start": 1, "fan": 1, "body": 2, "fan_join": 1, "end": 1},
    "nested_switch": {"start": 1, "choose": 1, "chosen": 1, "end": 1},
    "recursive_switch": {"start": 1, "loop": 3, "after": 1, "end": 1},
    "recursive_switch_in_foreach": {"start": 1, "prep": 3, "loop": 6, "after": 3, "join": 1, "end": 1},
}


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_shape_runs_with_the_tasks_its_graph_implies(lab, shape):
    lab.run(render_flow(shape, {"all": "self.seen = current.step_name"}))
    run = lab.latest()
    counts = {step.id: len(list(step)) for step in run}
    assert counts == EXPECTED_TASKS[shape]
    for step in run:
        if step.id != "end" and not SHAPES[shape].nodes[step.id].join:
            assert {task["seen"].data for task in step} == {step.id}
