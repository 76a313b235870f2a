"""gc killed with SIGKILL at random points; gc running while another process writes.

Both use real processes: a kill -9 and LMDB's cross-process locking are
exactly what these tests are about. Stores use ``durable=False`` (no fsync):
a killed *process* loses nothing the kernel already has, so fsync only
matters for power loss, which these tests do not simulate.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from maint_helpers import age, make_run
from maint_workers import config, content

from cafstore.maintenance import gc, retention
from cafstore.store import Store, records

WORKERS = str(Path(__file__).with_name("maint_workers.py"))


def _worker(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, WORKERS, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def garbage_store(tmp_path_factory) -> tuple:
    """A store where gc has plenty to do: deleted runs, unreferenced values of every size, temp files."""
    path = tmp_path_factory.mktemp("crash") / "store"
    store = Store(path, config=config())
    kept = {}
    for run_id in range(1, 9):
        values = {f"v{i}": content(run_id * 10 + i) for i in range(4)}
        made = make_run(store, "F", run_id, values)
        if run_id % 2:
            retention.set_deleted(store, "F", run_id, True)
        else:
            kept[run_id] = made
    for seed in range(1000, 1120):
        store.put_bytes(content(seed))
    (store.blobs.tmp / "999-stale").write_bytes(b"left by a dead writer")
    age(store)
    os.utime(store.blobs.tmp / "999-stale", (time.time() - 7200,) * 2)
    store.close()
    return path, kept


def test_gc_killed_at_random_points_leaves_a_store_fsck_passes(garbage_store, tmp_path, stress_trials):
    source, kept = garbage_store
    full = _worker("gc", _copy(source, tmp_path / "timing"), 0, 10)
    out, err = full.communicate(timeout=60)
    assert full.returncode == 0, err
    duration = json.loads(out.splitlines()[-1])["seconds"]
    rng = random.Random(8)
    trials = stress_trials(ci=8, full=100)
    for trial in range(trials):
        path = _copy(source, tmp_path / f"t{trial}")
        proc = _worker("gc", path, 0, 10)
        assert proc.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0, duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        store = Store(path, config=config())
        report = store.fsck()
        assert report.ok, (trial, report.problems[:5])
        gc.collect(store, grace=0)  # the next gc completes...
        after = store.fsck()
        assert after.ok and not after.notes, (trial, after.notes[:5])  # ...and leaves nothing behind
        for made in kept.values():  # and nothing live was lost
            for oid in made["artifacts"].values():
                store.get_artifact(oid, verify=True)
        store.close()
        shutil.rmtree(path)


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_gc_never_takes_what_a_concurrent_writer_wrote_or_references(tmp_path, stress):
    """A writer re-stores old unreachable values (dedup hits gc would otherwise sweep) while gc loops."""
    path = tmp_path / "store"
    store = Store(path, config=config())
    old_seeds = list(range(500, 560))
    for seed in old_seeds:
        store.put_bytes(content(seed))
    age(store)
    store.close()
    seconds = 20 if stress else 4
    log = tmp_path / "writer.log"
    writers = [_worker("writer", path, seconds, seed, ",".join(map(str, old_seeds)), log) for seed in (1, 2)]
    collector = _worker("gc", path, 600, 7, seconds)
    for proc in writers + [collector]:
        out, err = proc.communicate(timeout=seconds + 60)
        assert proc.returncode == 0, err
    rounds = [line for line in out.splitlines() if line.startswith("{")]
    assert len(rounds) >= 2, "gc should have run several times while the writers wrote"
    assert sum(json.loads(line)["removed_objects"] for line in rounds) > 0, "gc had old garbage to remove"
    store = Store(path, config=config())
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) > 10
    for entry in entries:  # everything written within the grace period is still there and intact
        for oid, size in zip(entry["put"], entry["sizes"]):
            assert len(store.get_bytes(oid, verify=True)) == size
        assert records.decode_record(store.open(entry["record"]))["to"] == entry["put"]
    deleted = {e["deleted"] for e in entries}
    live_refs = {e["ref"] for e in entries} - deleted
    assert {name for name, _ in store.list_refs("refs/")} == live_refs
    report = gc.collect(store, grace=600)  # and the store stays consistent
    assert store.fsck().ok, store.fsck().problems[:5]
    assert report.scanned > 0
