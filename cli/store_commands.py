"""Commands about the store itself: init, fsck, stats."""

from __future__ import annotations

import json
from typing import Optional

import click

from cafstore.cli.context import CliState, friendly_errors, pass_state


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@pass_state
@friendly_errors
def init(state: CliState, path: Optional[str]) -> None:
    """Create a store at PATH (default: --store, $CAFSTORE_HOME or ./.cafstore)."""
    import os
    from pathlib import Path

    from cafstore.store import Store
    from cafstore.store.discover import ENV_HOME, STORE_DIRNAME, check_store_path

    # Like `git init`: here, not the nearest store upward.
    target, source = next(
        (value, name)
        for value, name in (
            (path, "PATH"),
            (state.store_path, "--store"),
            (os.environ.get(ENV_HOME), ENV_HOME),
            (Path.cwd() / STORE_DIRNAME, "the default store path"),
        )
        if value
    )
    store = Store(check_store_path(Path(target).expanduser(), source))
    store.stats()  # opens the index: the store exists on disk once this returns
    click.echo(f"Initialised cafstore store in {store.path}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--repair",
    is_flag=True,
    help="Remove stray temp files, index entries whose bytes are gone and refs that belong to no run, "
    "set damaged refs aside, move corrupt objects aside, and list the runs that lost data; rebuild a lost index.",
)
@pass_state
@friendly_errors
def fsck(state: CliState, as_json: bool, repair: bool) -> None:
    """Re-hash every object and resolve every reference; exit 1 if anything is wrong."""
    from cafstore.cli.maintenance_commands import fsck_report, print_damage, print_rebuild, print_repair

    report, damaged = fsck_report(state.store, progress=not as_json)
    if repair and report.index_lost:
        print_rebuild(state.store, as_json)
        report, damaged = fsck_report(state.store, progress=not as_json)
    elif repair and print_repair(state.store, report, damaged, as_json):
        report, damaged = fsck_report(state.store, progress=not as_json)  # the verdict is on the repaired store
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        for note in report.notes:
            click.echo(f"note: {note}")
        if not report.ok and not repair and not report.index_lost:
            print_damage(state.store, report)
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        click.echo(
            f"fsck: {report.objects} objects ({report.records} records), {report.refs} refs, "
            f"{report.bytes_checked} bytes checked: {verdict}"
        )
    if not report.ok:
        raise SystemExit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@pass_state
@friendly_errors
def stats(state: CliState, as_json: bool) -> None:
    """Objects (inline vs files), records, refs, logical vs physical bytes."""
    figures = state.store.stats()
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(f"store:          {state.store.path}")
    click.echo(f"objects:        {figures['objects']} ({figures['inline']} inline, {figures['files']} files)")
    click.echo(f"  artifacts:    {figures['artifacts']}, records: {figures['records']}, raw: {figures['raw']}")
    click.echo(f"refs:           {figures['refs']}")
    click.echo(f"logical bytes:  {figures['logical_bytes']}")
    click.echo(
        f"physical bytes: {figures['physical_bytes']} (index {figures['index_bytes']}, files {figures['file_bytes']})"
    )


COMMANDS = [init, fsck, stats]
