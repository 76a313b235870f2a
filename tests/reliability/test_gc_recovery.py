"""Issue 12 item 9: the documented recovery from a lost object completes, and gc's refusal reads once.

The recovery gc's refusal prescribes is ``cafstore fsck --repair`` (it names
the runs that lost data), ``cafstore rm`` of those runs, and gc again. The
records of a removed run are recent (the grace period protects what a flow
in flight writes), so gc used to keep refusing for an hour because they
point at the lost object. Built on a real damaged store, through the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path

from store_damage import cli, flow


def _run_with_a_lost_object(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    done = flow(store, "--width", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    victim = next(p for p in (store / "objects").rglob("*") if p.is_file() and p.stat().st_size >= 200_000)
    os.chmod(victim, 0o644)
    victim.unlink()
    return store


def test_repair_rm_then_gc_completes_within_the_grace_period(tmp_path):
    store = _run_with_a_lost_object(tmp_path)
    repair = cli(store, "fsck", "--repair")
    assert "run ReliableFlow/1 lost data" in repair.stdout, repair.stdout
    assert cli(store, "rm", "-y", "ReliableFlow/1").returncode == 0
    gc = cli(store, "gc")  # the default grace: the run's records are minutes old
    assert gc.returncode == 0, gc.stderr
    assert "drop run ReliableFlow/1" in gc.stdout
    assert "refers to missing object" in gc.stdout  # said as a warning, not a refusal
    assert cli(store, "gc").returncode == 0  # and stays done
    fsck = cli(store, "fsck")
    assert fsck.returncode == 0, fsck.stdout  # what is left is garbage awaiting the grace period: notes


def test_gc_refusal_says_its_headline_once(tmp_path):
    store = _run_with_a_lost_object(tmp_path)
    cli(store, "fsck", "--repair")  # drops the lost object's index entry: the run now refers to nothing
    gc = cli(store, "gc")
    assert gc.returncode == 1
    first_line = gc.stderr.strip().splitlines()[0]
    assert first_line.startswith("Error: gc deleted nothing: ") and first_line.count("deleted nothing") == 1, gc.stderr
    assert "cafstore fsck --repair" in gc.stderr
