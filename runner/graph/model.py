"""The data model of a flow graph: which steps a flow has and how ``self.next`` links them.

A :class:`FlowGraph` is built by the parser (:mod:`.parser`) from the flow
class's source and judged by the rules (:mod:`.rules`); both depend on this
module only, so ``show`` works on a half-written flow that ``run`` refuses.
The model never raises about the shape of a flow: what the parser could not
make sense of (:attr:`FlowGraph.parse_problems`, :attr:`StepNode.parse_problems`,
:attr:`StepNode.misplaced_next`) and what the structure analysis below found
(:attr:`FlowGraph.structure_problems`) are kept as data, and the rules decide
which to report first.

Splits nest like parentheses (see :mod:`.structure`, which works out the
brackets open around each node when a graph is built, because the runner
needs those fields, not only the rules).  A switch step (``self.next({'a':
self.a, 'b': self.b}, condition='x')``) has type ``'split-switch'``: one of
its targets runs, picked at run time; a switch may name itself, which makes
the step a loop (a new task of it per lap).
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from cafstore.exception import GraphError

#: Names a step cannot have: they are attributes of every flow at run time.
RESERVED_NAMES = frozenset({"next", "input", "index", "foreach_stack", "merge_artifacts"})
#: The values of :attr:`StepNode.type` (see :func:`step_type`).
STEP_TYPES = ("start", "linear", "split", "foreach", "split-switch", "join", "end")


@dataclass(eq=False)
class StepNode:
    """One ``@step`` method, as written in the source.

    ``type`` says how the step hands over to the next one: ``'end'`` for the
    step named end, ``'join'`` for a step taking ``inputs``, ``'foreach'`` /
    ``'split'`` for a step fanning out, ``'start'`` for a start that goes on
    to a single step and ``'linear'`` for every other step.  A start step that
    fans out therefore has type ``'split'`` or ``'foreach'``: the runner needs
    the fan-out more than the name, which it can always compare.

    ``split_parents`` lists the splits open around the step, outermost
    first.  For a join it still includes the split the join closes (always
    the last entry), so ``split_parents[-1]`` of a join is its split.
    ``is_inside_foreach`` is true when the step runs once per item of some
    foreach (a join that closes a foreach is outside it unless another
    foreach encloses both).
    """

    name: str
    lineno: int
    file: str = "<flow>"
    doc: str = ""
    type: str = "linear"
    out_funcs: List[str] = field(default_factory=list)
    foreach_param: Optional[str] = None
    #: a switch: the artifact whose value picks the target, and the cases (key -> step) in source
    #: order; keys are the literal values written (str, int, bool, ...)
    condition: Optional[str] = None
    switch_cases: Dict[Any, str] = field(default_factory=dict)
    num_args: int = 0
    #: names of the parameters besides self (``*a`` / ``**kw`` spelled so)
    arg_names: List[str] = field(default_factory=list)
    #: line of the closing ``self.next(...)``; 0 when the step has none
    next_line: int = 0
    #: decorator names as written, innermost last (``['retry', 'step']``)
    decorators: List[str] = field(default_factory=list)
    in_funcs: List[str] = field(default_factory=list)
    split_parents: List[str] = field(default_factory=list)
    split_branches: List[str] = field(default_factory=list)
    matching_join: Optional[str] = None
    is_inside_foreach: bool = False
    #: reached from different branches of a split, so it must be a join (see :mod:`.structure`)
    merges_branches: bool = False
    #: lines of the ``self.next(...)`` calls that are not the step's last
    #: statement (inside an ``if``, or followed by other code), in order;
    #: kept as data so that ``show`` still works, the rules report the first.
    misplaced_next: List[int] = field(default_factory=list, repr=False)
    #: what the parser could not make sense of in this step (a target that
    #: is not ``self.<step>``, a non-literal ``foreach=``, ...), for the
    #: rules to report in source order.
    parse_problems: List[GraphError] = field(default_factory=list, repr=False)

    #: Metaflow marks ``@parallel`` steps so; cafstore has none (docs/compatibility.md).
    parallel_step = False

    def to_dict(self) -> Dict[str, Any]:
        """The JSON-able fields (no file: the flow's record carries it)."""
        return {
            "name": self.name,
            "type": self.type,
            "line": self.lineno,
            "doc": self.doc,
            "next": list(self.out_funcs),
            "foreach": self.foreach_param,
            **(
                {"condition": self.condition, "switch_cases": {str(k): v for k, v in self.switch_cases.items()}}
                if self.type == "split-switch"
                else {}
            ),
            "num_args": self.num_args,
            "in_funcs": list(self.in_funcs),
            "split_parents": list(self.split_parents),
            "matching_join": self.matching_join,
            "is_inside_foreach": self.is_inside_foreach,
            "decorators": list(self.decorators),
        }


class FlowGraph:
    """The steps of one flow class and the edges between them.

    ``nodes`` keeps the order in which steps appear in the source (steps of
    base classes first); iteration follows it.  :meth:`sorted_nodes` gives
    the order in which they can run.

    Besides the steps, the graph keeps what the rules need to explain a
    mistake: ``methods``, the plain (non-step) methods by name ->
    ``(file, line)``, so that ``self.next(self.helper)`` can be answered with
    "decorate it with @step"; ``parse_problems``, what the parser found wrong
    with the class as a whole (a step defined twice); and
    ``structure_problems``, the splits and joins that do not match.  They
    are data, not exceptions, because building a graph never fails on its
    shape: judging it is :func:`~cafstore.runner.graph.validate`'s job.
    """

    def __init__(
        self,
        name: str,
        file: str,
        nodes: Dict[str, StepNode],
        lineno: int = 0,
        doc: str = "",
        methods: Optional[Dict[str, Tuple[str, int]]] = None,
        parse_problems: Sequence[GraphError] = (),
    ) -> None:
        self.name = name
        self.file = file
        self.lineno = lineno
        self.doc = doc
        self.nodes = nodes
        self.methods: Dict[str, Tuple[str, int]] = dict(methods or {})
        self.parse_problems: List[GraphError] = list(parse_problems)
        self._order = _topological_order(nodes)
        rank = {n: i for i, n in enumerate(self._order)}
        for node in nodes.values():
            node.in_funcs = []
        for node in (nodes[n] for n in self._order):
            for target in dict.fromkeys(node.out_funcs):
                if target in nodes and target != node.name:  # a switch looping to itself is not an input
                    nodes[target].in_funcs.append(node.name)
        for node in nodes.values():
            node.in_funcs.sort(key=rank.__getitem__)
        from cafstore.runner.graph.structure import analyze_structure

        self.structure_problems: List[GraphError] = analyze_structure(self)

    def __getitem__(self, name: str) -> StepNode:
        return self.nodes[name]

    def __iter__(self) -> Iterator[StepNode]:
        return iter(list(self.nodes.values()))

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"FlowGraph({self.name!r}, steps={list(self.nodes)!r})"

    def sorted_nodes(self) -> List[StepNode]:
        """Steps in an order they can run: start first, end last.

        Ties are broken by source order so the listing is stable.  Steps
        caught in a cycle (an invalid graph) come last, in source order.
        """
        return [self.nodes[n] for n in self._order]

    def describe(self) -> str:
        """The text of ``python flow.py show``."""
        lines = [self.name]
        lines += ["    " + line for line in self.doc.splitlines()]
        for node in self.sorted_nodes():
            lines += ["", f"Step {node.name}"]
            lines += ["    " + line if line else "" for line in node.doc.splitlines()]
            if node.type == "end":
                continue
            if not node.out_funcs:
                lines.append("    => (no next step)")
            elif node.foreach_param is not None:
                lines.append(f"    => {node.out_funcs[0]} (foreach over '{node.foreach_param}')")
            elif node.type == "split-switch":
                cases = ", ".join(f"{key!r}: {target}" for key, target in node.switch_cases.items())
                lines.append(f"    => {', '.join(node.out_funcs)} (switch on '{node.condition}': {cases})")
            else:
                lines.append("    => " + ", ".join(node.out_funcs))
        return "\n".join(lines) + "\n"

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-able description, stored with each run.

        Only the file's base name is kept, so the same flow checked out in
        two places describes itself identically.
        """
        return {
            "name": self.name,
            "file": os.path.basename(self.file),
            "doc": self.doc,
            "steps": [node.to_dict() for node in self.sorted_nodes()],
        }


def step_type(node: StepNode) -> str:
    """How ``node`` hands over to the next step, from its name, arguments and ``self.next``.

    A step taking an argument is a join whatever it is called (except
    start, which nothing precedes), so that a forgotten or extra ``inputs``
    shows up as a join in the wrong place, which the rules can explain.
    """
    if node.name == "end":
        return "end"
    if node.num_args >= 1 and node.name != "start":
        return "join"
    if node.condition is not None:
        return "split-switch"
    if node.foreach_param is not None:
        return "foreach"
    if len(node.out_funcs) > 1:
        return "split"
    return "start" if node.name == "start" else "linear"


# --------------------------------------------------------------------------
# Order and structure, worked out when a graph is built


def _topological_order(nodes: Dict[str, StepNode]) -> List[str]:
    """Kahn's algorithm; ready steps are taken start first, end last, then by source order."""
    index = {name: i for i, name in enumerate(nodes)}

    def key(name: str) -> Tuple[int, int]:
        return (0 if name == "start" else 2 if name == "end" else 1, index[name])

    indegree = dict.fromkeys(nodes, 0)
    for node in nodes.values():
        for target in set(node.out_funcs) - {node.name}:
            if target in nodes:
                indegree[target] += 1
    ready = [key(n) for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: List[str] = []
    names = list(nodes)
    while ready:
        name = names[heapq.heappop(ready)[1]]
        order.append(name)
        for target in set(nodes[name].out_funcs) - {name}:
            if target in nodes:
                indegree[target] -= 1
                if indegree[target] == 0:
                    heapq.heappush(ready, key(target))
    placed = set(order)
    order += sorted((n for n in nodes if n not in placed), key=key)  # cycles
    return order


# --------------------------------------------------------------------------
# Errors that point at the source


def graph_error(file: str, line: int, step: str, text: str) -> GraphError:
    """A :class:`GraphError` whose message starts with ``file:line:``.

    Every graph message is spelled this way, so an editor or terminal can
    jump to the line, and the error carries ``file``, ``line`` and ``step``
    for callers (and tests) that want them separately.
    """
    return GraphError(f"{file}:{line}: {text}", file=file, line=line, step=step)


def step_error(node: StepNode, text: str, line: Optional[int] = None) -> GraphError:
    """An error about ``node``, at its ``def`` line unless told otherwise."""
    return graph_error(node.file, line or node.lineno, node.name, text)
