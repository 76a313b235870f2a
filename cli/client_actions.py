"""The bodies of the client's commands, written once for both command lines.

``cafstore logs|dump|tag`` (client_commands.py) and a flow's own ``python
flow.py logs|dump|tag`` (flow_client_commands.py) differ only in how the
user names things -- full pathspecs there, pathspecs relative to the flow
and ``--run-id N`` here -- and in their help texts. What they accept,
print and exit with is decided here, so the two cannot drift apart.
Errors are printed by cafstore.cli.context.friendly_errors on both.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Optional

import click


def stream_options(func: Callable) -> Callable:
    """``--stdout`` / ``--stderr`` / ``--timestamps`` of ``logs``: two flags, not one choice, so
    giving both shows both (as giving neither does)."""
    func = click.option("--timestamps", is_flag=True, help="Prefix each line with the time it was printed.")(func)
    func = click.option("--stderr", is_flag=True, help="The standard error (alone, unless --stdout is given too).")(
        func
    )
    return click.option("--stdout", is_flag=True, help="The standard output (alone, unless --stderr is given too).")(
        func
    )


def chosen_streams(stdout: bool, stderr: bool) -> Optional[str]:
    """The ``which`` of :func:`echo_logs` for the two flags: one stream, or None for both."""
    if stdout != stderr:
        return "stdout" if stdout else "stderr"
    return None


def dump_options(func: Callable) -> Callable:
    """``--include`` / ``--max-value-size`` / ``--json`` of ``dump``."""
    func = click.option("--json", "as_json", is_flag=True, help="Print the artifacts as JSON.")(func)
    func = click.option(
        "--max-value-size",
        type=click.IntRange(min=0),
        default=1000,
        show_default=True,
        help="Cut each shown value after this many characters (0: never).",
    )(func)
    return click.option("--include", metavar="NAMES", default=None, help="Only these artifacts (comma-separated).")(
        func
    )


def chosen_namespace(ns: Optional[str], all_runs: bool, default: Callable[[], Optional[str]]) -> Optional[str]:
    """The namespace a listing shows: ``--all`` or an empty ``--namespace`` is every run, else
    ``--namespace``, else ``default()`` (which each command line decides)."""
    if all_runs or ns == "":
        return None
    return ns if ns is not None else default()


def echo_logs(store: Any, pathspec: str, which: Optional[str], timestamps: bool) -> None:
    """``logs``: each task's output, stdout to stdout and stderr to stderr."""
    from cafstore.client.views import text

    streams = (which,) if which else ("stdout", "stderr")
    for stream, piece in text.logs(store, pathspec, streams, timestamps):
        click.echo(piece, nl=False, err=stream == "stderr")


def echo_dump(store: Any, pathspec: str, include: Optional[str], max_value_size: int, as_json: bool) -> None:
    """``dump``: the artifacts of a run's, step's or task's tasks (or one artifact), as a table or JSON."""
    from cafstore.client.views import text

    names = None if include is None else [n.strip() for n in include.split(",") if n.strip()]
    dumped = text.dump(store, pathspec, names, max_value_size)
    click.echo(json.dumps(dumped, indent=2, default=str) if as_json else text.dump_text(dumped), nl=as_json)


def open_run(store: Any, pathspec: str) -> Any:
    """The run a ``tag`` command names, in any namespace (an explicit pathspec is never filtered)."""
    from cafstore.client import Run

    return Run(pathspec, store=store, _namespace_check=False)


def retag(run: Any, remove: Iterable[str], add: Iterable[str]) -> None:
    """``tag add|remove|replace``: one atomic change of the run's user tags, then its tags."""
    run.replace_tags(remove, add)
    echo_tags([run], as_json=False)


def echo_tags(runs: Iterable[Any], as_json: bool) -> None:
    """``tag list`` (and the result of a change): user and system tags per run."""
    if as_json:
        click.echo(
            json.dumps(
                {r.pathspec: {"user_tags": sorted(r.user_tags), "system_tags": sorted(r.system_tags)} for r in runs},
                indent=2,
            )
        )
        return
    from cafstore.client.views.text import printable_tag

    for run in runs:
        click.echo(f"{run.pathspec}")
        click.echo(f"  user tags:   {', '.join(map(printable_tag, sorted(run.user_tags))) or '-'}")
        click.echo(f"  system tags: {', '.join(map(printable_tag, sorted(run.system_tags))) or '-'}")


def runs_of(store: Any, flow: Optional[str], ns: Optional[str]) -> list:
    """``tag list`` without a run: every run of ``flow`` (or of all flows) in ``ns``, newest first."""
    from cafstore.client.views import text

    return list(text.runs_newest_first(store, flow, ns))
