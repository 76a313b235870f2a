"""Maintenance commands: gc, pin, unpin, rm, undelete, dedup (and the output of ``fsck --repair``).

Each command parses options and calls one function of cafstore.store
(gc.collect, retention.*, dedup.*, repair.repair); the wording of what they
print lives here.
"""

from __future__ import annotations

import json
from typing import Optional

import click

from cafstore.cli import checks
from cafstore.cli.context import CliState, friendly_errors, pass_state
from cafstore.exception import CafstoreError


def human(size: float) -> str:
    """Bytes as people read them: 1.5 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _duration(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    from cafstore.maintenance.retention import parse_duration

    try:
        return parse_duration(value)
    except CafstoreError as exc:  # MaintenanceArgumentError: shown by click as a usage error
        raise click.BadParameter(str(exc)) from exc


def _runs(values: tuple) -> list:
    from cafstore.exception import CommandLineError, MaintenanceArgumentError
    from cafstore.maintenance.retention import parse_pathspec

    try:
        return [parse_pathspec(value) for value in values]
    except MaintenanceArgumentError as exc:  # a bad argument on our command line: say so as one
        raise CommandLineError(str(exc)) from exc


@click.command()
@click.option("--dry-run", is_flag=True, help="Change nothing; print what would be removed.")
@click.option(
    "--keep-last", type=click.IntRange(min=0), metavar="N", help="Drop runs outside the N most recent of each flow."
)
@click.option(
    "--older-than",
    callback=_duration,
    metavar="DURATION",
    help="Drop runs finished longer ago than this (30d, 12h, 90m); with --keep-last, both must hold.",
)
@click.option(
    "--grace",
    callback=_duration,
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Never remove objects written more recently than this.",
)
@click.option(
    "--flow",
    metavar="FLOW",
    callback=checks.pathspec("flow"),
    help="Apply retention (and rm'd runs) to this flow only.",
)
@click.option("--include-tagged", is_flag=True, help="Let retention drop runs that carry user tags.")
@click.option(
    "--delete-unindexed",
    is_flag=True,
    help="Remove unindexed object files even when they outnumber the indexed ones "
    "(gc refuses otherwise: the index may be an old copy).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="List every object removed.")
@click.option("--remote", metavar="NAME", help="Sweep remote NAME instead: what no run ref there reaches.")
@pass_state
@friendly_errors
def gc(
    state: CliState,
    dry_run: bool,
    keep_last: Optional[int],
    older_than: Optional[float],
    grace: float,
    flow: Optional[str],
    include_tagged: bool,
    delete_unindexed: bool,
    as_json: bool,
    verbose: bool,
    remote: Optional[str],
) -> None:
    """Remove runs that retention drops and every object no ref reaches.

    Pinned runs, runs in progress and (unless --include-tagged) runs with
    user tags are never dropped; runs removed with `cafstore rm` are. If any
    ref or record cannot be resolved, gc deletes nothing and exits 1.
    """
    from cafstore.maintenance import gc as gc_module
    from cafstore.maintenance.retention import Policy

    store = state.store
    if remote is not None:
        from cafstore.cli.remote_commands import gc_remote

        gc_remote(store, remote, grace, dry_run, as_json, verbose, bool(keep_last is not None or older_than or flow))
        return
    if grace < store.config.freshen_after and not as_json:
        click.echo(
            f"warning: a grace period under {store.config.freshen_after:.0f}s may remove objects that "
            "a flow running right now reuses; use it only when no flow is running.",
            err=True,
        )
    policy = Policy(keep_last=keep_last, older_than=older_than, flow=flow, include_tagged=include_tagged)
    report = gc_module.collect(
        store, policy, grace=grace, dry_run=dry_run, progress=not as_json, unindexed_ok=delete_unindexed
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    would = "would " if dry_run else ""
    for pathspec, reason in report.dropped_runs:
        click.echo(f"{would}drop run {pathspec} ({reason})")
    for name in report.stray_refs:
        click.echo(f"{would}remove ref {name} (it belongs to no run)")
    for note in report.notes:
        click.echo(f"note: {note}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    if verbose:
        for oid, kind, size in report.removed:
            click.echo(f"{would}remove {kind} {oid} ({human(size)})")
        for name, size in report.orphan_files:
            click.echo(f"{would}remove orphan file {name} ({human(size)})")
        for name, size in report.temp_files:
            click.echo(f"{would}remove temp file {name} ({human(size)})")
    kinds = ", ".join(f"{count} {kind}" for kind, (count, _) in sorted(report.by_kind().items()))
    click.echo(
        f"{would}remove {len(report.removed)} objects"
        + (f" ({kinds})" if kinds else "")
        + f", {len(report.orphan_files)} orphan files, {len(report.temp_files)} temp files"
        + (f", aborted {report.aborted_uploads} stale uploads" if report.aborted_uploads else "")
    )
    click.echo(
        f"gc{' (dry run)' if dry_run else ''}: {report.scanned} objects scanned, {report.live} live, "
        f"{report.recent} kept as younger than the grace period; "
        f"{'would free' if dry_run else 'freed'} {human(report.freed_bytes)} in {report.seconds:.2f}s"
    )


def _run_command(action: str):
    """pin / unpin: one run ref each, no confirmation (both are harmless and undoable)."""

    @click.argument("runs", nargs=-1, required=True, metavar="FLOW/N...")
    @pass_state
    @friendly_errors
    def command(state: CliState, runs: tuple) -> None:
        from cafstore.maintenance import retention

        for flow, run_id in _runs(runs):
            if action == "pin":
                changed = retention.pin(state.store, flow, run_id)
                click.echo(f"pinned {flow}/{run_id}" if changed else f"{flow}/{run_id} was already pinned")
            else:
                changed = retention.unpin(state.store, flow, run_id)
                click.echo(f"unpinned {flow}/{run_id}" if changed else f"{flow}/{run_id} was not pinned")

    command.__name__ = action
    return command


pin = click.command("pin", help="Keep runs forever: gc never drops a pinned run.")(_run_command("pin"))
unpin = click.command("unpin", help="Let gc's retention rules apply to runs again.")(_run_command("unpin"))


@click.command()
@click.argument("runs", nargs=-1, required=True, metavar="FLOW/N...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
@friendly_errors
def rm(state: CliState, runs: tuple, yes: bool) -> None:
    """Mark runs deleted: hidden at once, removed by the next gc (`cafstore undelete` until then)."""
    from cafstore.maintenance import retention

    targets = _runs(runs)
    names = ", ".join(f"{flow}/{run_id}" for flow, run_id in targets)
    if not yes and not click.confirm(
        f"Delete {names}? They stay recoverable with `cafstore undelete` until the next `cafstore gc`.", default=False
    ):
        click.echo("nothing deleted")
        raise SystemExit(1)
    failed = 0
    for flow, run_id in targets:
        try:
            changed = retention.set_deleted(state.store, flow, run_id, True)
        except CafstoreError as exc:  # one damaged or missing run must not stop the others
            click.echo(f"Error: {exc.headline}: {exc}", err=True)
            failed += 1
            continue
        click.echo(f"deleted {flow}/{run_id}" if changed else f"{flow}/{run_id} was already deleted")
    if failed:
        raise SystemExit(1)


@click.command()
@click.argument("runs", nargs=-1, required=True, metavar="FLOW/N...")
@pass_state
@friendly_errors
def undelete(state: CliState, runs: tuple) -> None:
    """Bring back runs removed with `cafstore rm` (possible until gc sweeps them)."""
    from cafstore.maintenance import retention

    for flow, run_id in _runs(runs):
        changed = retention.set_deleted(state.store, flow, run_id, False)
        click.echo(f"restored {flow}/{run_id}" if changed else f"{flow}/{run_id} was not deleted")


@click.command()
@click.option("--dry-run", is_flag=True, help="Report only; re-chunk nothing.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Re-chunk every large object stored whole, not only those that share bytes.",
)
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    metavar="N",
    help="How many of the most shared objects to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
@friendly_errors
def dedup(state: CliState, dry_run: bool, everything: bool, top: int, as_json: bool) -> None:
    """Logical vs physical bytes and the most shared objects; re-chunk large objects stored whole.

    By default only objects that share at least 10% of their bytes with
    another object are re-chunked: a chunked object reads slower than a whole one.
    """
    from cafstore.maintenance import dedup as dedup_module

    store = state.store
    before = dedup_module.analyse(store, top=top)
    chosen = dedup_module.choose(store, before.whole_candidates, everything)
    from cafstore.progress import progress

    total = sum(size for _oid, size in chosen)
    with progress("dedup: re-chunking", total, unit="B", enabled=not as_json) as bar:
        done = dedup_module.rechunk_all(store, chosen, dry_run=dry_run, on_each=lambda _oid, size: bar.advance(size))
    report = before if dry_run or not done else dedup_module.analyse(store, top=top)
    report.rechunked = [(str(oid), size, added) for oid, size, added in done]
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(f"objects:          {report.objects} ({report.chunked_objects} chunked, {report.chunks} chunks)")
    click.echo(f"referenced bytes: {human(report.referenced_bytes)} (every reference counted)")
    click.echo(f"logical bytes:    {human(report.logical_bytes)} (each object once)")
    click.echo(f"physical bytes:   {human(report.physical_bytes)}")
    click.echo(f"dedup ratio:      {report.ratio:.2f}x (logical / physical)")
    if report.most_shared:
        click.echo("most shared:")
        for oid, kind, size, count, saved in report.most_shared:
            click.echo(f"  {kind:6s} {oid[:12]}  {human(size):>10s} x{count}  saves {human(saved)}")
    verb = "would re-chunk" if dry_run else "re-chunked"
    for oid, size, added in report.rechunked:
        extra = "" if added is None else f", {human(added)} of new chunks"
        click.echo(f"{verb} {oid[:12]} ({human(size)} stored whole{extra})")
    if not report.rechunked:
        click.echo(
            f"nothing to re-chunk ({len(before.whole_candidates)} large objects stored whole, "
            "none sharing bytes with another)"
            if before.whole_candidates and not everything
            else "no large object is stored whole"
        )


def fsck_report(store, progress: bool, remote_sample: "int | None" = None) -> tuple:
    """(the store's fsck report, damaged refs): every damaged ref (``refcheck``) is one of its problems."""
    from cafstore import schema
    from cafstore.maintenance import refcheck, strays

    report = store.fsck(progress=progress, remote_sample=remote_sample)
    if report.index_lost:  # nothing in a rejected index can be judged; the rebuild comes first
        return report, []
    damaged = refcheck.find(store)
    for bad in damaged:  # one line per ref: this one names the run, where fsck's could not
        report.problems = [p for p in report.problems if not p.startswith(f"ref {bad.name!r}: ")]
        report.problems.append(bad.line())
    report.notes.extend(strays.describe(name) for name in strays.find(store))  # the store knows no runs
    aside = sum(1 for _ in store.iter_raw_refs(schema.DAMAGED_PREFIX))
    if aside:
        report.notes.append(
            f"{aside} damaged ref(s) set aside under {schema.DAMAGED_PREFIX} by `fsck --repair`, original bytes "
            f"kept (read them with Store(path).list_refs({schema.DAMAGED_PREFIX!r}); gc keeps what they name)"
        )
    return report, damaged


def print_repair(store, fsck_report, damaged: list, as_json: bool) -> bool:
    """``fsck --repair``: set damaged refs aside, repair objects, print what was done; True if something changed."""
    from cafstore.maintenance import refcheck
    from cafstore.maintenance.repair import repair

    moved = refcheck.set_aside(store, damaged)
    result = repair(store, report=fsck_report)
    if as_json:
        click.echo(json.dumps({"repair": {**result.to_dict(), "moved_refs": [m.line() for m in moved]}}, indent=2))
    else:
        for item in moved:
            click.echo(f"repair: {item.line()}")
        for name in result.removed_temp:
            click.echo(f"repair: removed temp file {name}")
        for oid in result.removed_entries:
            click.echo(f"repair: removed index entry of {oid} (its file is gone)")
        for oid in result.quarantined:
            click.echo(f"repair: moved corrupt object {oid} to {store.path / 'quarantine'}")
        for name in result.removed_refs:
            click.echo(f"repair: removed ref {name} (it belonged to no run)")
        print_lost_runs(result.lost_runs)
    return bool(moved or result.removed_temp or result.removed_entries or result.quarantined or result.removed_refs)


def print_rebuild(store, as_json: bool) -> None:
    """``fsck --repair`` of a lost index: rebuild it, and say what came back and what did not."""
    from cafstore.maintenance.rebuild import rebuild

    result = rebuild(store)
    if as_json:
        click.echo(json.dumps({"rebuild": result.to_dict()}, indent=2))
        return
    if result.moved_aside:
        click.echo(f"rebuild: moved the rejected index to {store.path / result.moved_aside} (delete it when done)")
    if result.snapshot:
        click.echo(f"rebuild: restored gc's snapshot of the index from {result.snapshot['time']}")
    else:
        click.echo("rebuild: no snapshot of the index to restore (gc writes one each time it runs)")
    click.echo(
        f"rebuild: re-indexed {result.recovered} object files ({human(result.recovered_bytes)})"
        + (f", kept by the ref {result.lost_found}" if result.lost_found else "")
    )
    for name in result.quarantined:
        click.echo(f"rebuild: moved corrupt object {name} to {store.path / 'quarantine'}")
    click.echo(f"rebuild: not recoverable: {result.unrecoverable}")
    for oid in result.repair.removed_entries:
        click.echo(f"repair: removed index entry of {oid} (its file is gone)")
    print_lost_runs(result.repair.lost_runs)


def print_damage(store, fsck_report) -> None:
    """Name the runs that use an object fsck found missing or corrupt."""
    from cafstore.maintenance.repair import runs_using

    print_lost_runs(runs_using(store, fsck_report.bad_objects, include_missing=True))


def print_lost_runs(lost: dict) -> None:
    for run, oids in lost.items():
        shown = ", ".join(str(o)[:12] for o in oids[:5]) + (" ..." if len(oids) > 5 else "")
        click.echo(f"run {run} lost data (missing or corrupt: {shown}); `cafstore rm {run}` or re-run it")


COMMANDS = [gc, pin, unpin, rm, undelete, dedup]
