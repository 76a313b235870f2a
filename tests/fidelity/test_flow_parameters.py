"""Parameters as Metaflow 2.19 local mode gives them: environment values, default functions, types.

Each shape runs one flow whose steps check the values themselves; the client then reads
them back from every task.
"""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, render_flow

HEADER = """
import json, os
from cafstore import Parameter, JSONType

def str_default(ctx):
    assert ctx.parameter_name == 'from_func' and ctx.flow_name == 'FidelityFlow', ctx.parameter_name
    assert ctx.user_name == 'tester', ctx.user_name
    if os.path.exists('once.marker'):
        raise Exception('the default function ran twice in one run')
    open('once.marker', 'w').write('x')
    return 'computed'
"""

CLASS_BODY = """
from_env = Parameter('from_env', default=None)
flag = Parameter('flag', default=True)
from_func = Parameter('from_func', default=str_default)
as_json = Parameter('as_json', default=lambda ctx: json.dumps({'a': [8]}), type=JSONType)
as_bool = Parameter('as_bool', default=lambda _: True, type=bool)
listed = Parameter('listed', separator=',', default='a,b,c')
"""

CHECKS = """
assert self.from_env == 'from the environment', self.from_env
assert self.flag is False and self.as_bool is True
assert self.from_func == 'computed' and self.as_json == {'a': [8]}
assert self.listed == ['a', 'b', 'c'], self.listed
try:
    self.flag = True
    raise Exception('a parameter could be assigned')
except AttributeError:
    pass
"""

EXPECTED = {
    "from_env": "from the environment",
    "flag": False,
    "from_func": "computed",
    "as_json": {"a": [8]},
    "as_bool": True,
    "listed": ["a", "b", "c"],
}


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_parameters_from_metaflow_environment_and_default_functions(lab, shape):
    source = render_flow(shape, {"all": CHECKS}, header=HEADER, class_body=CLASS_BODY)
    lab.run(source, env={"METAFLOW_RUN_FROM_ENV": "from the environment", "METAFLOW_RUN_FLAG": "false"})
    run = lab.latest()
    for step in run:
        for task in step:
            assert {name: task[name].data for name in EXPECTED} == EXPECTED, (step.id, task.id)


def test_cafstore_environment_name_wins_over_metaflow_name(lab):
    source = render_flow(
        "linear",
        {"all": "assert self.p == 'ours', self.p"},
        class_body="p = Parameter('p')",
        header="from cafstore import Parameter",
    )
    lab.run(source, env={"CAFSTORE_RUN_P": "ours", "METAFLOW_RUN_P": "theirs"})


def test_an_include_file_reads_the_metaflow_environment_name_before_its_default(lab):
    (lab.root / "default.txt").write_text("the default")
    (lab.root / "override.txt").write_text("from the environment")
    source = render_flow(
        "linear",
        {"all": "assert self.doc == 'from the environment', self.doc"},
        class_body="doc = IncludeFile('doc', default='default.txt')",
        header="from cafstore import IncludeFile",
    )
    lab.run(source, env={"METAFLOW_RUN_DOC": "override.txt"})
    assert lab.latest()["end"].task["doc"].data == "from the environment"


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ("Parameter('n', type=int, default=lambda ctx: '3')", "needs an int"),
        ("Parameter('s', default=lambda ctx: 3)", "must return a string"),
    ],
)
def test_a_default_function_of_the_wrong_type_is_a_clear_error(lab, declaration, expected):
    source = render_flow("linear", {}, class_body=f"p = {declaration}", header="from cafstore import Parameter")
    proc = lab.run(source, ok=False)
    assert proc.returncode != 0
    assert expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
