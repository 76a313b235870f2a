"""Damaged stores: fsck names what is wrong and who is affected; verified reads refuse bad bytes."""

from __future__ import annotations

import os
from pathlib import Path

import lmdb
import numpy as np
import pytest

from cafstore.exception import CorruptObject, ObjectNotFound
from cafstore.store import ObjectId, Store, StoreConfig


def object_file(store: Store, oid: ObjectId) -> Path:
    return store.path / "objects" / oid[:2] / oid[2:]


def flip_byte(path: Path, offset: int) -> None:
    os.chmod(path, 0o644)  # object files are read-only
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.chmod(path, 0o444)


def edit_index(store: Store, table: bytes, key: bytes, change) -> None:
    """Rewrite one LMDB value behind the store's back (the store's handle is closed first)."""
    store.close()
    env = lmdb.open(str(store.path / "index"), max_dbs=8, subdir=True)
    try:
        db = env.open_db(table)
        with env.begin(write=True, db=db) as txn:
            value = txn.get(key)
            assert value is not None
            txn.put(key, change(value))
    finally:
        env.close()


@pytest.fixture
def damaged(tmp_path):
    """A store whose one file object is pointed at by a ref and a record (itself pointed at by a ref)."""
    store = Store(tmp_path / "store", StoreConfig(inline_threshold=64, chunk_threshold=0))
    victim = store.put_bytes(bytes(range(256)) * 40)
    bystander = store.put_bytes(b"healthy" * 100)
    record = store.put_record({"inputs": [victim, bystander]})
    store.set_ref("runs/F/1", {"record": record})
    store.set_ref("pins/direct", {"object": victim})
    store.set_ref("pins/healthy", {"object": bystander})
    assert store.fsck().ok
    return store, victim, record, bystander


def test_flipped_byte_in_object_file(damaged):
    store, victim, record, bystander = damaged
    flip_byte(object_file(store, victim), 1234)
    report = store.fsck()
    assert not report.ok
    text = "\n".join(report.problems)
    assert f"object {victim}: corrupt" in text
    assert f"record {record} refers to corrupt object {victim}" in text
    assert f"ref 'pins/direct' refers to corrupt object {victim}" in text
    assert "pins/healthy" not in text and str(bystander) not in text.replace(f"record {record}", "")
    assert report.bad_objects == {victim}
    with pytest.raises(CorruptObject) as info:
        store.get_bytes(victim, verify=True)
    assert victim in str(info.value) and info.value.oid == victim
    with pytest.raises(CorruptObject, match=victim):
        store.open(victim, verify=True)
    with pytest.raises(CorruptObject, match=victim):
        store.get_bytes(victim)  # verified by default
    # The explicit opt-out trusts the disk (documented); the healthy object is fine.
    assert len(store.get_bytes(victim, verify=False)) == 256 * 40
    assert store.get_bytes(bystander, verify=True) == b"healthy" * 100


def test_flipped_byte_in_artifact_file(tmp_path):
    store = Store(tmp_path / "store", StoreConfig(chunk_threshold=0))
    arr = np.arange(100_000, dtype=np.float64)
    oid = store.put_artifact({"x": arr})
    store.set_ref("runs/F/1", {"x": oid})
    size = store.stat(oid).size
    flip_byte(object_file(store, oid), size - 8)  # inside the array's bytes
    with pytest.raises(CorruptObject) as info:
        store.get_artifact(oid, verify=True, name="x")
    assert oid in str(info.value)
    report = store.fsck()
    assert any(oid in p and "corrupt" in p for p in report.problems)
    assert any("runs/F/1" in p for p in report.problems)


def test_truncated_object_file(damaged):
    store, victim, _, _ = damaged
    path = object_file(store, victim)
    os.chmod(path, 0o644)
    os.truncate(path, 100)
    report = store.fsck()
    assert any(victim in p for p in report.problems)
    with pytest.raises(CorruptObject, match=victim):
        store.get_bytes(victim, verify=True)


