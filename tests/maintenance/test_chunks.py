"""Chunk-level dedup: round trips, the growth targets of issue 8, corruption, fsck, re-chunking."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maint_helpers import age, small_config

from cafstore.exception import CorruptObject
from cafstore.maintenance import dedup
from cafstore.store import Store, StoreConfig, chunks, hash_bytes

MIB = 1 << 20


def physical(store: Store) -> int:
    return dedup.analyse(store).physical_bytes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=200_000), cuts=st.lists(st.integers(0, 200_000), max_size=4))
def test_round_trip_any_content_any_pieces(tmp_path_factory, data, cuts):
    """Whatever the bytes and however they arrive in pieces, the id is blake3(content) and reads return it."""
    store = Store(
        tmp_path_factory.mktemp("s"),
        config=small_config(chunk_threshold=1024, chunk_similar_only=False, chunk_size=256),
    )
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [memoryview(data)[a:b] for a, b in zip(bounds, bounds[1:])]
    oid = store.put_encoded(None, pieces or [b""], len(data), 0)
    assert oid == hash_bytes(data)
    assert store.get_bytes(oid, verify=True) == data
    if len(data) >= 1024:
        assert store.stat(oid).location == "chunked"
    assert store.fsck().ok


def test_artifact_round_trip_and_identity(store):
    array = np.random.default_rng(1).random(100_000)
    oid = store.put_artifact(array)
    assert store.stat(oid).location == "chunked"
    loaded = store.get_artifact(oid, verify=True)
    assert (loaded == array).all()
    loaded[0] = -1.0  # a loaded array is a private, writable copy
    assert store.get_artifact(oid)[0] == array[0]
    whole = Store(store.path.parent / "whole", config=small_config(chunk_threshold=0))
    assert whole.put_artifact(array) == oid  # ids never depend on chunking
    assert whole.stat(oid).location == "file"


def test_put_file_and_transactions_chunk_too(store):
    data = os.urandom(300_000)
    oid = store.put_file(io.BytesIO(data))
    assert oid == hash_bytes(data) and store.stat(oid).location == "chunked"
    assert list(store.blobs.tmp.iterdir()) == []
    with store.transaction() as txn:
        other = txn.put_bytes(data[::-1])
        store_ref = txn.set_ref("x", other)
    assert store_ref is None and store.get_bytes(other) == data[::-1]
    assert store.fsck().ok


def _growth_store(tmp_path) -> Store:
    # The production defaults: chunking on for values that resemble a stored one (similar.py).
    return Store(tmp_path, config=StoreConfig(durable=False))


def test_target_one_percent_changed_in_place_grows_less_than_10_percent(tmp_path):
    store = _growth_store(tmp_path / "s")
    array = np.random.default_rng(0).random(8 * MIB)  # 64 MiB of float64
    store.put_artifact(array)
    before = physical(store)
    start = len(array) // 3
    array[start : start + len(array) // 100] = 0.5  # a contiguous 1%, in place
    store.put_artifact(array)
    growth = physical(store) - before
    assert growth < 0.10 * 64 * MIB, f"grew {growth / MIB:.2f} MiB"


def test_target_1kib_inserted_at_front_grows_less_than_5_percent(tmp_path):
    store = _growth_store(tmp_path / "s")
    data = np.random.default_rng(2).integers(0, 256, 64 * MIB, dtype=np.uint8).tobytes()
    store.put_bytes(data)
    before = physical(store)
    oid = store.put_bytes(os.urandom(1024) + data)
    growth = physical(store) - before
    assert growth < 0.05 * 64 * MIB, f"grew {growth / MIB:.2f} MiB"
    assert store.get_bytes(oid)[1024:] == data


def test_storing_again_writes_nothing(store):
    data = os.urandom(500_000)
    store.put_bytes(data)
    before = physical(store)
    files = sorted(p for p in store.blobs.objects.rglob("*") if p.is_file())
    store.put_bytes(data)
    assert physical(store) == before
    assert sorted(p for p in store.blobs.objects.rglob("*") if p.is_file()) == files


def _a_file_chunk(store: Store, oid):
    entries = chunks.chunk_ids(store, oid)
    cid = next(cid for cid, n in entries if store.stat(cid).location == "file")
    return cid, store.blobs.path(cid)


def test_corrupt_chunk_is_named_on_read_and_by_fsck(store):
    data = os.urandom(400_000)
    oid = store.put_bytes(data)
    cid, path = _a_file_chunk(store, oid)
    os.chmod(path, 0o644)
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptObject) as info:
        store.get_bytes(oid, verify=True)
    assert info.value.oid == oid and str(oid) in str(info.value)
    report = store.fsck()
    assert not report.ok and {oid, cid} <= report.bad_objects


def test_missing_or_truncated_chunk_raises_corrupt_object_even_without_verify(store):
    oid = store.put_bytes(os.urandom(400_000))
    cid, path = _a_file_chunk(store, oid)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CorruptObject, match=str(oid)):
        store.get_bytes(oid)
    path.unlink()
    with pytest.raises(CorruptObject, match="missing"):
        store.get_bytes(oid)
    assert any(str(cid) in p for p in store.fsck().problems)


def test_rechunk_converts_whole_objects_and_readers_never_notice(tmp_path):
    path = tmp_path / "s"
    whole = Store(path, config=small_config(chunk_threshold=0))
    base = os.urandom(600_000)
    a = whole.put_bytes(base)
    b = whole.put_bytes(base[:300_000] + b"x" + base[300_000:])
    view = whole.open(a)  # a reader holding the whole file's mmap
    store = Store(path, config=small_config())
    alone = whole.put_bytes(os.urandom(300_000))  # shares nothing: stays whole (faster reads)
    report = dedup.analyse(store)
    assert {oid for oid, _ in report.whole_candidates} == {a, b, alone}
    assert {oid for oid, _ in dedup.choose(store, report.whole_candidates)} == {a, b}
    assert len(dedup.choose(store, report.whole_candidates, everything=True)) == 3
    report.whole_candidates = dedup.choose(store, report.whole_candidates)
    assert dedup.rechunk_all(store, report.whole_candidates, dry_run=True)[0][2] is None
    assert store.stat(a).location == "file"
    done = {oid: added for oid, _, added in dedup.rechunk_all(store, report.whole_candidates)}
    assert set(done) == {a, b} and min(done.values()) < 100_000  # the second shares most of the first's chunks
    assert bytes(view) == base and store.get_bytes(a, verify=True) == base
    assert store.stat(b).location == "chunked" and not store.blobs.exists(b)
    after = dedup.analyse(store)
    assert after.physical_bytes < report.physical_bytes - 500_000 and after.ratio > 1.3
    assert after.most_shared and after.most_shared[0][1] == "chunk"
    assert store.fsck().ok


def test_reusing_an_old_object_freshens_it_and_its_chunks(store):
    data = os.urandom(300_000)
    oid = store.put_bytes(data)
    age(store, 7200)
    created = store.stat(oid).created
    store.put_bytes(data)  # a dedup hit on an old object: gc's grace period must cover it again
    assert store.stat(oid).created > created + 7000
    assert all(store.stat(cid).created > created + 7000 for cid, _ in chunks.chunk_ids(store, oid))
