"""Graph shapes that every fidelity behaviour is checked across.

Metaflow's own behaviour suite combines each behaviour with each DAG shape,
because most fidelity bugs only show in one shape (a join that drops an
artifact, a foreach that loses its index, a switch that skips a step). These
shapes are ours; a behaviour supplies step bodies by *role* and
``render_flow`` writes a complete flow file around them.

Roles a body can fill (the first one that a step has and the behaviour
supplies is used, else ``all``, else ``pass``):

- ``start``, ``end``: the two fixed steps;
- ``join``: any step that takes ``inputs``;
- ``split``: a step that fans out with ``foreach`` (its foreach list is set
  before the body runs, so the body may read it);
- ``switch``: a step that chooses its successor with ``condition=``;
- ``inner``: a step that runs inside a foreach;
- ``all``: anything else.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Node:
    """One step of a shape and how it leaves."""

    kind: str  # "linear" | "branch" | "foreach" | "switch" | "end"
    targets: Tuple[str, ...] = ()
    join: bool = False
    inner: bool = False
    foreach_var: str = ""
    foreach_value: str = ""
    condition: str = ""
    condition_value: str = ""
    cases: Tuple[Tuple[str, str], ...] = ()
    setup: Tuple[str, ...] = ()  # lines run first in the step (a loop's counter)

    def roles(self, name: str) -> List[str]:
        found = [name] if name in ("start", "end") else []
        if self.join:
            found.append("join")
        if self.kind == "foreach":
            found.append("split")
        if self.kind == "switch":
            found.append("switch")
        if self.inner:
            found.append("inner")
        return found + ["all"]


@dataclass(frozen=True)
class Shape:
    name: str
    nodes: Dict[str, Node] = field(default_factory=dict)

    @property
    def joins(self) -> List[str]:
        return [name for name, node in self.nodes.items() if node.join]

    @property
    def foreach_depth(self) -> int:
        return sum(1 for node in self.nodes.values() if node.kind == "foreach")


def _linear(target: str, **kw: object) -> Node:
    return Node("linear", (target,), **kw)  # type: ignore[arg-type]


SHAPES: Dict[str, Shape] = {
    "linear": Shape(
        "linear",
        {"start": _linear("middle"), "middle": _linear("end"), "end": Node("end")},
    ),
    "branch": Shape(
        "branch",
        {
            "start": Node("branch", ("left", "right")),
            "left": _linear("join"),
            "right": _linear("join"),
            "join": _linear("end", join=True),
            "end": Node("end"),
        },
    ),
    "nested_branches": Shape(
        "nested_branches",
        {
            "start": Node("branch", ("outer_a", "outer_b")),
            "outer_a": Node("branch", ("inner_a", "inner_b")),
            "inner_a": _linear("inner_join"),
            "inner_b": _linear("inner_join"),
            "inner_join": _linear("outer_join", join=True),
            "outer_b": _linear("outer_join"),
            "outer_join": _linear("end", join=True),
            "end": Node("end"),
        },
    ),
    "foreach": Shape(
        "foreach",
        {
            "start": Node("foreach", ("body",), foreach_var="items", foreach_value="[10, 20, 30]"),
            "body": _linear("join", inner=True),
            "join": _linear("end", join=True),
            "end": Node("end"),
        },
    ),
    "nested_foreach": Shape(
        "nested_foreach",
        {
            "start": Node("foreach", ("outer",), foreach_var="xs", foreach_value="'ab'"),
            "outer": Node("foreach", ("inner",), inner=True, foreach_var="ys", foreach_value="(1, 2)"),
            "inner": _linear("inner_join", inner=True),
            "inner_join": _linear("outer_join", join=True, inner=True),
            "outer_join": _linear("end", join=True),
            "end": Node("end"),
        },
    ),
}


def _switch(condition_value: str, *cases: Tuple[str, str], **kw: object) -> Node:
    targets = tuple(dict.fromkeys(target for _, target in cases))
    return Node(
        "switch",
        targets,
        condition="route",
        condition_value=condition_value,
        cases=cases,
        **kw,  # type: ignore[arg-type]
    )


# Switch shapes: the case taken is "a" (or "again" until the loop is done); steps named
# "skipped*" are the cases never taken, so they must have no task.
SWITCH_SHAPES: Dict[str, Shape] = {
    "switch": Shape(
        "switch",
        {
            "start": _linear("choose"),
            "choose": _switch("'a'", ("a", "chosen"), ("b", "skipped")),
            "chosen": _linear("end"),
            "skipped": _linear("end"),
            "end": Node("end"),
        },
    ),
    "switch_in_branch": Shape(
        "switch_in_branch",
        {
            "start": Node("branch", ("left", "right")),
            "left": _switch("'a'", ("a", "chosen"), ("b", "skipped")),
            "chosen": _linear("join"),
            "skipped": _linear("join"),
            "right": _linear("join"),
            "join": _linear("end", join=True),
            "end": Node("end"),
        },
    ),
    "switch_in_foreach": Shape(
        "switch_in_foreach",
        {
            "start": Node("foreach", ("body",), foreach_var="items", foreach_value="[10, 20, 30]"),
            "body": _switch("'a' if self.index % 2 == 0 else 'b'", ("a", "even"), ("b", "odd"), inner=True),
            "even": _linear("join", inner=True),
            "odd": _linear("join", inner=True),
            "join": _linear("end", join=True),
            "end": Node("end"),
        },
    ),
    "branch_in_switch": Shape(
        "branch_in_switch",
        {
            "start": _switch("'a'", ("a", "fan"), ("b", "skipped")),
            "fan": Node("branch", ("left", "right")),
            "left": _linear("fan_join"),
            "right": _linear("fan_join"),
            "fan_join": _linear("end", join=True),
            "skipped": _linear("end"),
            "end": Node("end"),
        },
    ),
    "foreach_in_switch": Shape(
        "foreach_in_switch",
        {
            "start": _switch("'a'", ("a", "fan"), ("b", "skipped")),
            "fan": Node("foreach", ("body",), foreach_var="items", foreach_value="['x', 'y']"),
            "body": _linear("fan_join", inner=True),
            "fan_join": _linear("end", join=True),
            "skipped": _linear("end"),
            "end": Node("end"),
        },
    ),
    "nested_switch": Shape(
        "nested_switch",
        {
            "start": _switch("'a'", ("a", "choose"), ("b", "skipped")),
            "choose": _switch("'a'", ("a", "chosen"), ("b", "skipped_inner")),
            "chosen": _linear("end"),
            "skipped": _linear("end"),
            "skipped_inner": _linear("end"),
            "end": Node("end"),
        },
    ),
    "recursive_switch": Shape(
        "recursive_switch",
        {
            "start": _linear("loop", setup=("self.laps = 0",)),
            "loop": _switch(
                "'again' if self.laps < 3 else 'done'", ("again", "loop"), ("done", "after"), setup=("self.laps += 1",)
            ),
            "after": _linear("end"),
            "end": Node("end"),
        },
    ),
    "recursive_switch_in_foreach": Shape(
        "recursive_switch_in_foreach",
        {
            "start": Node("foreach", ("prep",), foreach_var="items", foreach_value="[1, 2, 3]"),
            "prep": _linear("loop", inner=True, setup=("self.laps = 0",)),
            "loop": _switch(
                "'again' if self.laps < self.input else 'done'",
                ("again", "loop"),
                ("done", "after"),
                inner=True,
                setup=("self.laps += 1",),
            ),
            "after": _linear("join", inner=True),
            "join": _linear("end", join=True),
            "end": Node("end"),
        },
    ),
}
SHAPES.update(SWITCH_SHAPES)

# The tasks each step of each shape runs, as its foreach lists and switch conditions
# imply (a step a switch skips is absent).
TASKS: Dict[str, Dict[str, int]] = {
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

#: Shapes every behaviour runs across.
SHAPE_NAMES: List[str] = list(SHAPES)
#: The switch shapes only (conditional branches in every nesting, and loops).
SWITCH_SHAPE_NAMES: List[str] = list(SWITCH_SHAPES)


def _body(code: str) -> List[str]:
    lines = textwrap.dedent(code).strip("\n").splitlines()
    return lines or ["pass"]


def render_flow(
    shape: "Shape | str",
    bodies: Dict[str, str],
    *,
    flow_name: str = "FidelityFlow",
    header: str = "",
    class_body: str = "",
    decorators: Optional[Dict[str, Sequence[str]]] = None,
) -> str:
    """The source of a flow file: ``shape`` with ``bodies`` (role -> code) in its steps.

    ``header`` goes after the imports (helpers, extra imports); ``class_body``
    at the top of the class (constants, Parameters, Configs); ``decorators``
    maps a role to decorator lines (without ``@``) put above ``@step``.
    """
    if isinstance(shape, str):
        shape = SHAPES[shape]
    decorators = decorators or {}
    out = ["from cafstore import FlowSpec, step, current", textwrap.dedent(header).strip("\n"), ""]
    out.append(f"class {flow_name}(FlowSpec):")
    out.extend("    " + line for line in _body(class_body) if class_body.strip())
    for name, node in shape.nodes.items():
        roles = node.roles(name)
        role = next((r for r in roles if r in bodies), None)
        decorated = next((r for r in roles if r in decorators), None)
        out.append("")
        for line in decorators.get(decorated, ()) if decorated else ():
            out.append(f"    @{line}")
        out.append("    @step")
        out.append(f"    def {name}(self{', inputs' if node.join else ''}):")
        out.extend(f"        {line}" for line in node.setup)
        if node.kind == "foreach":
            out.append(f"        self.{node.foreach_var} = {node.foreach_value}")
        if node.kind == "switch":
            out.append(f"        self.{node.condition} = {node.condition_value}")
        out.extend("        " + line for line in _body(bodies[role] if role else "pass"))
        out.extend("        " + line for line in _transition(node))
    out += ["", "", "if __name__ == '__main__':", f"    {flow_name}()", ""]
    return "\n".join(out)


def _transition(node: Node) -> List[str]:
    if node.kind == "end":
        return []
    if node.kind == "foreach":
        return [f"self.next(self.{node.targets[0]}, foreach={node.foreach_var!r})"]
    if node.kind == "switch":
        cases = ", ".join(f"{key!r}: self.{target}" for key, target in node.cases)
        return [f"self.next({{{cases}}}, condition={node.condition!r})"]
    return ["self.next(" + ", ".join(f"self.{t}" for t in node.targets) + ")"]
