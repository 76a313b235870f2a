"""The flow graph: which steps a flow has and how ``self.next`` links them.

The graph is read from the flow class's source with :mod:`ast`; no step body
runs.  That way a mistake in the *shape* of a flow (a misspelled target, a
split that is never joined, a forgotten ``inputs`` argument) is reported before
the first task starts, with the file, line and step to fix, instead of an hour
into a run.

Parsing (:func:`graph_from_class`, :func:`graph_from_source`) never complains
about the shape of a flow: it records what it saw, including what it could not
make sense of.  :func:`validate` then applies the rules and raises
:class:`~cafstore.exception.GraphError` for the first one that is broken.  The
runner needs both halves: ``show`` should work on a flow that is still
half-written, ``run`` must refuse it.

Splits nest like parentheses.  Every static split (``self.next(self.a,
self.b)``) and every foreach (``self.next(self.a, foreach='xs')``) opens a
bracket that exactly one join step (a step taking ``inputs``) closes.  Each
node records the brackets that are open around it in ``split_parents``.
"""

from __future__ import annotations

import ast
import heapq
import inspect
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from cafstore.exception import GraphError

#: Names a step cannot have: they are attributes of every flow at run time.
RESERVED_NAMES = frozenset({"next", "input", "index", "foreach_stack", "merge_artifacts"})
#: Keyword arguments ``self.next`` understands.
NEXT_KEYWORDS = ("foreach",)

