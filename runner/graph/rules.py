"""Judging a flow graph: the rules it must follow, checked by :func:`validate`.

Kept apart from the parser (:mod:`.parser`), and independent of it: both
depend only on the model (:mod:`.model`), so reading a flow and judging it
stay two separate jobs.  ``show`` reads a half-written flow; ``run`` judges
it first and refuses it with :class:`~cafstore.exception.GraphError` naming
the file, line and step of the first mistake.
"""

from __future__ import annotations

import difflib
from typing import Dict, Iterator, List

from cafstore.exception import GraphError
from cafstore.runner.graph.model import RESERVED_NAMES, FlowGraph, StepNode, graph_error, step_error


def validate(graph: FlowGraph) -> None:
    """Raise :class:`GraphError` for the first rule the graph breaks.

    Rules are checked from the simplest (names, start/end) to the most
    global (split/join matching), so the message points at the mistake the
    user should fix first, not at its consequences.
    """
    for error in _violations(graph):
        raise error


def _violations(graph: FlowGraph) -> Iterator[GraphError]:
    yield from graph.parse_problems  # duplicate definitions
    for node in graph:
        if node.name in RESERVED_NAMES or node.name.startswith("_"):
            why = (
                "starts with '_', which cafstore keeps for itself"
                if node.name.startswith("_")
                else "is reserved, because every flow already has an attribute of that name"
            )
            yield step_error(
                node,
                f"a step cannot be named {node.name!r}: the name {why}. Rename the step (and "
                "the self.next(...) calls that go to it).",
            )
    for required, role in (("start", "where every run begins"), ("end", "where every run finishes")):
        if required not in graph:
            yield graph_error(
                graph.file,
                graph.lineno,
                required,
                f"flow {graph.name!r} has no step named {required!r}, {role}. Add one: "
                f"@step def {required}(self): ..."
                + (" with self.next(...) as its last line." if required == "start" else ""),
            )
    for node in graph:
        yield from _step_violations(graph, node)
    yield from _cycle_violations(graph)
    yield from _reachability_violations(graph)
    yield from _dead_end_violations(graph)
    # Joins are checked in run order, so a misplaced join is reported
    # before what it causes downstream (end reached from two branches).
    structure: Dict[str, List[GraphError]] = {}
    for error in graph.structure_problems:
        structure.setdefault(error.step, []).append(error)
    for node in graph.sorted_nodes():
        if node.type == "join":
            yield from _switch_into_join(graph, node)
        if node.merges_branches and node.num_args == 0:
            sources = ", ".join(map(repr, node.in_funcs))
            if node.name == "end":
                yield step_error(
                    node,
                    f"step 'end' is reached from several steps ({sources}), but end cannot join "
                    "branches. Add a join step, e.g. @step def join(self, inputs): ... "
                    "self.next(self.end), and send those steps to it.",
                )
            else:
                yield step_error(
                    node,
                    f"step {node.name!r} is reached from several steps ({sources}), so it is a join "
                    f"and must take the branches as an argument: def {node.name}(self, inputs):.",
                )
        yield from structure.pop(node.name, [])


def _step_violations(graph: FlowGraph, node: StepNode) -> Iterator[GraphError]:
    """Rules about one step on its own (and the names it points to)."""
    name = node.name
    if name == "end":
        calls = sorted(node.misplaced_next + ([node.next_line] if node.next_line else []))
        if calls:
            yield step_error(
                node,
                "step 'end' calls self.next(...), but end is the last step of every flow and "
                "goes nowhere. Remove the self.next(...) call from end.",
                calls[0],
            )
        if node.num_args:
            yield step_error(
                node,
                f"step 'end' takes an argument ({node.arg_names[0]}), but end cannot be a join. "
                "Join the branches in a separate step, e.g. def join(self, inputs): ... "
                "self.next(self.end), and write def end(self):.",
            )
        return
    if node.misplaced_next:
        line = node.misplaced_next[0]
        yield step_error(
            node,
            f"self.next(...) in step {name!r} at line {line} must be the last line of the step, "
            "not inside an if/for/with/try or followed by other code: the graph is read without "
            "running the step, so each step always goes to the same next step(s). Move it to "
            "the end; to choose at run time, decide inside the next step instead.",
            line,
        )
    if not node.next_line:
        yield step_error(
            node,
            f"step {name!r} has no self.next(...). Every step except end must say which step "
            f"runs after it, as its last line, e.g. self.next(self.end).",
        )
    yield from node.parse_problems
    for target in node.out_funcs:
        if target in graph:
            continue
        if target in graph.methods:
            hint = f"{target!r} is a method but not a step: decorate it with @step."
        else:
            close = difflib.get_close_matches(target, list(graph.nodes), n=1)
            hint = f"Did you mean self.{close[0]}? " if close else ""
            hint += f"The steps are: {', '.join(graph.nodes)}."
        yield step_error(
            node,
            f"self.next(...) in step {name!r} goes to {target!r}, which is not a step of flow {graph.name!r}. {hint}",
            node.next_line,
        )
    if name == "start" and node.num_args:
        yield step_error(
            node,
            f"step 'start' takes an argument ({node.arg_names[0]}), but start is the first step "
            "and nothing comes before it to pass inputs. Write def start(self):.",
        )
    elif node.num_args > 1:
        yield step_error(
            node,
            f"step {name!r} takes {node.num_args} arguments besides self "
            f"({', '.join(node.arg_names)}). A step takes none, or exactly one (inputs) if it "
            f"is a join: def {name}(self, inputs):.",
        )
    if node.type == "join" and (
        node.foreach_param is not None or node.condition is not None or len(node.out_funcs) > 1
    ):
        yield step_error(
            node,
            f"join step {name!r} also splits again. A step either joins or splits: let the join "
            f"go to one new step (self.next(self.<step>)) and split from there.",
            node.next_line,
        )


