"""User step decorators (``@user_step_decorator``, ``UserStepDecorator``) and the decorators
cafstore accepts (``@resources``) or refuses (``@parallel``), as Metaflow 2.19 runs them."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, render_flow

HEADER = """
from cafstore import UserStepDecorator, user_step_decorator, resources

@user_step_decorator
def around(step_name, flow, inputs):
    flow.entered = step_name
    yield
    flow.exited = step_name

class Tagged(UserStepDecorator):
    def init(self, label='none'):
        self.label = label

    def pre_step(self, step_name, flow, inputs=None):
        flow.label = self.label
"""

CHECKS = "assert self.entered == current.step_name and self.label == 'x'\nself.seen = self.label"


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_user_decorators_wrap_every_step(lab, shape):
    decorators = {"all": ["around", "Tagged(label='x')", "resources(cpu=2, memory=100)"]}
    lab.run(render_flow(shape, {"all": CHECKS}, header=HEADER, decorators=decorators))
    for step in lab.latest():
        for task in step:
            assert task["exited"].data == step.id and task["seen"].data == "x"


SKIPS = """
from cafstore import user_step_decorator

@user_step_decorator
def swallow(step_name, flow, inputs, attributes):
    try:
        yield
    except ValueError:
        flow.swallowed = attributes['note']

@user_step_decorator
def skip(step_name, flow, inputs):
    yield {}
"""


def test_a_decorator_can_swallow_the_exception_or_skip_the_step(lab):
    source = render_flow(
        "linear",
        {"start": "raise ValueError('boom')", "all": "raise RuntimeError('must not run')"},
        header=SKIPS,
        decorators={"start": ["swallow(note='caught')"], "all": ["skip"]},
    )
    lab.run(source)
    assert lab.latest()["end"].task["swallowed"].data == "caught"


@pytest.mark.parametrize(
    ("header", "decorator", "expected"),
    [("from cafstore import parallel", "parallel", "@parallel")],
)
def test_unsupported_decorators_are_refused_clearly(lab, header, decorator, expected):
    proc = lab.run(render_flow("linear", {}, header=header, decorators={"all": [decorator]}), ok=False)
    assert proc.returncode != 0
    assert expected in proc.stderr and "not supported by cafstore" in proc.stderr and "Traceback" not in proc.stderr