def test_missing_object_file(damaged):
    store, victim, record, _ = damaged
    object_file(store, victim).unlink()
    report = store.fsck()
    assert not report.ok
    text = "\n".join(report.problems)
    assert f"object {victim}: unreadable" in text
    assert f"record {record}" in text and "pins/direct" in text
    for read in (store.get_bytes, store.open, lambda oid: store.get_bytes(oid, verify=True)):
        with pytest.raises(ObjectNotFound) as info:
            read(victim)
        message = str(info.value)
        assert victim in message and "missing" in message and "fsck" in message


def test_corrupt_inline_object(tmp_path):
    store = Store(tmp_path / "store")
    raw = store.put_bytes(b"small and inline")
    art = store.put_artifact({"a": 1})
    rec = store.put_record({"artifact": art})
    store.set_ref("runs/F/1", {"record": rec, "raw": raw})
    for oid in (raw, art, rec):
        assert store.stat(oid).location == "inline"
        edit_index(store, b"inline", oid.digest, lambda v: v[:-1] + bytes([v[-1] ^ 0x20]))
    reads = [store.get_bytes, store.open, lambda oid: store.get_bytes(oid, verify=True)]
    for oid in (raw, art, rec):
        for read in reads:
            with pytest.raises(CorruptObject) as info:
                read(oid)
            assert oid in str(info.value) and info.value.oid == oid
    with pytest.raises(CorruptObject, match=art):
        store.get_artifact(art)
    with pytest.raises(CorruptObject, match=rec):
        store.get_record(rec)
    report = store.fsck()
    assert {p.split(":")[0] for p in report.problems if ": corrupt" in p} == {
        f"object {oid}" for oid in (raw, art, rec)
    }
    assert any("runs/F/1" in p for p in report.problems)


def test_inline_bytes_missing_from_index(tmp_path):
    store = Store(tmp_path / "store")
    oid = store.put_bytes(b"will lose its bytes")
    store.close()
    env = lmdb.open(str(store.path / "index"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"inline")) as txn:
        txn.delete(oid.digest)
    env.close()
    with pytest.raises(CorruptObject, match=oid):
        store.get_bytes(oid)
    assert any(oid in p for p in store.fsck().problems)


def test_corrupt_chunk_of_a_chunked_object(tmp_path):
    """Chunked storage (opt-in): one bad chunk is reported against the whole object."""
    store = Store(
        tmp_path / "store", StoreConfig(chunk_threshold=256 << 10, chunk_similar_only=False, chunk_size=64 << 10)
    )
    arr = np.random.default_rng(1).random(100_000)
    oid = store.put_artifact(arr)
    store.set_ref("model", {"weights": oid})
    assert store.stat(oid).location == "chunked"
    chunk_file = next(p for p in (store.path / "objects").rglob("*") if p.is_file())
    flip_byte(chunk_file, 10)
    with pytest.raises(CorruptObject, match=oid):
        store.get_artifact(oid, verify=True)
    report = store.fsck()
    assert not report.ok
    text = "\n".join(report.problems)
    assert oid in text and "'model'" in text


def test_stray_files_are_notes_not_problems(small_store):
    oid = small_store.put_bytes(b"x" * 1000)
    (small_store.path / "tmp" / "12345-deadbeef").write_bytes(b"half a blob")
    orphan = ObjectId("ab" * 32)
    (small_store.path / "objects" / "ab").mkdir(exist_ok=True)
    (small_store.path / "objects" / "ab" / orphan[2:]).write_bytes(b"unindexed")
    report = small_store.fsck()
    assert report.ok, report.problems
    assert any("temp file" in n for n in report.notes)
    assert any(orphan in n and "orphan" in n for n in report.notes)
    assert small_store.get_bytes(oid, verify=True) == b"x" * 1000