def _cycle_violations(graph: FlowGraph) -> Iterator[GraphError]:
    """Depth-first search from start; an edge back to a step on the path is a cycle.

    Iterative, so a flow with thousands of steps cannot hit the recursion limit.
    """
    if "start" not in graph:
        return
    done: set = set()
    path: List[str] = ["start"]
    on_path = {"start"}
    pending: List[Iterator[str]] = [iter(graph["start"].out_funcs)]
    while pending:
        target = next(pending[-1], None)
        if target is None:
            finished = path.pop()
            on_path.discard(finished)
            done.add(finished)
            pending.pop()
            continue
        if target not in graph or target in done:
            continue
        if target == path[-1] and graph[target].type == "split-switch":
            continue  # a switch may loop to itself: each lap is a new task of the step
        if target in on_path:
            node = graph[path[-1]]
            if target == node.name:
                hint = (
                    "A step can only repeat itself through a switch, e.g. "
                    f"self.next({{'again': self.{target}, 'done': self.end}}, condition='status')."
                )
            else:
                hint = (
                    "A flow only moves forward, except that a switch may name its own step to loop "
                    "(self.next({'again': self.<this step>, 'done': self.<next>}, condition='...')); "
                    "to repeat work over several items use a foreach."
                )
            loop = path[path.index(target) :] + [target]
            yield step_error(
                node,
                f"step {node.name!r} goes back to step {target!r} ({' -> '.join(loop)}), which makes a cycle. {hint}",
                node.next_line,
            )
            return
        path.append(target)
        on_path.add(target)
        pending.append(iter(graph[target].out_funcs))


def _reachability_violations(graph: FlowGraph) -> Iterator[GraphError]:
    if "start" not in graph:
        return
    seen = {"start"}
    todo = ["start"]
    while todo:
        for target in graph[todo.pop()].out_funcs:
            if target in graph and target not in seen:
                seen.add(target)
                todo.append(target)
    for node in graph:
        if node.name not in seen:
            yield step_error(
                node,
                f"step {node.name!r} can never run: no chain of self.next(...) from start leads "
                f"to it. Add self.next(self.{node.name}) to the step that should come before it, "
                "or delete the step (or its @step decorator).",
            )
            return


def _dead_end_violations(graph: FlowGraph) -> Iterator[GraphError]:
    """A step from which end cannot be reached: a switch whose every case loops back to itself."""
    if "end" not in graph:
        return
    reaches = {"end"}
    changed = True
    while changed:
        changed = False
        for node in graph:
            if node.name not in reaches and any(t in reaches for t in node.out_funcs):
                reaches.add(node.name)
                changed = True
    for node in graph.sorted_nodes():
        if node.name not in reaches:
            yield step_error(
                node,
                f"step {node.name!r} can never reach end: every case of its switch "
                f"({', '.join(f'{k!r}: {v}' for k, v in node.switch_cases.items())}) loops back to it, "
                "so the run could never finish. Give the switch a case that leads on, e.g. "
                f"'done': self.end."
                if node.switch_cases
                else f"step {node.name!r} can never reach end: no chain of self.next(...) from it leads there.",
                node.next_line or None,
            )
            return


def _switch_into_join(graph: FlowGraph, join: StepNode) -> Iterator[GraphError]:
    """Like Metaflow: a switch case may not go straight to a join (put a plain step between)."""
    for source in join.in_funcs:
        node = graph[source]
        if node.type == "split-switch":
            yield step_error(
                node,
                f"a case of the switch in step {source!r} goes straight to the join step {join.name!r}. A "
                "conditional path cannot lead directly to a join: put an ordinary step on that path "
                f"between {source!r} and {join.name!r}.",
                node.next_line or None,
            )
            return
