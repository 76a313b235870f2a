"""Foreach over what Metaflow accepts, ``input`` / ``index`` / ``foreach_stack()`` at every depth,
and a clear error for values a foreach cannot split over."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, SHAPES, render_flow

# How many foreach splits enclose each step: one for a step inside a foreach,
# except where foreaches nest.
NESTED_DEPTHS = {"start": 0, "outer": 1, "inner": 2, "inner_join": 1, "outer_join": 0, "end": 0}


def depth(shape: str, step: str) -> int:
    if shape == "nested_foreach":
        return NESTED_DEPTHS[step]
    return 1 if SHAPES[shape].nodes[step].inner else 0


STACK_CHECK = """
stack = self.foreach_stack()
assert all(type(frame) is tuple and len(frame) == 3 for frame in stack), stack
expected = (stack[-1][0], stack[-1][2]) if stack else (None, None)
assert (self.index, self.input) == expected, (self.index, self.input, stack)
named = self._foreach_stack  # Metaflow's private frames, which flows written for it read
assert [(f.index, f.num_splits, f.value) for f in named] == stack, named
assert all(f.step and f.var in ("items", "xs", "ys") for f in named), named
self.depth = len(stack)
self.stack = stack
"""


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_index_and_input_agree_with_the_foreach_stack_in_every_step(lab, shape):
    lab.run(render_flow(shape, {"all": STACK_CHECK}))
    for step in lab.latest():
        for task in step:
            assert task["depth"].data == depth(shape, step.id), (step.id, task["stack"].data)


def test_a_string_splits_into_its_characters_in_a_nested_foreach(lab):
    # shapes.py's nested_foreach splits over the string 'ab', then over the tuple (1, 2).
    lab.run(render_flow("nested_foreach", {"all": STACK_CHECK}))
    inner = sorted(task["stack"].data for task in lab.latest()["inner"])
    assert inner == [[(i, 2, x), (j, 2, y)] for i, x in enumerate("ab") for j, y in enumerate((1, 2))]


THREE_LEVELS = """
from cafstore import FlowSpec, step


class FidelityFlow(FlowSpec):
    @step
    def start(self):
        self.xs = 'ab'
        self.next(self.a, foreach='xs')

    @step
    def a(self):
        assert self.foreach_stack() == [(self.index, 2, self.input)]
        self.ys = range(3)
        self.next(self.b, foreach='ys')

    @step
    def b(self):
        outer = self.foreach_stack()[0]
        assert outer[1:] == (2, 'ab'[outer[0]]) and self.foreach_stack()[1] == (self.index, 3, self.input)
        self.zs = frozenset({7})
        self.next(self.c, foreach='zs')

    @step
    def c(self):
        self.path = self.foreach_stack()
        assert len(self.path) == 3 and self.path[2] == (0, 1, 7) and self.input == 7 and self.index == 0
        self.next(self.join_c)

    @step
    def join_c(self, inputs):
        assert len(inputs) == 1 and inputs[0].input == 7 and inputs[0].index == 0
        self.paths = [inp.path for inp in inputs]
        assert self.foreach_stack() == inputs[0].foreach_stack()[:2]
        self.next(self.join_b)

    @step
    def join_b(self, inputs):
        assert [inp.index for inp in inputs] == [0, 1, 2] and [inp.input for inp in inputs] == [0, 1, 2]
        self.paths = [p for inp in inputs for p in inp.paths]
        self.next(self.join_a)

    @step
    def join_a(self, inputs):
        assert sorted(inp.input for inp in inputs) == ['a', 'b'] and self.foreach_stack() == []
        self.paths = [p for inp in inputs for p in inp.paths]
        self.next(self.end)

    @step
    def end(self):
        assert self.index is None and self.input is None


if __name__ == '__main__':
    FidelityFlow()
"""


def test_three_nested_foreach_levels_keep_every_frame(lab):
    lab.run(THREE_LEVELS)
    run = lab.latest()
    assert len(list(run["c"])) == 6
    paths = sorted(run["end"].task["paths"].data)
    assert paths == [[(i, 2, x), (j, 3, j), (0, 1, 7)] for i, x in enumerate("ab") for j in range(3)]


@pytest.mark.parametrize(
    "value, inputs",
    [("'abc'", ["a", "b", "c"]), ("range(2, 5)", [2, 3, 4]), ("(1.5, None)", [1.5, None]), ("{4, 5}", [4, 5])],
)
def test_foreach_splits_over_any_iterable_metaflow_accepts(lab, value, inputs):
    lab.run(render_flow("foreach", {"split": f"self.items = {value}", "inner": "self.got = (self.index, self.input)"}))
    got = sorted(task["got"].data for task in lab.latest()["body"])
    assert [item for _, item in sorted(got)] == inputs and [i for i, _ in got] == list(range(len(inputs)))


@pytest.mark.parametrize(
    "value, says",
    [
        ("(n for n in range(3))", "is an iterator (generator) that can be read only once"),
        ("{'a': 1}", "is a mapping (dict)"),
        ("42", "self.items (int) is not iterable"),
        ("''", "is empty"),
    ],
)
def test_a_value_a_foreach_cannot_split_over_is_refused_naming_step_and_artifact(lab, value, says):
    proc = lab.run(render_flow("foreach", {"split": f"self.items = {value}"}), ok=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "foreach='items'" in out and "step 'start'" in out and "self.items" in out and says in out, out
    assert "Traceback" not in proc.stderr.split("Error:")[-1]