_SPLIT_TYPES = ("split", "foreach")


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
    num_args: int = 0
    #: names of the parameters besides self (``*a`` / ``**kw`` spelled so)
    arg_names: List[str] = field(default_factory=list)
    #: line of the closing ``self.next(...)``; 0 when the step has none
    next_line: int = 0
    #: decorator names as written, innermost last (``['retry', 'step']``)
    decorators: List[str] = field(default_factory=list)
    in_funcs: List[str] = field(default_factory=list)
    split_parents: List[str] = field(default_factory=list)
    matching_join: Optional[str] = None
    is_inside_foreach: bool = False
    # What parsing found wrong with this step, reported later by validate().
    _misplaced_next: List[int] = field(default_factory=list, repr=False)
    _problems: List[GraphError] = field(default_factory=list, repr=False)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON-able fields (no file: the flow's record carries it)."""
        return {
            "name": self.name,
            "type": self.type,
            "line": self.lineno,
            "doc": self.doc,
            "next": list(self.out_funcs),
            "foreach": self.foreach_param,
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
    """

    def __init__(
        self,
        name: str,
        file: str,
        nodes: Dict[str, StepNode],
        lineno: int = 0,
        doc: str = "",
        methods: Optional[Dict[str, Tuple[str, int]]] = None,
        problems: Sequence[GraphError] = (),
    ) -> None:
        self.name = name
        self.file = file
        self.lineno = lineno
        self.doc = doc
        self.nodes = nodes
        # plain (non-step) methods by name -> (file, line), for hints
        self._methods = dict(methods or {})
        self._problems = list(problems)
        self._order = _topological_order(nodes)
        rank = {n: i for i, n in enumerate(self._order)}
        for node in nodes.values():
            node.in_funcs = []
        for node in (nodes[n] for n in self._order):
            for target in dict.fromkeys(node.out_funcs):
                if target in nodes:
                    nodes[target].in_funcs.append(node.name)
        for node in nodes.values():
            node.in_funcs.sort(key=rank.__getitem__)
        self._structure_problems = _analyze_structure(self)

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


# --------------------------------------------------------------------------
# Parsing


def graph_from_source(source: str, class_name: str, file: str = "<flow>") -> FlowGraph:
    """Parse the flow class ``class_name`` defined in ``source``.

    Base classes defined in the same source are followed, so their steps are
    inherited.  A syntax error becomes a :class:`GraphError` carrying its
    line; a missing class is one too.
    """
    tree = _parse(source, file)
    classes = _classes_by_name(tree)
    if class_name not in classes:
        raise GraphError(
            f"{file}: there is no class {class_name!r} in this file, so there is no flow to read. "
            f"Check the class name (classes found: {', '.join(classes) or 'none'}).",
            file=file,
        )
    chain: List[ast.ClassDef] = []
    _base_chain(classes[class_name], classes, chain)
    return _build_graph([(cdef, file) for cdef in chain], class_name, file)


def graph_from_class(cls: type) -> FlowGraph:
    """Parse the graph of a flow class from the file it was defined in.

    ``@step`` methods of base classes that are themselves FlowSpec
    subclasses are inherited (their files are parsed too); a step redefined
    in a subclass replaces the inherited one.
    """
    chain: List[Tuple[ast.ClassDef, str]] = []
    trees: Dict[str, ast.Module] = {}
    for klass in reversed(cls.__mro__):
        if klass is cls or _is_flow_base(klass):
            chain.append(_class_def_of(klass, trees))
    return _build_graph(chain, cls.__name__, chain[-1][1])


def _is_flow_base(klass: type) -> bool:
    """A user's base flow: a FlowSpec subclass other than FlowSpec itself."""
    return klass.__name__ != "FlowSpec" and any(k.__name__ == "FlowSpec" for k in klass.__mro__[1:])


def _class_def_of(klass: type, trees: Dict[str, ast.Module]) -> Tuple[ast.ClassDef, str]:
    """Find the ``class`` statement of ``klass`` in its (parsed) file."""
    try:
        file = inspect.getsourcefile(klass) or inspect.getfile(klass)
        lines, start = inspect.findsource(klass)
    except (OSError, TypeError) as exc:
        raise GraphError(
            f"cannot read the source of flow class {klass.__name__!r} ({exc}). cafstore reads the "
            "graph from the source file, so define flows in a .py file, not in an interactive session.",
            step="",
        ) from exc
    if file not in trees:
        trees[file] = _parse("".join(lines), file)
    candidates = [
        node
        for node in ast.walk(trees[file])
        if isinstance(node, ast.ClassDef) and node.name == klass.__name__
    ]
    for node in candidates:
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if first == start + 1:
            return node, file
    if candidates:
        return candidates[-1], file
    raise GraphError(f"{file}: cannot find class {klass.__name__!r} in its source file.", file=file)


def _parse(source: str, file: str) -> ast.Module:
    try:
        return ast.parse(source, filename=file)
    except SyntaxError as exc:
        line = exc.lineno or 0
        raise GraphError(
            f"{file}:{line}: the flow file is not valid Python ({exc.msg}), so its graph cannot be "
            "read. Fix the syntax error on that line first.",
            file=file,
            line=line,
        ) from exc


def _classes_by_name(tree: ast.Module) -> Dict[str, ast.ClassDef]:
    """Top-level classes first, then nested ones not shadowed by them."""
    found = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found.setdefault(node.name, node)
    return found


def _base_chain(cdef: ast.ClassDef, classes: Dict[str, ast.ClassDef], out: List[ast.ClassDef]) -> None:
    """Append same-file bases of ``cdef`` (most basic first), then ``cdef``."""
    for base in cdef.bases:
        if isinstance(base, ast.Name) and base.id in classes and base.id != cdef.name:
            if classes[base.id] not in out:
                _base_chain(classes[base.id], classes, out)
    if cdef not in out:
        out.append(cdef)


def _build_graph(chain: List[Tuple[ast.ClassDef, str]], name: str, file: str) -> FlowGraph:
    """Merge the steps of a class chain (bases first) into one graph."""
    nodes: Dict[str, StepNode] = {}
    methods: Dict[str, Tuple[str, int]] = {}
    problems: List[GraphError] = []
    for cdef, cfile in chain:
        steps, plain, dups = _read_class(cdef, cfile)
        problems += dups
        for method in plain:
            nodes.pop(method, None)  # a plain method hides an inherited step
        for node in steps:
            nodes[node.name] = node  # an override keeps the inherited position
            methods.pop(node.name, None)
        methods.update(plain)
    cdef = chain[-1][0]
    return FlowGraph(
        name,
        file,
        nodes,
        lineno=cdef.lineno,
        doc=ast.get_docstring(cdef) or "",
        methods=methods,
        problems=problems,
    )


def _read_class(
    cdef: ast.ClassDef, file: str
) -> Tuple[List[StepNode], Dict[str, Tuple[str, int]], List[GraphError]]:
    """Steps, plain methods and duplicate definitions of one class body."""
    steps: Dict[str, StepNode] = {}
    plain: Dict[str, Tuple[str, int]] = {}
    seen: Dict[str, int] = {}
    problems: List[GraphError] = []
    for stmt in cdef.body:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        is_step = isinstance(stmt, ast.FunctionDef) and any(
            _decorator_name(d) == "step" for d in stmt.decorator_list
        )
        earlier = seen.get(stmt.name)
        if earlier is not None and (is_step or stmt.name in steps):
            problems.append(
                _error(
                    file,
                    stmt.lineno,
                    stmt.name,
                    f"step {stmt.name!r} is defined twice in class {cdef.name!r} (lines {earlier} and "
                    f"{stmt.lineno}). Python keeps only the last definition, so the first is silently "
                    "lost. Rename one of them, or delete the one you no longer need.",
                )
            )
        seen[stmt.name] = stmt.lineno
        steps.pop(stmt.name, None)
        plain.pop(stmt.name, None)
        if is_step:
            steps[stmt.name] = _read_step(stmt, file)  # type: ignore[arg-type]
        else:
            plain[stmt.name] = (file, stmt.lineno)
    return list(steps.values()), plain, problems


def _decorator_name(expr: ast.expr) -> str:
    """``step``, ``cafstore.step`` and ``step(...)`` all read as ``'step'``."""
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Name):
        return expr.id
    return ast.unparse(expr)


def _is_next_call(node: ast.AST, self_name: Optional[str]) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "next"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == (self_name or "self")
    )


