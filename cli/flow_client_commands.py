"""The client's commands on a flow's own command line (``python flow.py logs|dump|tag``).

Pathspecs here are relative to the flow: ``5``, ``5/start``, ``5/start/3``
(``HelloFlow/5/start`` works too), and ``tag`` names its run with
``--run-id N``. The bodies, the output and the exit codes are the global
``cafstore logs|dump|tag``'s (cafstore.cli.client_actions), and errors are
printed by the same decorator (cafstore.cli.context.friendly_errors).
"""

from __future__ import annotations

from typing import Any, Optional

import click

from cafstore.cli import checks
from cafstore.cli import client_actions as actions
from cafstore.cli.context import friendly_errors


def _store() -> Any:
    """The store the flow's command line selected (its context object's), else the discovered one."""
    ctx = click.get_current_context()
    while ctx is not None:
        existing = getattr(ctx.obj, "existing_store", None)
        if callable(existing):  # the flow's FlowState: never creates a store just to read it
            return existing()
        store = getattr(ctx.obj, "store", None)
        if store is not None and hasattr(store, "get_ref"):
            return store
        ctx = ctx.parent
    from cafstore.client.connection import get_store

    return get_store()


def add_client_commands(group: click.Group, flow_name: str) -> None:
    """Attach logs, dump and tag for ``flow_name`` to the flow's click group."""

    def full(pathspec: str) -> str:
        parts = pathspec.strip().strip("/").split("/")
        if parts and parts[0] == flow_name and len(parts) > 1:
            parts = parts[1:]
        return "/".join([flow_name, *parts])

    def run_of(run_id: str) -> Any:
        return actions.open_run(_store(), f"{flow_name}/{run_id}")

    @group.command()
    @click.argument("pathspec", metavar="RUN[/STEP[/TASK]]", callback=checks.pathspec(prefix=full))
    @actions.stream_options
    @friendly_errors
    def logs(pathspec: str, stdout: bool, stderr: bool, timestamps: bool) -> None:
        """Print what the tasks of a run, a step or one task printed."""
        actions.echo_logs(_store(), full(pathspec), actions.chosen_streams(stdout, stderr), timestamps)

    @group.command()
    @click.argument("pathspec", metavar="RUN[/STEP[/TASK[/ARTIFACT]]]", callback=checks.pathspec(prefix=full))
    @actions.dump_options
    @friendly_errors
    def dump(pathspec: str, include: Optional[str], max_value_size: int, as_json: bool) -> None:
        """Show the artifacts (name, type, size, value) of a run's, step's or task's tasks, or one artifact."""
        actions.echo_dump(_store(), full(pathspec), include, max_value_size, as_json)

    @group.group()
    def tag() -> None:
        """Add, remove, replace or list user tags of this flow's runs."""

    run_id_option = click.option(
        "--run-id", required=True, metavar="N", callback=checks.run_id, help="The run to change."
    )

    @tag.command("add")
    @run_id_option
    @click.argument("tags", nargs=-1, required=True, callback=checks.user_tags)
    @friendly_errors
    def tag_add(run_id: str, tags: tuple) -> None:
        """Add user TAGS to run N."""
        actions.retag(run_of(run_id), remove=(), add=tags)

    @tag.command("remove")
    @run_id_option
    @click.argument("tags", nargs=-1, required=True)
    @friendly_errors
    def tag_remove(run_id: str, tags: tuple) -> None:
        """Remove user TAGS from run N (system tags cannot be removed)."""
        actions.retag(run_of(run_id), remove=tags, add=())

    @tag.command("replace")
    @run_id_option
    @click.argument("old")
    @click.argument("new", callback=checks.user_tags)
    @friendly_errors
    def tag_replace(run_id: str, old: str, new: str) -> None:
        """Replace user tag OLD with NEW on run N, atomically."""
        actions.retag(run_of(run_id), remove=[old], add=[new])

    @tag.command("list")
    @click.option("--run-id", default=None, metavar="N", callback=checks.run_id, help="Only this run.")
    @click.option("--namespace", "ns", default=None, metavar="TAG", help="Runs in this namespace (empty: all).")
    @click.option("--all", "all_runs", is_flag=True, help="Runs in every namespace.")
    @click.option("--json", "as_json", is_flag=True, help="Print the tags as JSON.")
    @friendly_errors
    def tag_list(run_id: Optional[str], ns: Optional[str], all_runs: bool, as_json: bool) -> None:
        """Tags (user and system) of run N, or of every run of this flow in the namespace."""
        from cafstore.client.namespaces import get_namespace

        if run_id is not None:
            runs = [run_of(run_id)]
        else:
            runs = actions.runs_of(_store(), flow_name, actions.chosen_namespace(ns, all_runs, get_namespace))
        actions.echo_tags(runs, as_json)
