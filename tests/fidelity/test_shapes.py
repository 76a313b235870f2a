"""The shapes themselves: each renders a flow that runs, with the tasks its graph implies."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, SHAPES, TASKS, render_flow


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_shape_runs_with_the_tasks_its_graph_implies(lab, shape):
    lab.run(render_flow(shape, {"all": "self.seen = current.step_name"}))
    run = lab.latest()
    counts = {step.id: len(list(step)) for step in run}
    assert counts == TASKS[shape]
    for step in run:
        if step.id != "end" and not SHAPES[shape].nodes[step.id].join:
            assert {task["seen"].data for task in step} == {step.id}
