"""Class-level constants: readable in every step, not assignable, not parameters, and stored (with
the flow's ``name``) as artifacts of every task, as Metaflow stores them."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, render_flow

CLASS_BODY = """
from cafstore import Parameter
x = 5
s = 'a'
d = {'k': [1]}
items_const = [1, 2]
p = Parameter('p', default=7)
"""

CHECKS = """
assert (self.x, self.s, self.d, self.items_const, self.p) == (5, 'a', {'k': [1]}, [1, 2], 7)
assert current.parameter_names == ['p'], current.parameter_names
assert self.name == 'FidelityFlow'
for attr in ('x', 's', 'd', 'p'):
    try:
        setattr(self, attr, 0)
    except AttributeError:
        pass
    else:
        raise AssertionError('self.%s was assignable' % attr)
self.seen = current.step_name
"""

# Metaflow lets a step mutate a constant container in its own process, but what other tasks see (and
# what is stored) stays the class's value.
START = CHECKS + "\nself.items_const.append(3)"

CONSTANTS = {"x": 5, "s": "a", "d": {"k": [1]}, "items_const": [1, 2], "name": "FidelityFlow", "p": 7}


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_constants_are_read_only_everywhere_and_stored_in_every_task(lab, shape):
    lab.run(render_flow(shape, {"start": START, "all": CHECKS}, class_body=CLASS_BODY))
    for step in lab.latest():
        for task in step:
            names = {artifact.id for artifact in task}
            assert set(CONSTANTS) <= names, (step.id, names)
            assert {name: task[name].data for name in CONSTANTS} == CONSTANTS, step.id
            assert task.data.x == 5


def test_a_flow_without_constants_still_stores_its_name(lab):
    lab.run(render_flow("linear", {}))
    start = lab.latest()["start"].task
    assert sorted(artifact.id for artifact in start) == ["name"]
    assert start["name"].data == "FidelityFlow"
