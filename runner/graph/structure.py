"""The split/join structure of a flow graph, worked out when a graph is built.

Splits nest like parentheses.  Every static split (``self.next(self.a,
self.b)``) and every foreach (``self.next(self.a, foreach='xs')``) opens a
bracket that exactly one join step (a step taking ``inputs``) closes.  A
switch (``self.next({...}, condition='x')``) opens nothing: exactly one of
its targets runs, so its branches may meet again at any ordinary step, and
a static join counts each branch of its split once whichever switch path
the branch took.

Each node gets ``split_parents`` (the brackets open around it),
``split_branches`` (for each of those, the first step of the branch it is
on) and ``merges_branches`` (it is reached from different branches of a
split, so it must be a join).  Kept apart from :mod:`.model` to keep both
small; it never raises, it returns what does not match for the rules to
report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Tuple

from cafstore.exception import GraphError
from cafstore.runner.graph.model import step_error

if TYPE_CHECKING:
    from cafstore.runner.graph.model import FlowGraph, StepNode

#: Step types that open a bracket a join must close.
SPLIT_TYPES = ("split", "foreach")

_Stack = Tuple[str, ...]


def analyze_structure(graph: "FlowGraph") -> List[GraphError]:
    """Match splits to joins like parentheses; fill the split fields.

    Walks the steps in run order carrying the stack of open splits and the
    branch taken in each.  On a graph with cycles or missing edges these
    notes are not meaningful, and the rules do not report them.
    """
    problems: List[GraphError] = []
    out_stack: Dict[str, _Stack] = {}
    out_branch: Dict[str, _Stack] = {}
    joins_of: Dict[str, List[str]] = {}
    partial: List[Tuple[str, GraphError]] = []  # a join some branches of its split never reach
    for node in graph.sorted_nodes():
        node.matching_join = None
        node.merges_branches = False
        preds = [p for p in node.in_funcs if p in out_stack]
        # The branch each way in is on: a split's targets each start a branch of their own.
        arrive = {p: out_branch[p] + (node.name,) if graph[p].type in SPLIT_TYPES else out_branch[p] for p in preds}
        if node.type == "join":
            stack = _join_stack(graph, node, preds, out_stack, arrive, problems, partial)
            if stack:
                joins_of.setdefault(stack[-1], []).append(node.name)
            inner = stack[:-1]
            branches = arrive[preds[0]][: len(inner)] if preds else ()
        else:
            stack = inner = out_stack[preds[0]] if preds else ()
            branches = arrive[preds[0]] if preds else ()
            # Several ways in are fine when only one can be taken (switch paths meeting again);
            # from different branches of a split (or different splits) they would all arrive.
            node.merges_branches = any((out_stack[p], arrive[p]) != (stack, branches) for p in preds[1:])
        node.split_parents = list(stack)
        node.split_branches = list(branches)
        node.is_inside_foreach = any(graph[s].type == "foreach" for s in inner)
        out_stack[node.name] = inner + (node.name,) if node.type in SPLIT_TYPES else inner
        out_branch[node.name] = tuple(branches)
    # Reported unless the split has several joins: that mistake is the one to explain.
    problems += [error for split, error in partial if len(joins_of.get(split, [])) <= 1]
    for node in graph.nodes.values():
        joins = joins_of.get(node.name, [])
        if node.type in SPLIT_TYPES and joins:
            node.matching_join = joins[0]
        if len(joins) > 1:
            j1, j2 = graph[joins[0]], graph[joins[1]]
            problems.append(
                step_error(
                    j2,
                    f"split {node.name!r} (line {node.lineno}) is closed by two joins, {j1.name!r} "
                    f"(line {j1.lineno}) and {j2.name!r} (line {j2.lineno}). Every split needs "
                    f"exactly one join that all of its branches reach: send the branches that go "
                    f"to {j2.name!r} to {j1.name!r} instead (or merge the two joins).",
                )
            )
    if "end" in graph and graph["end"].split_parents:
        end = graph["end"]
        open_split = graph[end.split_parents[-1]]
        kind = "foreach" if open_split.type == "foreach" else "split"
        problems.append(
            step_error(
                end,
                f"step 'end' is reached while the {kind} started by step {open_split.name!r} (line "
                f"{open_split.lineno}) is still open. Every split must be closed by a join before "
                f"end: add a join step, e.g. def join(self, inputs): ... self.next(self.end), and "
                f"send the branches of {open_split.name!r} to it instead of to end.",
            )
        )
    return problems


def _join_stack(
    graph: "FlowGraph",
    node: "StepNode",
    preds: List[str],
    out_stack: Dict[str, _Stack],
    arrive: Dict[str, _Stack],
    problems: List[GraphError],
    partial: List[Tuple[str, GraphError]],
) -> _Stack:
    """The open splits arriving at a join (the last one is the one it closes)."""
    if not preds:
        return ()
    first, stack = preds[0], out_stack[preds[0]]
    for other in preds[1:]:
        if out_stack[other] != stack:
            problems.append(
                step_error(
                    node,
                    f"join step {node.name!r} merges {first!r}, {_where(graph, stack)}, with "
                    f"{other!r}, {_where(graph, out_stack[other])}. A join must collect the branches "
                    "of exactly one split, and nested splits must be joined before the splits "
                    "around them (like matching parentheses): give each split its own join.",
                )
            )
            return stack
    where = f"takes an argument ({node.arg_names[0] if node.arg_names else 'inputs'}), which makes it a join"
    if not stack:
        if len(preds) == 1:
            problems.append(
                step_error(
                    node,
                    f"step {node.name!r} {where}, but only {first!r} leads to it and {first!r} is "
                    f"not inside any split or foreach, so there is nothing to join. Remove the "
                    f"argument: def {node.name}(self):.",
                )
            )
        else:
            problems.append(
                step_error(
                    node,
                    f"join step {node.name!r} merges {', '.join(map(repr, preds))}, which are not "
                    "branches of a split. A join must collect the branches of one split; send these "
                    "steps one after the other instead.",
                )
            )
        return stack
    split = graph[stack[-1]]
    depth = len(stack) - 1
    arriving = {arrive[p][depth] for p in preds if len(arrive[p]) > depth}
    if split.type != "foreach" and len(preds) == 1:
        problems.append(
            step_error(
                node,
                f"step {node.name!r} {where}, but only {first!r} leads to it. A join must either "
                f"follow a foreach or merge several branches; here the other branches of split "
                f"{split.name!r} (line {split.lineno}) go elsewhere. Send all branches of "
                f"{split.name!r} to {node.name!r}, or remove the argument.",
            )
        )
    elif split.type != "foreach" and arriving != set(split.out_funcs):
        missing = [b for b in split.out_funcs if b not in arriving]
        partial.append(
            (
                split.name,
                step_error(
                    node,
                    f"join step {node.name!r} closes split {split.name!r} (line {split.lineno}), but "
                    f"its branch(es) {', '.join(map(repr, missing))} never reach it (only "
                    f"{', '.join(map(repr, preds))} lead to it, all from the branch(es) "
                    f"{', '.join(map(repr, sorted(arriving)))}). A switch inside a branch picks one "
                    f"path, it does not make the branch: send every branch of {split.name!r} to "
                    f"{node.name!r}.",
                ),
            )
        )
    if split.type == "foreach" and split.name in preds:
        problems.append(
            step_error(
                split,
                f"the foreach in step {split.name!r} goes straight to the join {node.name!r}, so "
                f"nothing would run once per item. Add a step between them, e.g. "
                f"self.next(self.process, foreach={split.foreach_param!r}) and a step process "
                f"that does self.next(self.{node.name}).",
                split.next_line,
            )
        )
    return stack


def _where(graph: "FlowGraph", stack: _Stack) -> str:
    if not stack:
        return "which is outside any split"
    split = graph[stack[-1]]
    kind = "foreach" if split.type == "foreach" else "split"
    return f"a branch of the {kind} in step {split.name!r} (line {split.lineno})"
