"""``show``: a flow's DAG as text, Mermaid or Graphviz DOT, on both command lines.

``python flow.py show`` draws the flow as its file is now. ``cafstore show``
takes either a flow file (read with the graph parser, never run: showing a
file must not execute it) or a run's pathspec, whose *recorded* graph it
draws: the graph as it was when that run started, which is what a reader of
an old run needs even after the file changed or is gone.
"""

from __future__ import annotations

import ast
import os
from typing import Any, Callable, List, Optional

import click

from cafstore.cli.context import CliState, friendly_errors, pass_state
from cafstore.exception import ClientError

# cafstore.client.views.dag.FORMATS, spelled here so that building the command lines imports no client
# (tests/ui/test_ui_cli.py checks the two agree).
FORMATS = ("text", "mermaid", "dot")


def show_format_option(func: Callable) -> Callable:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        help="text (steps and where each goes next), mermaid (a Mermaid flowchart) or dot (Graphviz).",
    )(func)


def show_graph(graph: Any, fmt: str) -> str:
    """A parsed flow graph (``FlowGraph``) in ``fmt``."""
    from cafstore.client.views import dag

    if fmt == "text":
        return graph.describe()
    return dag.render(fmt, graph.to_dict()["steps"], graph.name)


def _flow_classes(tree: ast.Module) -> List[str]:
    """Classes of the file that derive from FlowSpec (through other classes of the file too), leaves
    only: a base flow that others extend is not the one the file runs."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def base_names(cdef: ast.ClassDef) -> List[str]:
        return [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in cdef.bases]

    def is_flow(name: str, seen: frozenset = frozenset()) -> bool:
        if name == "FlowSpec":
            return True
        cdef = classes.get(name)
        return cdef is not None and name not in seen and any(is_flow(b, seen | {name}) for b in base_names(cdef))

    flows = [name for name in classes if name != "FlowSpec" and is_flow(name)]
    extended = {b for name in flows for b in base_names(classes[name])}
    return [name for name in flows if name not in extended]


def graph_of_file(path: str, class_name: Optional[str]) -> Any:
    from cafstore.runner.graph import graph_from_source

    try:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        tree = ast.parse(source, path)
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise ClientError(f"Cannot read the flow file {path}: {exc}") from exc
    if class_name is None:
        found = _flow_classes(tree)
        if len(found) != 1:
            what = "no FlowSpec class" if not found else f"several flow classes ({', '.join(found)})"
            raise ClientError(f"{path} has {what}: name the one to show as {path}:ClassName.")
        class_name = found[0]
    return graph_from_source(source, class_name, path)


def recorded_steps(store: Any, pathspec: str) -> tuple:
    """(flow name, steps) of the graph run ``pathspec`` recorded; a flow name alone means its latest run
    in any namespace."""
    from cafstore.client import Flow, Run

    if "/" in pathspec:
        run = Run(pathspec, store=store, _namespace_check=False)
    else:
        run = Flow(pathspec, store=store, _current_namespace=None).latest_run
        if run is None:
            raise ClientError(f"Flow {pathspec!r} has no runs to show a graph of.")
    steps = run.graph_steps()
    if not steps:
        raise ClientError(f"Run {run.pathspec} recorded no graph (it was made before graphs were recorded).")
    return run.path_components[0], steps


@click.command("show")
@click.argument("target")
@show_format_option
@pass_state
@friendly_errors
def show_command(state: CliState, target: str, fmt: str) -> None:
    """Draw a flow's DAG. TARGET is a flow file (flow.py, or flow.py:ClassName when it has several flows)
    or a run (Flow/N, or Flow for its latest run), whose recorded graph is shown."""
    path, _, class_name = target.partition(":")
    if path.endswith(".py") or os.path.isfile(path):
        click.echo(show_graph(graph_of_file(path, class_name or None), fmt), nl=False)
        return
    from cafstore.client import pathspecs
    from cafstore.client.views import dag

    pathspecs.check(target, None)
    name, steps = recorded_steps(state.store, target)
    click.echo(dag.render(fmt, steps, name), nl=False)


COMMANDS = [show_command]
