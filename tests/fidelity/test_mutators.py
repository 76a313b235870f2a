"""``StepMutator`` and ``FlowMutator``: decorators that rewrite the flow before it runs, as Metaflow 2.19
runs them: what they add takes effect exactly like what is written, in every task process."""

from __future__ import annotations

import pytest
from shapes import render_flow

SHAPES = ["linear", "branch", "foreach", "nested_foreach", "switch"]

STEP_MUTATOR = """
import os
from cafstore import StepMutator, retry

class Hardened(StepMutator):
    def init(self, times=1):
        self.times = times

    def pre_mutate(self, mutable_step):
        mutable_step.add_decorator(retry, deco_kwargs={"times": self.times})

    def mutate(self, mutable_step):
        mutable_step.add_decorator('environment:vars={"FROM_MUTATOR": "' + mutable_step.name + '"}')
"""

# The start step fails its first attempt: only the added @retry lets the run succeed.
STEP_BODIES = {
    "start": (
        "assert os.environ['FROM_MUTATOR'] == 'start'\nself.attempt = current.retry_count\n"
        "if current.retry_count == 0:\n    raise ValueError('once')"
    ),
    "all": "assert os.environ['FROM_MUTATOR'] == current.step_name\nself.seen = os.environ['FROM_MUTATOR']",
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_step_mutator_adds_retry_and_environment(lab, shape):
    decorators = {"start": ["Hardened(times=1)"], "all": ["Hardened"]}
    lab.run(render_flow(shape, STEP_BODIES, header=STEP_MUTATOR, decorators=decorators))
    run = lab.latest()
    assert run["start"].task["attempt"].data == 1
    assert run["end"].task["seen"].data == "end"


FLOW_MUTATOR = """
import os
from cafstore import FlowMutator, Parameter, UserStepDecorator

class Stamp(UserStepDecorator):
    def pre_step(self, step_name, flow, inputs=None):
        flow.stamped = step_name

class Everywhere(FlowMutator):
    def pre_mutate(self, mutable_flow):
        mutable_flow.add_parameter("alpha", Parameter("alpha", default=1, help="added"))
        for name, mutable_step in mutable_flow.steps:
            mutable_step.add_decorator("environment", deco_kwargs={"vars": {"STEP_VAR": name}})

    def mutate(self, mutable_flow):
        for name, mutable_step in mutable_flow.steps:
            mutable_step.add_decorator(Stamp)
            assert mutable_step.has_decorator("environment")
"""

FLOW_BODY = (
    "assert self.alpha == 7 and 'alpha' in current.parameter_names\n"
    "assert os.environ['STEP_VAR'] == current.step_name == self.stamped"
)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_flow_mutator_adds_a_parameter_and_decorates_every_step(lab, shape):
    source = render_flow(shape, {"all": FLOW_BODY}, header=FLOW_MUTATOR).replace(
        "class FidelityFlow", "@Everywhere\nclass FidelityFlow"
    )
    lab.run(source, "--alpha", "7")
    assert lab.latest()["end"].task["alpha"].data == 7
    assert "--alpha" in lab.cli("run", "--help").stdout


def test_task_processes_that_import_the_flow_afresh_see_the_mutated_flow(lab):
    source = render_flow("foreach", {"all": FLOW_BODY}, header=FLOW_MUTATOR).replace(
        "class FidelityFlow", "@Everywhere\nclass FidelityFlow"
    )
    lab.run(source, "--alpha", "7", "--executor", "spawn")
    assert lab.latest()["end"].task["stamped"].data == "end"


SPECS = """
import os
from cafstore import StepMutator, Config, retry, environment

class Rewrite(StepMutator):
    def pre_mutate(self, mutable_step):
        specs = {name: kwargs for name, _full, _args, kwargs in mutable_step.decorator_specs}
        assert specs["retry"] == {"times": 2, "minutes_between_retries": "2"}, specs
        assert specs["Rewrite"] == {}
        assert mutable_step.remove_decorator("environment")
        assert not mutable_step.remove_decorator("timeout")
        times = mutable_step.flow.cfg.times
        mutable_step.add_decorator("retry", deco_kwargs={"times": times}, duplicates=mutable_step.OVERRIDE)
"""


def test_decorators_are_listed_removed_and_overridden_with_config_values(lab):
    source = render_flow(
        "linear",
        {
            "start": "assert 'GONE' not in os.environ\nself.attempt = current.retry_count\n"
            "if current.retry_count < 3:\n    raise ValueError('again')"
        },
        header=SPECS,
        class_body="cfg = Config('cfg', default_value={'times': 3})",
        decorators={"start": ["Rewrite", "retry(times=2)", "environment(vars={'GONE': 'x'})"]},
    )
    lab.run(source)
    assert lab.latest()["start"].task["attempt"].data == 3


ERRORS = """
from cafstore import StepMutator, FlowMutator, Parameter

class Boom(StepMutator):
    def pre_mutate(self, mutable_step):
        raise KeyError("no such thing")

class LateParameter(FlowMutator):
    def mutate(self, mutable_flow):
        mutable_flow.add_parameter("beta", Parameter("beta", default=2))

class NoInit(StepMutator):
    pass

class Unknown(StepMutator):
    def pre_mutate(self, mutable_step):
        mutable_step.add_decorator("sparkle")
"""


@pytest.mark.parametrize(
    ("step_decorator", "flow_decorator", "expected"),
    [
        ("Boom", "", ["@Boom on step 'start'", "pre_mutate()", "KeyError"]),
        ("", "LateParameter", ["@LateParameter on flow FidelityFlow", "pre_mutate only"]),
        ("NoInit(3)", "", ["@NoInit on step 'start'", "does not implement init()"]),
        ("Unknown", "", ["@Unknown on step 'start'", "no step decorator 'sparkle'"]),
    ],
)
def test_a_failing_mutator_is_one_clear_paragraph(lab, step_decorator, flow_decorator, expected):
    decorators = {"start": [step_decorator]} if step_decorator else {}
    source = render_flow("linear", {}, header=ERRORS, decorators=decorators)
    if flow_decorator:
        source = source.replace("class FidelityFlow", f"@{flow_decorator}\nclass FidelityFlow")
    proc = lab.run(source, ok=False)
    assert proc.returncode != 0
    assert all(text in proc.stderr for text in expected), proc.stderr
    assert "Traceback" not in proc.stderr
