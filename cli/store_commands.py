"""Commands about the store itself: init, fsck, stats."""

from __future__ import annotations

import json
from typing import Optional

import click

from cafstore.cli.context import CliState, friendly_errors, pass_state


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option(
    "--blobs",
    metavar="s3://BUCKET/PREFIX",
    help="Keep the store's large objects in this S3 bucket (the index stays in PATH). Credentials and "
    "region come from the standard AWS chain.",
)
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="The S3-compatible server to use with --blobs (default: $AWS_ENDPOINT_URL, else AWS).",
)
@click.option(
    "--cache-size",
    metavar="BYTES",
    type=click.IntRange(min=0),
    help="With --blobs: the local read cache's size limit in bytes (default 8 GiB).",
)
@pass_state
@friendly_errors
def init(
    state: CliState,
    path: Optional[str],
    blobs: Optional[str],
    endpoint_url: Optional[str],
    cache_size: Optional[int],
) -> None:
    """Create a store at PATH (default: --store, $CAFSTORE_HOME or ./.cafstore)."""
    import os
    from pathlib import Path

    from cafstore.exception import CommandLineError
    from cafstore.store import Store, StoreConfig
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
    config = None
    store_path = check_store_path(Path(target).expanduser(), source)
    if blobs is not None:
        from cafstore.store.backends.s3 import S3BlobBackend, options_from_url

        options = options_from_url(blobs, endpoint_url, cache_size)
        # Fail now, before the store records the bucket, not at the first large artifact.
        S3BlobBackend.from_settings(store_path, None, options).check_reachable()
        config = StoreConfig(blob_backend="s3", blob_options=options)
    elif endpoint_url is not None or cache_size is not None:
        raise CommandLineError("--endpoint-url and --cache-size only apply with --blobs s3://BUCKET/PREFIX.")
    store = Store(store_path, config=config)
    store.stats()  # opens the index: the store exists on disk once this returns
    where = f" (large objects in {blobs})" if blobs else ""
    click.echo(f"Initialised cafstore store in {store.path}{where}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--repair",
    is_flag=True,
    help="Remove stray temp files, index entries whose bytes are gone and refs that belong to no run, "
    "set damaged refs aside, move corrupt objects aside, and list the runs that lost data; rebuild a lost index.",
)
@click.option(
    "--remote-sample",
    type=click.IntRange(min=0),
    metavar="N",
    help="On a store whose blobs are in S3: re-hash only N of them by download (every blob's presence "
    "and size is still checked). Default: all.",
)
@pass_state
@friendly_errors
def fsck(state: CliState, as_json: bool, repair: bool, remote_sample: Optional[int]) -> None:
    """Re-hash every object and resolve every reference; exit 1 if anything is wrong."""
    from cafstore.cli.maintenance_commands import fsck_report, print_damage, print_rebuild, print_repair

    report, damaged = fsck_report(state.store, progress=not as_json, remote_sample=remote_sample)
    if repair and report.index_lost:
        print_rebuild(state.store, as_json)
        report, damaged = fsck_report(state.store, progress=not as_json, remote_sample=remote_sample)
    elif repair and print_repair(state.store, report, damaged, as_json):
        report, damaged = fsck_report(
            state.store, progress=not as_json, remote_sample=remote_sample
        )  # the verdict is on the repaired store
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
