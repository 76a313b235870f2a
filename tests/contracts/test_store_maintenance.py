"""gc, fsck and repair over every registered blob backend, through the store's public API.

Maintenance reaches blobs only through the ``BlobBackend`` verbs, so the
guarantees of docs/maintenance.md -- unreachable objects go, reachable ones
and young ones stay, gc fails closed, fsck finds a missing blob, a crash
leaves a store fsck passes -- must hold whatever the backend.
"""

from __future__ import annotations

import os
import time

import pytest
from contract_helpers import rot

from cafstore.exception import GcRefused
from cafstore.maintenance import gc, repair
from cafstore.store import ObjectId, hash_bytes


def age_index(store, oids, seconds: float = 7200.0) -> None:
    """Pretend these objects were indexed ``seconds`` ago (their blobs keep their real age)."""
    index = store.index
    with index.write() as txn:
        for oid in oids:
            location, encoding, size, created = index.object_meta(txn, oid.digest)
            index.put_meta(txn, oid.digest, (location, encoding, size, created - seconds))


def test_gc_removes_the_unreachable_and_keeps_the_reachable(store):
    kept_blob, kept_small = store.put_bytes(os.urandom(20_000)), store.put_bytes(b"small and kept")
    record = store.put_record({"kind": "task", "artifacts": {"a": kept_blob, "b": kept_small}})
    store.set_ref("runs/F/0000000001", {"tasks": [record]})
    lost_blob, lost_small = store.put_bytes(os.urandom(30_000)), store.put_bytes(b"small and lost")
    report = gc.collect(store, grace=0)
    assert {ObjectId(o) for o in (kept_blob, kept_small, record)} <= {st.oid for st in store.iter_objects()}
    assert not store.exists(lost_blob) and not store.exists(lost_small)
    assert not store.blobs.exists(lost_blob) and store.blobs.exists(kept_blob)
    assert len(report.removed) == 2 and report.freed_bytes >= 30_000
    assert store.get_bytes(kept_blob, verify=True) and store.fsck().ok


def test_gc_respects_the_grace_period(store):
    young = store.put_bytes(os.urandom(20_000))
    old = store.put_bytes(os.urandom(20_000))
    age_index(store, [old])
    report = gc.collect(store, grace=3600)
    assert store.exists(young) and store.blobs.exists(young)  # written within the grace period
    assert not store.exists(old) and report.recent == 1
    # The old entry's blob was written moments ago: gc leaves a young blob alone, as an orphan...
    assert store.blobs.exists(old) and store.fsck().ok
    gc.collect(store, grace=0)  # ...which a later gc past its grace period removes
    assert not store.blobs.exists(old) and not store.exists(young)


def test_gc_dry_run_changes_nothing(store):
    oid = store.put_bytes(os.urandom(20_000))
    report = gc.collect(store, grace=0, dry_run=True)
    assert len(report.removed) == 1 and store.exists(oid) and store.blobs.exists(oid)


def test_gc_fails_closed_when_the_live_set_is_unknown(store):
    artifact = store.put_bytes(os.urandom(20_000))
    record = store.put_record({"kind": "task", "artifacts": {"a": artifact}})
    store.set_ref("runs/F/0000000001", {"tasks": [record]})
    garbage = store.put_bytes(os.urandom(20_000))
    index = store.index
    with index.write() as txn:
        index.delete_object(txn, record.digest)  # the ref now names a record that is not there
    with pytest.raises(GcRefused):
        gc.collect(store, grace=0)
    assert store.exists(garbage) and store.blobs.exists(garbage)  # nothing deleted


def test_fsck_passes_on_a_healthy_store(store):
    blob = store.put_bytes(os.urandom(20_000))
    store.set_ref("keep", {"record": store.put_record({"blob": blob, "n": 1})})
    report = store.fsck()
    assert report.ok and (report.objects, report.records, report.refs) == (2, 1, 1) and report.notes == []


def test_fsck_reports_a_missing_blob_and_repair_names_the_run(store):
    blob = store.put_bytes(os.urandom(20_000))
    record = store.put_record({"kind": "task", "artifacts": {"a": blob}})
    store.set_ref("runs/F/0000000001", {"tasks": [record]})
    store.blobs.delete(blob)
    report = store.fsck()
    assert not report.ok and any(str(blob) in problem for problem in report.problems)
    fixed = repair.repair(store, report=report)
    assert fixed.removed_entries == [blob] and list(fixed.lost_runs) == ["F/1"]


def test_repair_quarantines_a_corrupt_blob_and_a_re_put_heals_it(store):
    data = os.urandom(20_000)
    oid = store.put_bytes(data)
    rot(store.blobs, oid, b"rotten" + data[6:])
    fixed = repair.repair(store)
    assert fixed.quarantined == [oid]
    assert (store.path / repair.QUARANTINE / str(oid)).read_bytes()[:6] == b"rotten"
    assert store.put_bytes(data) == oid  # no longer deduplicated against the bad copy
    assert store.get_bytes(oid, verify=True) == data and store.fsck().ok


def test_a_crash_mid_put_leaves_a_store_fsck_passes(store):
    """What a writer killed at any point leaves: a temp file, or a blob not yet indexed."""
    kept = store.put_bytes(os.urandom(20_000))
    store.set_ref("keep", kept)
    temp = store.blobs.new_temp_path()
    temp.write_bytes(b"half of a large object")
    orphan_data = os.urandom(20_000)
    orphan = hash_bytes(orphan_data)
    store.blobs.put_pieces(orphan, [orphan_data], len(orphan_data))  # killed before its index commit
    report = store.fsck()
    assert report.ok and len(report.notes) == 2  # harmless leftovers, reported
    old = time.time() - 7200
    os.utime(temp, (old, old))
    result = gc.collect(store, grace=0)
    assert len(result.orphan_files) == 1 and len(result.temp_files) == 1
    assert not store.blobs.exists(orphan) and not temp.exists() and store.exists(kept)
    assert store.fsck().ok and store.fsck().notes == []


def test_a_failed_streaming_put_leaves_nothing_behind(store):
    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, n: int) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("the source disk went away")
            return os.urandom(100_000)

    with pytest.raises(OSError):
        store.put_file(Broken())
    assert store.blobs.stray_temp_files() == [] and list(store.blobs.iter_ids()) == []
    assert store.fsck().ok