def _read_step(fn: ast.FunctionDef, file: str) -> StepNode:
    """Read one step's signature and its closing ``self.next(...)``."""
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    self_name = positional[0].arg if positional else None
    extra = [a.arg for a in positional[1:]] + [a.arg for a in args.kwonlyargs]
    if args.vararg:
        extra.append("*" + args.vararg.arg)
    if args.kwarg:
        extra.append("**" + args.kwarg.arg)
    node = StepNode(
        name=fn.name,
        lineno=fn.lineno,
        file=file,
        doc=ast.get_docstring(fn) or "",
        num_args=len(extra),
        arg_names=extra,
        decorators=[_decorator_name(d) for d in fn.decorator_list],
    )
    if self_name is None:
        node._problems.append(
            _at(
                node,
                f"step {fn.name!r} takes no arguments at all, but a step is a method: write "
                f"def {fn.name}(self):.",
            )
        )
    last = fn.body[-1]
    tail = last.value if isinstance(last, ast.Expr) and _is_next_call(last.value, self_name) else None
    node._misplaced_next = sorted(
        n.lineno for n in ast.walk(fn) if n is not tail and _is_next_call(n, self_name)
    )
    if tail is not None:
        node.next_line = tail.lineno
        if fn.name != "end":
            _read_next(tail, node, self_name or "self")
    node.type = _step_type(node)
    return node


