"""Reading a flow class's source with :mod:`ast` into a :class:`~.model.FlowGraph`.

The graph is read from the source, and no step body runs.  That way a
mistake in the *shape* of a flow (a misspelled target, a split that is never
joined, a forgotten ``inputs`` argument) is reported before the first task
starts, with the file, line and step to fix, instead of an hour into a run.

The parser never complains about the shape of a flow: it records what it
saw, including what it could not make sense of (a step defined twice, a
``self.next`` that is not the last statement, a target that is not
``self.<step>``), as data on the model.  Judging the graph is the rules'
job (:mod:`.rules`), which this module does not import.  The only errors
raised here are those that leave nothing to read: a syntax error, a missing
class, a class whose source cannot be found.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

from cafstore.exception import GraphError
from cafstore.runner.graph.model import FlowGraph, StepNode, graph_error, step_error, step_type

#: Keyword arguments ``self.next`` understands.
NEXT_KEYWORDS = ("foreach", "condition")


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
        node for node in ast.walk(trees[file]) if isinstance(node, ast.ClassDef) and node.name == klass.__name__
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
        parse_problems=problems,
    )


def _read_class(cdef: ast.ClassDef, file: str) -> Tuple[List[StepNode], Dict[str, Tuple[str, int]], List[GraphError]]:
    """Steps, plain methods and duplicate definitions of one class body."""
    steps: Dict[str, StepNode] = {}
    plain: Dict[str, Tuple[str, int]] = {}
    seen: Dict[str, int] = {}
    problems: List[GraphError] = []
    for stmt in cdef.body:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        is_step = isinstance(stmt, ast.FunctionDef) and any(_decorator_name(d) == "step" for d in stmt.decorator_list)
        earlier = seen.get(stmt.name)
        if earlier is not None and (is_step or stmt.name in steps):
            problems.append(
                graph_error(
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
        node.parse_problems.append(
            step_error(
                node,
                f"step {fn.name!r} takes no arguments at all, but a step is a method: write def {fn.name}(self):.",
            )
        )
    last = fn.body[-1]
    tail = last.value if isinstance(last, ast.Expr) and _is_next_call(last.value, self_name) else None
    node.misplaced_next = sorted(n.lineno for n in ast.walk(fn) if n is not tail and _is_next_call(n, self_name))
    if tail is not None:
        node.next_line = tail.lineno
        if fn.name != "end":
            _read_next(tail, node, self_name or "self")
    node.type = step_type(node)
    return node


def _read_next(call: ast.Call, node: StepNode, self_name: str) -> None:
    """Fill ``out_funcs``/``foreach_param`` from ``self.next(...)``."""
    name = node.name

    def problem(line: int, text: str) -> None:
        node.parse_problems.append(step_error(node, text, line))

    if any(kw.arg == "condition" for kw in call.keywords) or any(isinstance(a, ast.Dict) for a in call.args):
        _read_switch(call, node, self_name, problem)
        return
    if not call.args:
        problem(
            call.lineno,
            f"self.next() in step {name!r} names no step to go to. Name at least one, e.g. self.next(self.end).",
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
        elif kw.arg == "num_parallel":
            problem(
                kw.value.lineno,
                f"self.next(..., num_parallel=...) in step {name!r}: @parallel steps (multi-node gangs) "
                "are not supported by cafstore; use a foreach over a list of the node indices instead.",
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


def _read_switch(call: ast.Call, node: StepNode, self_name: str, problem: Callable[[int, str], None]) -> None:
    """Fill ``condition``/``switch_cases``/``out_funcs`` from ``self.next({...}, condition='x')``."""
    name = node.name
    form = "self.next({'a': self.a, 'b': self.b}, condition='artifact')"
    condition = next((kw for kw in call.keywords if kw.arg == "condition"), None)
    cases = call.args[0] if len(call.args) == 1 and isinstance(call.args[0], ast.Dict) else None
    if condition is None:
        problem(
            call.lineno,
            f"self.next(...) in step {name!r} is given a dict of cases but no condition=. A switch "
            f"names the artifact whose value picks the case: {form}.",
        )
    elif isinstance(condition.value, ast.Constant) and isinstance(condition.value.value, str):
        node.condition = condition.value.value
    else:
        node.condition = ast.unparse(condition.value)
        problem(
            condition.value.lineno,
            f"condition= in step {name!r} must be a string literal naming an artifact of this step, "
            f"e.g. condition='mode', not {ast.unparse(condition.value)!r}: the graph is read without "
            "running the step.",
        )
    for kw in call.keywords:
        if kw.arg not in ("condition",):
            shown = f"**{ast.unparse(kw.value)}" if kw.arg is None else f"{kw.arg}="
            problem(
                kw.value.lineno,
                f"self.next(...) in step {name!r} is a switch (condition=) and also has {shown}. A "
                f"switch takes only the dict of cases and condition=; it cannot be combined with a "
                f"foreach: switch to a step that does the foreach instead.",
            )
    if cases is None:
        problem(
            call.lineno,
            f"self.next(...) in step {name!r} uses condition= but its targets are not one dict literal "
            f"of cases. Write {form}.",
        )
        return
    if not cases.keys:
        problem(cases.lineno, f"the switch in step {name!r} has no cases (an empty dict). Write {form}.")
        return
    seen: Dict[Any, int] = {}
    for key, value in zip(cases.keys, cases.values):
        literal = _case_key(key, self_name)
        if key is None or literal is _NOT_LITERAL:
            problem(
                (key or value).lineno,
                f"the switch in step {name!r} has the case key {ast.unparse(key) if key else '**...'!r}; "
                "keys must be literals (a string, number or bool) or self.config.<name> values, so that "
                "the graph can be read without running the step.",
            )
            continue
        if literal in seen:
            problem(key.lineno, f"the switch in step {name!r} has the case {literal!r} twice; remove one.")
            continue
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == self_name:
            seen[literal] = value.lineno
            node.switch_cases[literal] = value.attr
        else:
            problem(
                value.lineno,
                f"the switch in step {name!r} sends case {literal!r} to {ast.unparse(value)!r}, but a "
                "case must name a step of this flow as an attribute of self, e.g. self.end.",
            )
    node.out_funcs = list(dict.fromkeys(node.switch_cases.values()))
    if node.switch_cases and len(node.switch_cases) < 2:
        problem(
            cases.lineno,
            f"the switch in step {name!r} has only one case. A switch picks one of at least two "
            f"cases; for a single next step write self.next(self.{node.out_funcs[0]}).",
        )


_NOT_LITERAL = object()


def _case_key(key: Optional[ast.expr], self_name: str) -> Any:
    """A case key as its value: a literal, or ``self.config.x`` as the text ``'config:config.x'``."""
    if isinstance(key, ast.Constant):
        return key.value
    if (
        isinstance(key, ast.Attribute)
        and isinstance(key.value, ast.Attribute)
        and isinstance(key.value.value, ast.Name)
        and key.value.value.id == self_name
    ):
        return f"config:{key.value.attr}.{key.attr}"
    return _NOT_LITERAL
