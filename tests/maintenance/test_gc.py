"""gc: retention rules, grace period, dry run, orphans, and failing closed on broken stores."""

from __future__ import annotations

import os
import time

import pytest
from maint_helpers import age, dead_pid, make_run

from cafstore.exception import GcRefused, NotFound
from cafstore.maintenance import gc, retention
from cafstore.maintenance.retention import Policy
from cafstore.store import records


def objects(store) -> set:
    return {st.oid for st in store.iter_objects()}


def raw_refs(store) -> list:
    with store.index.read() as txn:
        return list(txn.cursor(db=store.index.tables["refs"]))


def run_names(store) -> set:
    return {name for name, _ in store.list_refs("runs/")}


def test_unreferenced_old_objects_go_recent_ones_stay(store):
    run = make_run(store, "F", 1, {"x": b"kept" * 1000})
    garbage = store.put_bytes(os.urandom(200_000))
    age(store)
    fresh = store.put_bytes(b"written a moment ago, referenced by nothing yet")
    report = gc.collect(store, grace=3600)
    assert garbage not in objects(store) and fresh in objects(store)
    assert set(run["artifacts"].values()) <= objects(store)
    assert report.recent == 1 and report.freed_bytes >= 200_000
    assert {kind for _, kind, _ in report.removed} >= {"chunked raw", "raw"}
    assert store.fsck().ok and not store.fsck().notes


def test_dry_run_changes_nothing_and_reports_the_same(store):
    make_run(store, "F", 1, {"x": 1})
    make_run(store, "F", 2, {"x": 2})
    store.put_bytes(os.urandom(5000))
    retention.set_deleted(store, "F", 1, True)
    age(store)
    before = (objects(store), store.list_refs(""))
    dry = gc.collect(store, grace=0, dry_run=True)
    assert (objects(store), store.list_refs("")) == before
    real = gc.collect(store, grace=0)
    assert dry.dropped_runs == real.dropped_runs == [("F/1", "marked deleted")]
    assert sorted(dry.removed) == sorted(real.removed) and dry.freed_bytes == real.freed_bytes
    assert run_names(store) == {"runs/F/0000000002"} and store.fsck().ok


def test_rm_hides_undelete_restores_gc_sweeps(store):
    run = make_run(store, "F", 1, {"big": os.urandom(100_000)})
    assert retention.set_deleted(store, "F", 1, True)
    assert store.get_ref("runs/F/0000000001")["deleted"]
    assert retention.set_deleted(store, "F", 1, False)
    assert not retention.set_deleted(store, "F", 1, False)
    age(store)
    gc.collect(store, grace=0)
    assert run["artifacts"]["big"] in objects(store)
    retention.set_deleted(store, "F", 1, True)
    report = gc.collect(store, grace=0)
    assert report.dropped_runs == [("F/1", "marked deleted")]
    assert store.list_refs("tasks/") == [] and run["artifacts"]["big"] not in objects(store)
    with pytest.raises(NotFound):
        retention.set_deleted(store, "F", 1, False)


def test_keep_last_respects_pins_running_tags_and_origins(store):
    now = time.time()
    for run_id in range(1, 8):
        make_run(store, "F", run_id, {"i": run_id}, created=now - 100 * (10 - run_id))
    store.update_ref("runs/F/0000000002", lambda m: {**m, "user_tags": ["keep-me"]})
    retention.pin(store, "F", 1)
    # A live scheduler started before its run: our pid, with the run created now (an older run whose pid is
    # ours would be a reused pid, so crashed).
    store.update_ref("runs/F/0000000003", lambda m: {**m, "status": "running", "created": time.time()})
    store.update_ref("runs/F/0000000004", lambda m: {**m, "status": "running", "pid": dead_pid()})  # crashed
    store.update_ref(
        "runs/F/0000000007",
        lambda m: {**m, "status": "running", "origin_run_id": 5, "resumed_from": 5, "created": time.time()},
    )
    make_run(store, "G", 1, {"other": 1}, created=now - 10_000)
    report = gc.collect(store, Policy(keep_last=2, flow="F"), grace=0)
    assert sorted(p for p, _ in report.dropped_runs) == ["F/4"]  # 6 and 7 are the last two; 5 is an origin
    assert any("F/1 (pinned)" in n for n in report.notes) and any("F/3 (still running)" in n for n in report.notes)
    assert any("F/5 (origin" in n for n in report.notes)
    report = gc.collect(store, Policy(keep_last=2, include_tagged=True), grace=0)
    assert sorted(p for p, _ in report.dropped_runs) == ["F/2"]  # G/1 is its flow's newest
    retention.unpin(store, "F", 1)
    assert [p for p, _ in gc.collect(store, Policy(keep_last=2), grace=0).dropped_runs] == ["F/1"]
    assert store.fsck().ok