def _read_next(call: ast.Call, node: StepNode, self_name: str) -> None:
    """Fill ``out_funcs``/``foreach_param`` from ``self.next(...)``."""
    name = node.name

    def problem(line: int, text: str) -> None:
        node._problems.append(_at(node, text, line))

    if not call.args:
        problem(
            call.lineno,
            f"self.next() in step {name!r} names no step to go to. Name at least one, "
            f"e.g. self.next(self.end).",
        )
    for arg in call.args:
        if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == self_name:
            if arg.attr in node.out_funcs:
                problem(
                    arg.lineno,
                    f"self.next(...) in step {name!r} names step {arg.attr!r} twice. Each branch "
                    "must go to a different step; remove the repeated target.",
                )
            else:
                node.out_funcs.append(arg.attr)
        else:
            problem(
                arg.lineno,
                f"self.next(...) in step {name!r} has the target {ast.unparse(arg)!r}, but targets "
                f"must be written as attributes of self naming a step, e.g. self.next(self.end), "
                "so that the graph can be read without running the step.",
            )
    for kw in call.keywords:
        if kw.arg == "foreach":
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                node.foreach_param = kw.value.value
            else:
                problem(
                    kw.value.lineno,
                    f"foreach= in step {name!r} must be a string literal naming an artifact of "
                    f"this step, e.g. foreach='items', not {ast.unparse(kw.value)!r}: the graph "
                    "is read without running the step.",
                )
        else:
            shown = f"**{ast.unparse(kw.value)}" if kw.arg is None else f"{kw.arg}="
            problem(
                kw.value.lineno,
                f"self.next(...) in step {name!r} has an unknown keyword argument {shown}. "
                f"self.next accepts only: {', '.join(NEXT_KEYWORDS)}.",
            )
    foreach_given = any(kw.arg == "foreach" for kw in call.keywords)
    if foreach_given and len(call.args) > 1:
        problem(
            call.lineno,
            f"step {name!r} uses foreach= with {len(call.args)} targets. A foreach runs exactly "
            "one step once per item, and a static split (several targets) cannot use foreach: "
            "write self.next(self.<step>, foreach='<artifact>'), or drop foreach= to split "
            "statically.",
        )


def _step_type(node: StepNode) -> str:
    if node.name == "end":
        return "end"
    if node.num_args >= 1 and node.name != "start":
        return "join"
    if node.foreach_param is not None:
        return "foreach"
    if len(node.out_funcs) > 1:
        return "split"
    return "start" if node.name == "start" else "linear"


# --------------------------------------------------------------------------
# Analysis shared by the graph and validate()


