"""Remotes: ``cafstore remote add|list|remove``, ``push``, ``pull``, ``clone`` (docs/remotes.md)."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Optional

import click

from cafstore.cli.context import CliState, friendly_errors, pass_state
from cafstore.cli.maintenance_commands import human


def _transfer(label: str, run: Any) -> Any:
    """Run ``run(progress=callback)`` with a byte progress bar on a terminal (silent elsewhere); its report."""
    from cafstore.progress import callback, progress

    with progress(label, unit="B") as bar:
        return run(callback(bar))


def _transfer_command(body: Any) -> Any:
    """``NAME [RUNS]... [--jobs N] [--json]``: what push and pull both take."""
    for decorate in reversed(
        (
            click.command(),
            click.argument("name"),
            click.argument("runs", nargs=-1),
            click.option(
                "--jobs", type=click.IntRange(min=1, max=64), default=8, show_default=True, help="Parallel transfers."
            ),
            click.option("--json", "as_json", is_flag=True, help="Print the report as JSON."),
            pass_state,
            friendly_errors,
        )
    ):
        body = decorate(body)
    return body


def _summary(verb: str, report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    for run, why in report.skipped:
        click.echo(f"skipped {run}: {why}")
    for run in report.runs_sent:
        click.echo(f"{verb} {run}")
    for run in report.runs_updated:
        click.echo(f"merged tags/pin of {run}")
    moved = "sent" if verb == "pushed" else "received"
    skipped = (
        f", {report.objects_skipped} objects ({human(report.bytes_skipped)}) already there" if verb == "pushed" else ""
    )
    click.echo(
        f"{len(report.runs_sent)} runs {verb}, {len(report.runs_updated)} updated, {len(report.runs_unchanged)} "
        f"unchanged; {report.objects_sent} objects ({human(report.bytes_sent)}) {moved}{skipped} in {report.seconds:.1f}s"
    )


@click.group()
def remote() -> None:
    """Manage the remotes runs are pushed to and pulled from (an s3:// URL or a directory)."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--endpoint-url", metavar="URL", help="The S3-compatible server (default: $AWS_ENDPOINT_URL, else AWS).")
@pass_state
@friendly_errors
def remote_add(state: CliState, name: str, url: str, endpoint_url: Optional[str]) -> None:
    """Add remote NAME at URL: s3://BUCKET/PREFIX or the path of a (shared) directory."""
    from cafstore.remote import config

    value = config.add(state.store, name, url, endpoint_url)
    click.echo(f"Added remote {name}: {value['url']}")


@remote.command("list")
@pass_state
@friendly_errors
def remote_list(state: CliState) -> None:
    """List the remotes: NAME URL."""
    from cafstore.remote import config

    for name, value in config.listing(state.store):
        endpoint = f" (endpoint {value['endpoint_url']})" if value.get("endpoint_url") else ""
        click.echo(f"{name}\t{value.get('url')}{endpoint}")


@remote.command("remove")
@click.argument("name")
@pass_state
@friendly_errors
def remote_remove(state: CliState, name: str) -> None:
    """Forget remote NAME (nothing on the remote is touched)."""
    from cafstore.remote import config

    config.remove(state.store, name)
    click.echo(f"Removed remote {name}")


@_transfer_command
def push(state: CliState, name: str, runs: tuple, jobs: int, as_json: bool) -> None:
    """Send runs (Flow or Flow/N; default: every run of your namespace) to remote NAME.

    Objects the remote lacks go first, refs last; a run already there moves
    nothing but merged tags and pin.
    """
    from cafstore.remote.push import push as do_push

    report = _transfer(f"push {name}", lambda bar: do_push(state.store, name, runs, progress=bar, jobs=jobs))
    _summary("pushed", report, as_json)


@_transfer_command
def pull(state: CliState, name: str, runs: tuple, jobs: int, as_json: bool) -> None:
    """Fetch runs (Flow, Flow/N or Flow/STORE:N; default: all) from remote NAME, verifying every object."""
    from cafstore.remote.pull import pull as do_pull

    report = _transfer(f"pull {name}", lambda bar: do_pull(state.store, name, runs, progress=bar, jobs=jobs))
    _summary("pulled", report, as_json)


@click.command()
@click.argument("url")
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option("--endpoint-url", metavar="URL", help="The S3-compatible server (default: $AWS_ENDPOINT_URL, else AWS).")
@click.option("--name", default="origin", show_default=True, help="The name the remote gets.")
@pass_state
@friendly_errors
def clone(state: CliState, url: str, path: Optional[str], endpoint_url: Optional[str], name: str) -> None:
    """Create a store at PATH (default ./.cafstore) holding every run of the remote at URL."""
    from pathlib import Path

    from cafstore.exception import RemoteError
    from cafstore.remote import config
    from cafstore.remote.pull import pull as do_pull
    from cafstore.remote.transport import open_transport
    from cafstore.store import Store
    from cafstore.store.discover import STORE_DIRNAME, check_store_path

    target = check_store_path(Path(path or state.store_path or Path.cwd() / STORE_DIRNAME).expanduser(), "PATH")
    if (target / "index").exists():
        raise RemoteError(f"There is a store at {target} already; clone into a new PATH, or `cafstore pull` into it.")
    with contextlib.closing(open_transport(config.normalize_url(url), endpoint_url)) as transport:
        transport.check()  # before anything is created
    store = Store(target)
    config.add(store, name, url, endpoint_url)
    click.echo(f"Cloning into {store.path} ...")
    report = _transfer(f"pull {name}", lambda bar: do_pull(store, name, (), progress=bar))
    _summary("pulled", report, False)


COMMANDS = [remote, push, pull, clone]


def gc_remote(store: Any, name: str, grace: float, dry_run: bool, as_json: bool, verbose: bool, policy: bool) -> None:
    """The body of ``cafstore gc --remote NAME`` (maintenance_commands.gc hands over here)."""
    from cafstore.exception import CommandLineError
    from cafstore.remote.rgc import collect_remote

    if policy:
        raise CommandLineError("--keep-last, --older-than and --flow do not apply with --remote: it removes no run.")
    report = collect_remote(store, name, grace=grace, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    would = "would " if dry_run else ""
    if verbose:
        for key in report.removed:
            click.echo(f"{would}remove {key}")
    click.echo(
        f"remote {name}: {report.runs} runs, {report.live_packs} packs and {report.live_loose} loose objects in use; "
        f"{would}remove {len(report.removed)} keys ({human(report.freed_bytes)}); {report.kept_young} kept "
        "(within the grace period)"
    )
