"""The client's commands on a flow's own command line (``python flow.py logs|dump|tag``).

Pathspecs here are relative to the flow: ``5``, ``5/start``, ``5/start/3``
(``HelloFlow/5/start`` works too). The output is the same as the global
``cafstore logs|dump|tag`` (both print what cafstore.client.display builds).
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable, Optional

import click

from cafstore.exception import CafstoreError


def _friendly(func: Callable) -> Callable:
    """A CafstoreError becomes one line on stderr and exit status 1, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CafstoreError as exc:
            click.echo(f"Error: {exc.headline}: {exc}", err=True)
            sys.exit(1)

    return wrapper


def _store() -> Any:
    """The store the flow's command line selected (its context object's ``store``), else the discovered one."""
    ctx = click.get_current_context()
    while ctx is not None:
        store = getattr(ctx.obj, "store", None)
        if store is not None and hasattr(store, "get_ref"):
            return store
        ctx = ctx.parent
    from cafstore.client.connection import get_store

    return get_store()


def _namespace(ns: Optional[str], all_runs: bool) -> Optional[str]:
    from cafstore.client.namespaces import get_namespace

    if all_runs or ns == "":
        return None
    return ns if ns is not None else get_namespace()


def add_client_commands(group: click.Group, flow_name: str) -> None:
    """Attach logs, dump and tag for ``flow_name`` to the flow's click group."""

    def full(pathspec: str) -> str:
        parts = pathspec.strip().strip("/").split("/")
        if parts and parts[0] == flow_name and len(parts) > 1:
            parts = parts[1:]
        return "/".join([flow_name, *parts])

    @group.command()
    @click.argument("pathspec", metavar="RUN[/STEP[/TASK]]")
    @click.option("--stdout", "which", flag_value="stdout", help="Only the standard output.")
    @click.option("--stderr", "which", flag_value="stderr", help="Only the standard error.")
    @click.option("--timestamps", is_flag=True, help="Prefix each line with the time it was printed.")
    @_friendly
    def logs(pathspec: str, which: Optional[str], timestamps: bool) -> None:
        """Print what the tasks of a run, a step or one task printed."""
        from cafstore.client import display

        streams = (which,) if which else ("stdout", "stderr")
        for stream, text in display.logs(_store(), full(pathspec), streams, timestamps):
            click.echo(text, nl=False, err=stream == "stderr")

    @group.command()
    @click.argument("pathspec", metavar="RUN[/STEP[/TASK]]")
    @click.option("--include", metavar="NAMES", default=None, help="Only these artifacts (comma-separated).")
    @click.option("--max-value-size", type=click.IntRange(min=0), default=1000, show_default=True,
                  help="Cut each shown value after this many characters (0: never).")
    @click.option("--json", "as_json", is_flag=True, help="Print the artifacts as JSON.")
    @_friendly
    def dump(pathspec: str, include: Optional[str], max_value_size: int, as_json: bool) -> None:
        """Show the artifacts (name, type, size, value) of a run's, step's or task's tasks."""
        from cafstore.client import display

        names = None if include is None else [n.strip() for n in include.split(",") if n.strip()]
        dumped = display.dump(_store(), full(pathspec), names, max_value_size)
        click.echo(json.dumps(dumped, indent=2, default=str) if as_json else display.dump_text(dumped),
                   nl=as_json)

    @group.group()
    def tag() -> None:
        """Add, remove, replace or list user tags of this flow's runs."""

    def run_of(run_id: str) -> Any:
        from cafstore.client import Run

        return Run(f"{flow_name}/{run_id}", store=_store(), _namespace_check=False)

    def show(run: Any) -> None:
        click.echo(run.pathspec)
        click.echo(f"  user tags:   {', '.join(sorted(run.user_tags)) or '-'}")
        click.echo(f"  system tags: {', '.join(sorted(run.system_tags)) or '-'}")

    run_id_option = click.option("--run-id", required=True, metavar="N", help="The run to change.")

    @tag.command("add")
    @run_id_option
    @click.argument("tags", nargs=-1, required=True)
    @_friendly
    def tag_add(run_id: str, tags: tuple) -> None:
        """Add user TAGS to run N."""
        run = run_of(run_id)
        run.add_tags(tags)
        show(run)

    @tag.command("remove")
    @run_id_option
    @click.argument("tags", nargs=-1, required=True)
    @_friendly
    def tag_remove(run_id: str, tags: tuple) -> None:
        """Remove user TAGS from run N (system tags cannot be removed)."""
        run = run_of(run_id)
        run.remove_tags(tags)
        show(run)

    @tag.command("replace")
    @run_id_option
    @click.argument("old")
    @click.argument("new")
    @_friendly
    def tag_replace(run_id: str, old: str, new: str) -> None:
        """Replace user tag OLD with NEW on run N, atomically."""
        run = run_of(run_id)
        run.replace_tag(old, new)
        show(run)

    @tag.command("list")
    @click.option("--run-id", default=None, metavar="N", help="Only this run.")
    @click.option("--namespace", "ns", default=None, metavar="TAG", help="Runs in this namespace (empty: all).")
    @click.option("--all", "all_runs", is_flag=True, help="Runs in every namespace.")
    @click.option("--json", "as_json", is_flag=True, help="Print the tags as JSON.")
    @_friendly
    def tag_list(run_id: Optional[str], ns: Optional[str], all_runs: bool, as_json: bool) -> None:
        """Tags (user and system) of run N, or of every run of this flow in the namespace."""
        from cafstore.client import Flow

        if run_id is not None:
            runs = [run_of(run_id)]
        else:
            runs = list(Flow(flow_name, store=_store(), _current_namespace=_namespace(ns, all_runs)).runs())
        if as_json:
            click.echo(json.dumps({r.pathspec: {"user_tags": sorted(r.user_tags),
                                                "system_tags": sorted(r.system_tags)} for r in runs}, indent=2))
            return
        for run in runs:
            show(run)