def _topological_order(nodes: Dict[str, StepNode]) -> List[str]:
    """Kahn's algorithm; ready steps are taken start first, end last, then by source order."""
    index = {name: i for i, name in enumerate(nodes)}

    def key(name: str) -> Tuple[int, int]:
        return (0 if name == "start" else 2 if name == "end" else 1, index[name])

    indegree = dict.fromkeys(nodes, 0)
    for node in nodes.values():
        for target in set(node.out_funcs):
            if target in nodes:
                indegree[target] += 1
    ready = [key(n) for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: List[str] = []
    names = list(nodes)
    while ready:
        name = names[heapq.heappop(ready)[1]]
        order.append(name)
        for target in set(nodes[name].out_funcs):
            if target in nodes:
                indegree[target] -= 1
                if indegree[target] == 0:
                    heapq.heappush(ready, key(target))
    placed = set(order)
    order += sorted((n for n in nodes if n not in placed), key=key)  # cycles
    return order


def _analyze_structure(graph: FlowGraph) -> List[GraphError]:
    """Match splits to joins like parentheses; fill the split fields.

    Walks the steps in run order carrying the stack of open splits.  It
    never raises: it notes what does not match, and :func:`validate`
    reports it once the simpler rules hold (on a graph with cycles or
    missing edges these notes are not meaningful, and are not reported).
    """
    problems: List[GraphError] = []
    out_stack: Dict[str, Tuple[str, ...]] = {}
    joins_of: Dict[str, List[str]] = {}
    for node in graph.sorted_nodes():
        node.matching_join = None
        preds = [p for p in node.in_funcs if p in out_stack]
        if node.type == "join":
            stack = _join_stack(graph, node, preds, out_stack, problems)
            if stack:
                joins_of.setdefault(stack[-1], []).append(node.name)
            inner = stack[:-1]
        else:
            stack = inner = out_stack[preds[0]] if preds else ()
        node.split_parents = list(stack)
        node.is_inside_foreach = any(graph[s].type == "foreach" for s in inner)
        out_stack[node.name] = inner + (node.name,) if node.type in _SPLIT_TYPES else inner
    for node in graph.nodes.values():
        joins = joins_of.get(node.name, [])
        if node.type in _SPLIT_TYPES and joins:
            node.matching_join = joins[0]
        if len(joins) > 1:
            j1, j2 = graph[joins[0]], graph[joins[1]]
            problems.append(
                _at(
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
            _at(
                end,
                f"step 'end' is reached while the {kind} started by step {open_split.name!r} (line "
                f"{open_split.lineno}) is still open. Every split must be closed by a join before "
                f"end: add a join step, e.g. def join(self, inputs): ... self.next(self.end), and "
                f"send the branches of {open_split.name!r} to it instead of to end.",
            )
        )
    return problems


def _join_stack(
    graph: FlowGraph,
    node: StepNode,
    preds: List[str],
    out_stack: Dict[str, Tuple[str, ...]],
    problems: List[GraphError],
) -> Tuple[str, ...]:
    """The open splits arriving at a join (the last one is the one it closes)."""
    if not preds:
        return ()
    first, stack = preds[0], out_stack[preds[0]]
    for other in preds[1:]:
        if out_stack[other] != stack:
            problems.append(
                _at(
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
                _at(
                    node,
                    f"step {node.name!r} {where}, but only {first!r} leads to it and {first!r} is "
                    f"not inside any split or foreach, so there is nothing to join. Remove the "
                    f"argument: def {node.name}(self):.",
                )
            )
        else:
            problems.append(
                _at(
                    node,
                    f"join step {node.name!r} merges {', '.join(map(repr, preds))}, which are not "
                    "branches of a split. A join must collect the branches of one split; send these "
                    "steps one after the other instead.",
                )
            )
        return stack
    split = graph[stack[-1]]
    if len(preds) == 1 and split.type != "foreach":
        problems.append(
            _at(
                node,
                f"step {node.name!r} {where}, but only {first!r} leads to it. A join must either "
                f"follow a foreach or merge several branches; here the other branches of split "
                f"{split.name!r} (line {split.lineno}) go elsewhere. Send all branches of "
                f"{split.name!r} to {node.name!r}, or remove the argument.",
            )
        )
    if split.type == "foreach" and split.name in preds:
        problems.append(
            _at(
                split,
                f"the foreach in step {split.name!r} goes straight to the join {node.name!r}, so "
                f"nothing would run once per item. Add a step between them, e.g. "
                f"self.next(self.process, foreach={split.foreach_param!r}) and a step process "
                f"that does self.next(self.{node.name}).",
                split.next_line,
            )
        )
    return stack


def _where(graph: FlowGraph, stack: Tuple[str, ...]) -> str:
    if not stack:
        return "which is outside any split"
    split = graph[stack[-1]]
    kind = "foreach" if split.type == "foreach" else "split"
    return f"a branch of the {kind} in step {split.name!r} (line {split.lineno})"


def _error(file: str, line: int, step: str, text: str) -> GraphError:
    return GraphError(f"{file}:{line}: {text}", file=file, line=line, step=step)


def _at(node: StepNode, text: str, line: Optional[int] = None) -> GraphError:
    """An error about ``node``, at its ``def`` line unless told otherwise."""
    return _error(node.file, line or node.lineno, node.name, text)


def validate(graph: FlowGraph) -> None:
    """Raise :class:`GraphError` for the first rule the graph breaks (rules: runner/graph/rules.py)."""
    from cafstore.runner.graph.rules import check

    check(graph)
