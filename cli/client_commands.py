"""Commands that read past runs: logs, log, dump, tag, namespace, ls.

The work is in cafstore.client.views (text shared with ``python flow.py``)
and cafstore.cli.client_actions (the bodies of logs, dump and tag, shared
with the flow's own command line); these commands parse options and print.
Explicit pathspecs are read in any namespace; listings follow
``--namespace`` / ``--all``, else the default (``cafstore namespace show``).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

import click

from cafstore.cli import checks
from cafstore.cli import client_actions as actions
from cafstore.cli.context import CliState, friendly_errors, pass_state


def namespace_options(func: Callable) -> Callable:
    func = click.option("--all", "all_runs", is_flag=True, help="Every run (the global namespace).")(func)
    return click.option(
        "--namespace",
        "ns",
        metavar="TAG",
        default=None,
        help="Show runs in this namespace (a tag such as user:will); empty for all runs.",
    )(func)


def chosen_namespace(store: Any, ns: Optional[str], all_runs: bool) -> Optional[str]:
    """``--namespace`` / ``--all``, else the user's default namespace in ``store``."""
    from cafstore.client.namespaces import resolve_default

    return actions.chosen_namespace(ns, all_runs, lambda: resolve_default(store))


@click.command()
@click.argument("pathspec", callback=checks.pathspec())
@actions.stream_options
@pass_state
@friendly_errors
def logs(state: CliState, pathspec: str, stdout: bool, stderr: bool, timestamps: bool) -> None:
    """Print what tasks printed: PATHSPEC is Flow/run, Flow/run/step or Flow/run/step/task."""
    actions.echo_logs(state.store, pathspec, actions.chosen_streams(stdout, stderr), timestamps)


@click.command("log")
@click.argument("flow", required=False, callback=checks.pathspec("flow"))
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON.")
@click.option("--oneline", is_flag=True, help="One line per run.")
@click.option("-n", "--max-count", type=click.IntRange(min=0), default=None, help="Show at most N runs.")
@namespace_options
@pass_state
@friendly_errors
def log_command(
    state: CliState,
    flow: Optional[str],
    as_json: bool,
    oneline: bool,
    max_count: Optional[int],
    ns: Optional[str],
    all_runs: bool,
) -> None:
    """Run history, newest first: id, status, user, tags, start, duration, resume origin."""
    from cafstore.client.views import text

    namespace = chosen_namespace(state.store, ns, all_runs)
    runs = text.history(state.store, flow, namespace, max_count)
    if as_json:
        click.echo(json.dumps(runs, indent=2))
    elif runs:
        click.echo(text.history_text(runs, oneline), nl=False)
    else:
        where = "in any namespace" if namespace is None else f"in namespace {namespace!r} (--all shows every run)"
        click.echo(f"No runs {('of ' + flow + ' ') if flow else ''}{where}.")


@click.command()
@click.argument("pathspec", callback=checks.pathspec())
@actions.dump_options
@pass_state
@friendly_errors
def dump(state: CliState, pathspec: str, include: Optional[str], max_value_size: int, as_json: bool) -> None:
    """Show artifacts (name, type, size, value) of a run's, step's or task's tasks, or one artifact."""
    actions.echo_dump(state.store, pathspec, include, max_value_size, as_json)


@click.command("ls")
@click.argument("pathspec", required=False, callback=checks.pathspec())
@namespace_options
@pass_state
@friendly_errors
def ls(state: CliState, pathspec: Optional[str], ns: Optional[str], all_runs: bool) -> None:
    """List flows, a flow's runs, a run's steps, a step's tasks or a task's artifacts."""
    from cafstore.client.views import text

    lines = text.listing(state.store, pathspec, chosen_namespace(state.store, ns, all_runs))
    for line in lines:
        click.echo(line)


# -- tag ----------------------------------------------------------------------
@click.group()
def tag() -> None:
    """Add, remove, replace or list a run's user tags (system tags never change)."""


@tag.command("add")
@click.argument("run_pathspec", metavar="FLOW/RUN", callback=checks.pathspec("run"))
@click.argument("tags", nargs=-1, required=True, callback=checks.user_tags)
@pass_state
@friendly_errors
def tag_add(state: CliState, run_pathspec: str, tags: tuple) -> None:
    """Add user TAGS to a run."""
    actions.retag(actions.open_run(state.store, run_pathspec), remove=(), add=tags)


@tag.command("remove")
@click.argument("run_pathspec", metavar="FLOW/RUN", callback=checks.pathspec("run"))
@click.argument("tags", nargs=-1, required=True)
@pass_state
@friendly_errors
def tag_remove(state: CliState, run_pathspec: str, tags: tuple) -> None:
    """Remove user TAGS from a run."""
    actions.retag(actions.open_run(state.store, run_pathspec), remove=tags, add=())


