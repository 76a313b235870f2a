"""``Config`` and ``config_expr`` (Metaflow 2.13+ user configurations), across the shapes.

The flow's decorators read the configurations (``@environment``), a parameter's default is
computed from them, the steps read them as immutable attribute-style mappings, and the
client reads them back as plain dicts.
"""

from __future__ import annotations

import json

import pytest
from shapes import SHAPE_NAMES, render_flow

HEADER = """
import os
from cafstore import Config, Parameter, config_expr, environment

def colon_parser(text):
    key, value = text.split(':')
    return {key: value.strip()}

def next_number(ctx):
    return ctx.configs.numbers.n + 1
"""

CLASS_BODY = """
settings = Config('settings', default_value={'label': 'fidelity', 'nested': {'value': 43}, 'n': 2})
silly = Config('silly', default='silly.txt', parser=colon_parser)
numbers = Config('numbers', required=True)
env_vars = Config('env_vars', default_value=lambda ctx: {'vars': {'UNPACKED': 'yes'}})
from_config = Parameter('from_config', default=config_expr('numbers').n, type=int)
from_ctx = Parameter('from_ctx', default=next_number, type=int)
"""

DECORATORS = [
    "environment(vars={'PLAIN': settings.label, 'COMPUTED': config_expr('str(settings.nested.value * 2)')})",
]

CHECKS = """
assert os.environ['PLAIN'] == 'fidelity' and os.environ['COMPUTED'] == '86'
assert self.settings.nested.value == 43 and self.settings['nested']['value'] == 43
assert self.settings.nested['value'] == 43 and self.settings['nested'].value == 43
assert self.silly.baz == 'amazing' and self.numbers.n == 123
assert self.from_config == 123 and self.from_ctx == 124
for change in (lambda: self.settings.__setitem__('n', 1), lambda: setattr(self.settings, 'n', 1)):
    try:
        change()
        raise Exception('a configuration could be changed')
    except TypeError:
        pass
"""

EXPECTED = {
    "settings": {"label": "fidelity", "nested": {"value": 43}, "n": 2},
    "silly": {"baz": "amazing"},
    "numbers": {"n": 123},
    "env_vars": {"vars": {"UNPACKED": "yes"}},
    "from_config": 123,
    "from_ctx": 124,
}


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_configs_in_decorators_parameters_steps_and_client(lab, shape):
    (lab.root / "other.txt").write_text("baz:amazing")
    source = render_flow(
        shape,
        {"all": CHECKS, "start": "assert os.environ['UNPACKED'] == 'yes' and self.settings.label == 'fidelity'"},
        header=HEADER,
        class_body=CLASS_BODY,
        decorators={"start": ["environment(**env_vars)"], "all": DECORATORS},
    )
    env = {
        "METAFLOW_FLOW_CONFIG_VALUE": json.dumps({"numbers": {"n": 123}}),
        "METAFLOW_FLOW_CONFIG": json.dumps({"silly": "other.txt"}),
    }
    lab.run(source, env=env)
    run = lab.latest()
    assert run.successful
    for step in run:
        for task in step:
            assert {name: task[name].data for name in EXPECTED} == EXPECTED, (step.id, task.id)
            assert type(task["settings"].data) is dict


SIMPLE = render_flow(
    "linear",
    {"all": "self.seen = self.cfg.to_dict()"},
    header="from cafstore import Config, config_expr, retry",
    class_body="cfg = Config('cfg', default_value={'k': 1})",
    decorators={"all": ["retry(times=config_expr('cfg.k'), minutes_between_retries=0)"]},
)


def test_top_level_config_options_override_the_default(lab):
    lab.write(SIMPLE)
    (lab.root / "c.json").write_text('{"k": 2}')
    assert lab.cli("--config", "cfg", "c.json", "run").returncode == 0
    assert lab.latest()["end"].task["seen"].data == {"k": 2}
    proc = lab.cli("--config-value", "cfg", '{"k": 0, "v": "x"}', "run")
    assert proc.returncode == 0, proc.stderr
    assert lab.latest()["end"].task["cfg"].data == {"k": 0, "v": "x"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--config", "cfg", "missing.json"], "'missing.json' of configuration 'cfg' could not be read"),
        (["--config-value", "cfg", "{bad"], "Configuration 'cfg': the value given for it"),
        (["--config-value", "nope", "{}"], "has no configuration 'nope'"),
        (["--config", "cfg", "c.json", "--config-value", "cfg", "{}"], "both a file and a value"),
    ],
)
def test_bad_config_input_is_a_usage_error_naming_the_config(lab, args, expected):
    lab.write(SIMPLE)
    (lab.root / "c.json").write_text("{}")
    proc = lab.cli(*args, "run")
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_missing_required_config_is_named(lab):
    source = render_flow(
        "linear", {}, header="from cafstore import Config", class_body="c = Config('c', required=True)"
    )
    proc = lab.run(source, ok=False)
    assert proc.returncode == 2 and "Missing required configuration 'c'" in proc.stderr, proc.stderr