def test_older_than_alone_and_combined_with_keep_last(store):
    now = time.time()
    for run_id, days in ((1, 40), (2, 35), (3, 1)):
        make_run(store, "F", run_id, {"i": run_id}, created=now - days * 86400)
    dry = gc.collect(store, Policy(older_than=30 * 86400, keep_last=2), grace=0, dry_run=True)
    assert [p for p, _ in dry.dropped_runs] == ["F/1"]
    dry = gc.collect(store, Policy(older_than=30 * 86400), grace=0, dry_run=True)
    assert sorted(p for p, _ in dry.dropped_runs) == ["F/1", "F/2"]
    assert retention.parse_duration("30d") == 30 * 86400 and retention.parse_duration("90") == 90


def test_a_run_pinned_between_plan_and_drop_survives(store, monkeypatch):
    run = make_run(store, "F", 1, {"x": os.urandom(50_000)})
    retention.set_deleted(store, "F", 1, True)
    age(store)
    real_drop = retention.drop_run

    def pin_first(s, drop):
        retention.pin(s, drop.flow, drop.run_id)
        return real_drop(s, drop)

    monkeypatch.setattr(retention, "drop_run", pin_first)
    report = gc.collect(store, grace=0)
    assert report.dropped_runs == [] and run["artifacts"]["x"] in objects(store)
    assert store.fsck().ok


def test_orphan_blobs_and_temp_files_older_than_grace(store):
    oid = store.put_bytes(os.urandom(5000))
    orphan = store.blobs.path(oid)
    with store.index.write() as txn:  # unindex it: what a writer killed before its commit leaves
        txn.delete(oid.digest, db=store.index.tables["objects"])
    temp = store.blobs.tmp / "123-deadbeef"
    temp.write_bytes(b"half a blob")
    young = store.blobs.tmp / "456-young"
    young.write_bytes(b"a live writer")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    os.utime(temp, (old, old))
    report = gc.collect(store, grace=3600)
    assert len(report.orphan_files) == 1 and [n for n, _ in report.temp_files] == ["123-deadbeef"]
    assert not orphan.exists() and not temp.exists() and young.exists()


# -- failing closed: broken-store fixtures ------------------------------------------------------
def _broken(store, how: str) -> None:
    make_run(store, "F", 1, {"x": os.urandom(3000)})
    victim = make_run(store, "F", 2, {"y": os.urandom(3000)})
    store.put_bytes(os.urandom(4000))  # garbage that must survive a refused gc
    tables = store.index.tables
    big = store.put_bytes(os.urandom(100_000))
    with store.index.write() as txn:
        if how == "undecodable ref":
            txn.put(b"runs/F/0000000002", b"{not json", db=tables["refs"])
        elif how == "missing record":
            rid = victim["tasks"]["end"]
            txn.delete(rid.digest, db=tables["objects"])
            txn.delete(rid.digest, db=tables["inline"])
        elif how == "corrupt record":
            rid = victim["tasks"]["start"]
            txn.put(rid.digest, records.RECORD_MAGIC + b'{"kind":"task","artifacts":{}}', db=tables["inline"])
        elif how == "undecodable record":
            rid = victim["tasks"]["start"]
            txn.put(rid.digest, b"garbage", db=tables["inline"])
        elif how == "missing artifact":
            oid = victim["artifacts"]["y"]
            txn.delete(oid.digest, db=tables["objects"])
            txn.delete(oid.digest, db=tables["inline"])
        elif how == "missing chunk list":
            txn.put(b"refs-to-big", records.encode(big), db=tables["refs"])
            txn.delete(big.digest, db=tables["inline"])


@pytest.mark.parametrize(
    "how",
    [
        "undecodable ref",
        "missing record",
        "corrupt record",
        "undecodable record",
        "missing artifact",
        "missing chunk list",
    ],
)
def test_gc_fails_closed_on_a_broken_store(store, how):
    _broken(store, how)
    retention.set_deleted(store, "F", 1, True)
    age(store)
    before = (objects(store), raw_refs(store))
    with pytest.raises(GcRefused) as info:
        gc.collect(store, grace=0)
    assert "live set cannot be computed" in str(info.value) and info.value.problems
    assert (objects(store), raw_refs(store)) == before  # not even the rm'd run was dropped


def test_removing_the_damaged_run_lets_gc_run_again(store):
    _broken(store, "missing artifact")
    retention.set_deleted(store, "F", 2, True)
    age(store)
    report = gc.collect(store, grace=0)
    assert report.dropped_runs == [("F/2", "marked deleted")]
    assert store.fsck().ok


def test_a_missing_chunk_is_a_warning_not_a_refusal(store):
    big = store.put_bytes(os.urandom(100_000))
    store.set_ref("pins/keep", big)
    from cafstore.store import chunks

    cid = chunks.chunk_ids(store, big)[0][0]
    with store.index.write() as txn:
        txn.delete(cid.digest, db=store.index.tables["objects"])
    report = gc.collect(store, grace=0)
    assert any(str(cid) in w for w in report.warnings) and big in objects(store)