@tag.command("replace")
@click.argument("run_pathspec", metavar="FLOW/RUN", callback=checks.pathspec("run"))
@click.argument("old")
@click.argument("new", callback=checks.user_tags)
@pass_state
@friendly_errors
def tag_replace(state: CliState, run_pathspec: str, old: str, new: str) -> None:
    """Replace user tag OLD with NEW in one atomic change."""
    actions.retag(actions.open_run(state.store, run_pathspec), remove=[old], add=[new])


@tag.command("list")
@click.argument("pathspec", metavar="[FLOW[/RUN]]", required=False, callback=checks.pathspec())
@click.option("--json", "as_json", is_flag=True, help="Print the tags as JSON.")
@namespace_options
@pass_state
@friendly_errors
def tag_list(state: CliState, pathspec: Optional[str], as_json: bool, ns: Optional[str], all_runs: bool) -> None:
    """Tags of one run, or of every run of a flow (or of all flows) in the namespace."""
    if pathspec and "/" in pathspec.strip("/"):
        runs = [actions.open_run(state.store, pathspec)]
    else:
        runs = actions.runs_of(state.store, pathspec or None, chosen_namespace(state.store, ns, all_runs))
    actions.echo_tags(runs, as_json)


# -- namespace ----------------------------------------------------------------
@click.group("namespace")
def namespace_group() -> None:
    """List namespaces, show the default one, or set it (saved per user in the store)."""


def _label(ns: Optional[str]) -> str:
    return "(global: every run)" if ns is None else ns


@namespace_group.command("show")
@pass_state
@friendly_errors
def namespace_show(state: CliState) -> None:
    """The namespace listings and the Python client use by default, and why."""
    import os

    from cafstore.client import namespaces

    ns = namespaces.resolve_default(state.store)
    if os.environ.get(namespaces.ENV_NAMESPACE) is not None:
        source = f"from ${namespaces.ENV_NAMESPACE}"
    elif namespaces.saved_default(state.store) is not namespaces.UNSET:
        source = "saved with `cafstore namespace set`"
    else:
        source = f"the default for user {namespaces.current_user()}"
    click.echo(f"{_label(ns)}    ({source})")


@namespace_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the namespaces as JSON.")
@pass_state
@friendly_errors
def namespace_list(state: CliState, as_json: bool) -> None:
    """Namespaces that hold runs (user: and production: tags), with run counts; * marks the default."""
    from cafstore import schema
    from cafstore.client import namespaces, runstate

    counts: dict = {}
    for _key, meta in state.store.iter_refs(schema.RUNS_PREFIX):
        if runstate.visible(meta):
            system, user = runstate.tags_of(meta)
            for name in namespaces.namespace_tags(system):  # a user tag never makes a namespace
                counts[name] = counts.get(name, 0) + 1
    for _name, value in state.store.iter_refs(schema.PRODUCTION_PREFIX):
        counts.setdefault(f"production:{value['token']}", 0)
    current = namespaces.resolve_default(state.store)
    if as_json:
        click.echo(json.dumps({"default": current, "namespaces": counts}, indent=2))
        return
    for name in sorted(counts):
        click.echo(f"{'*' if name == current else ' '} {name:<40} {counts[name]} run(s)")
    if current is not None and current not in counts:
        click.echo(f"* {current:<40} 0 run(s)")
    if current is None:
        click.echo("* (global: every run)")


@namespace_group.command("set")
@click.argument("tag", required=False)
@click.option("--global", "global_", is_flag=True, help="Default to every run (the global namespace).")
@click.option("--reset", is_flag=True, help="Forget the saved default (back to user:<you>).")
@pass_state
@friendly_errors
def namespace_set(state: CliState, tag: Optional[str], global_: bool, reset: bool) -> None:
    """Save TAG as your default namespace in this store (or --global, or --reset)."""
    from cafstore.client import namespaces
    from cafstore.exception import CommandLineError

    if sum((tag is not None, global_, reset)) != 1:
        raise CommandLineError("Give exactly one of: a namespace TAG (e.g. user:will), --global, or --reset.")
    value = namespaces.UNSET if reset else (None if global_ else tag)
    if value is not None and value is not namespaces.UNSET and not value.strip():
        raise CommandLineError("A namespace is a non-empty tag; use --global for every run.")
    namespaces.save_default(state.store, value)
    click.echo(f"default namespace for {namespaces.current_user()}: {_label(namespaces.resolve_default(state.store))}")


COMMANDS = [logs, log_command, dump, ls, tag, namespace_group]
