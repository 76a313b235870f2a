"""Objects: put/get/open/exists/stat round trips, dedup, streaming puts, ids."""

from __future__ import annotations

import io
import os
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cafstore.exception import CafstoreError, ObjectNotFound, StoreError
from cafstore.store import ObjectId, Store, StoreConfig, hash_bytes

THRESHOLD = 64
# One store per test function, reused across hypothesis examples: content
# addressing makes examples independent anyway (equal data, equal object).
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def files_under(root: Path) -> dict:
    """Every file below ``root`` with its (size, mtime_ns)."""
    return {p.relative_to(root): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def blob_files(store: Store) -> dict:
    return files_under(store.path / "objects")


def check_round_trip(store: Store, data: bytes) -> ObjectId:
    oid = store.put_bytes(data)
    assert isinstance(oid, ObjectId)
    assert str(oid) == blake3.blake3(data).hexdigest()
    assert oid == hash_bytes(data)
    assert store.exists(oid)
    assert store.get_bytes(oid) == data
    assert store.get_bytes(oid, verify=True) == data
    assert bytes(store.open(oid)) == data
    assert bytes(store.open(oid, verify=True)) == data
    stat = store.stat(oid)
    assert (stat.oid, stat.size, stat.encoding) == (oid, len(data), "raw")
    assert stat.location == ("inline" if len(data) <= store.config.inline_threshold else "file")
    return oid


@FIXTURE_OK
@given(data=st.binary(max_size=4 * THRESHOLD))
def test_put_get_round_trip(tmp_path, data):
    store = Store(tmp_path / "s", StoreConfig(inline_threshold=THRESHOLD, durable=False))
    check_round_trip(store, data)


@FIXTURE_OK
@given(size=st.integers(THRESHOLD - 3, THRESHOLD + 3), seed=st.binary(min_size=1, max_size=8))
def test_sizes_around_the_inline_threshold(tmp_path, size, seed):
    store = Store(tmp_path / "s", StoreConfig(inline_threshold=THRESHOLD, durable=False))
    data = (seed * size)[:size]
    check_round_trip(store, data)


@pytest.mark.parametrize("data", [b"", b"\0", b"x" * THRESHOLD, b"y" * (THRESHOLD + 1)])
def test_edge_values(small_store, data):
    check_round_trip(small_store, data)


def test_default_threshold_and_bytes_like_inputs(store):
    for size in (0, 1, store.config.inline_threshold, store.config.inline_threshold + 1, 300_000):
        data = os.urandom(size)
        oid = check_round_trip(store, data)
        assert store.put_bytes(bytearray(data)) == oid
        assert store.put_bytes(memoryview(data)) == oid


def test_non_byte_memoryviews_are_stored_as_their_bytes(small_store):
    import array

    values = array.array("d", [1.5, -2.25, 1e300] * 20)
    oid = small_store.put_bytes(memoryview(values))
    assert small_store.get_bytes(oid) == values.tobytes()


def test_open_gives_a_private_view(small_store):
    """Writing into what open() returned never reaches the stored object."""
    for data in (b"inline", os.urandom(10_000)):
        oid = small_store.put_bytes(data)
        view = small_store.open(oid)
        if not view.readonly:
            view[0] = (view[0] + 1) % 256
        assert small_store.get_bytes(oid, verify=True) == data
    assert small_store.fsck().ok


def test_empty_object_stored_as_a_file(tmp_path):
    store = Store(tmp_path / "s", StoreConfig(inline_threshold=-1))
    oid = store.put_bytes(b"")
    assert store.stat(oid).location == "file"
    assert store.get_bytes(oid, verify=True) == b""
    assert bytes(store.open(oid)) == b""
    assert store.fsck().ok


@pytest.mark.parametrize("size", [10, 10_000])
def test_dedup_writes_nothing(small_store, size):
    data = os.urandom(size)
    oid = small_store.put_bytes(data)
    env = small_store.index.env
    before = (
        len(list(small_store.iter_objects())),
        blob_files(small_store),
        env.info()["last_txnid"],
        files_under(small_store.path / "tmp"),
    )
    for again in (data, bytearray(data), memoryview(data)):
        assert small_store.put_bytes(again) == oid
    assert small_store.put_file(io.BytesIO(data)) == oid
    after = (
        len(list(small_store.iter_objects())),
        blob_files(small_store),
        env.info()["last_txnid"],
        files_under(small_store.path / "tmp"),
    )
    assert after == before  # no new object, no file touched (mtime included), no LMDB commit
    assert small_store.stat(oid).location == ("file" if size > THRESHOLD else "inline")


def test_object_files_are_read_only_and_named_by_id(small_store):
    data = os.urandom(1000)
    oid = small_store.put_bytes(data)
    path = small_store.path / "objects" / oid[:2] / oid[2:]
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o444
    assert list((small_store.path / "tmp").iterdir()) == []


# -- put_file ------------------------------------------------------------------------------
def streaming_store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s", StoreConfig(inline_threshold=THRESHOLD, copy_chunk=1000))


@pytest.mark.parametrize("size", [0, 5, THRESHOLD, THRESHOLD + 1, 999, 1000, 1001, 12_345])
def test_put_file_from_path_and_file_object(tmp_path, size):
    store = streaming_store(tmp_path)
    data = os.urandom(size)
    source = tmp_path / "input.bin"
    source.write_bytes(data)
    oid = store.put_file(source)
    assert oid == hash_bytes(data)
    assert store.put_file(str(source)) == oid
    with open(source, "rb") as handle:
        assert store.put_file(handle) == oid
        assert not handle.closed  # a caller's file object is left open
    check_round_trip(store, data)
    assert list((store.path / "tmp").iterdir()) == []  # temp files renamed or removed


def test_put_file_of_new_data_from_file_object(tmp_path):
    store = streaming_store(tmp_path)
    data = os.urandom(7_777)
    oid = store.put_file(io.BufferedReader(io.BytesIO(data)))
    assert store.stat(oid).location == "file"
    assert store.get_bytes(oid, verify=True) == data
    assert store.fsck().ok


class ShortReads(io.RawIOBase):
    """A stream that returns fewer bytes than asked, like a pipe or socket."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = 37 if n < 0 else min(n, 37)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def test_put_file_with_short_reads(tmp_path):
    store = streaming_store(tmp_path)
    data = os.urandom(5_000)
    assert store.put_file(ShortReads(data)) == hash_bytes(data)
    assert store.get_bytes(hash_bytes(data), verify=True) == data


class Exploding(io.RawIOBase):
    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError("device went away")
        self.left -= 1
        return b"z" * 1000


def test_put_file_failing_midway_leaves_no_temp_file(tmp_path):
    store = streaming_store(tmp_path)
    with pytest.raises(OSError, match="went away"):
        store.put_file(Exploding(good=3))
    assert list((store.path / "tmp").iterdir()) == []
    assert list(store.iter_objects()) == []


def test_put_file_missing_path(tmp_path, store):
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "nope")


# -- ids and lookups -----------------------------------------------------------------------
def test_object_id_validation():
    data = b"some bytes"
    hexid = blake3.blake3(data).hexdigest()
    oid = ObjectId(hexid)
    assert oid == hexid and isinstance(oid, str)
    assert ObjectId(hexid.upper()) == oid
    assert ObjectId(f"  {hexid}\n") == oid
    assert ObjectId(bytes.fromhex(hexid)) == oid
    assert ObjectId(bytearray.fromhex(hexid)) == oid
    assert ObjectId(oid) is oid
    assert oid.digest == bytes.fromhex(hexid)
    assert oid.short == hexid[:12]
    assert repr(oid) == f"ObjectId('{hexid}')"
    assert {oid: 1}[hexid] == 1  # usable wherever the hex string is
    for bad in ("", "abc", hexid[:-1], hexid + "0", "g" * 64, hexid[:-1] + "-", b"\0" * 31, b"\0" * 33):
        with pytest.raises(StoreError):
            ObjectId(bad)
    with pytest.raises(StoreError, match="not an object id"):
        ObjectId("xyz")


def test_missing_objects(store):
    oid = hash_bytes(b"never stored")
    assert not store.exists(oid)
    for read in (store.get_bytes, store.open, store.stat, store.get_artifact, store.get_record):
        with pytest.raises(ObjectNotFound) as info:
            read(oid)
        assert oid in str(info.value)
    # ObjectNotFound is also a KeyError (dict-like lookups) and a CafstoreError.
    assert issubclass(ObjectNotFound, KeyError) and issubclass(ObjectNotFound, CafstoreError)


def test_lookups_accept_hex_strings(small_store):
    oid = small_store.put_bytes(b"q" * 500)
    text = str(oid).upper()
    assert small_store.exists(text)
    assert small_store.get_bytes(text) == b"q" * 500
    assert small_store.stat(text).oid == oid
    with pytest.raises(StoreError):
        small_store.exists("not-an-id")


def test_iter_objects_and_stats(small_store):
    small = [os.urandom(10) for _ in range(5)]
    large = [os.urandom(1000) for _ in range(3)]
    ids = {small_store.put_bytes(d) for d in small + large}
    listed = list(small_store.iter_objects())
    assert {s.oid for s in listed} == ids
    assert [s.oid for s in listed] == sorted(s.oid for s in listed)
    stats = small_store.stats()
    assert (stats["objects"], stats["inline"], stats["files"], stats["raw"]) == (8, 5, 3, 8)
    assert stats["logical_bytes"] == 5 * 10 + 3 * 1000
    assert stats["file_bytes"] == 3000


def test_relative_store_path_survives_chdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store("rel-store", StoreConfig(inline_threshold=THRESHOLD))
    first = store.put_bytes(os.urandom(500))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    second = store.put_bytes(os.urandom(500))
    assert store.get_bytes(first, verify=True) and store.get_bytes(second, verify=True)
    assert not (elsewhere / "rel-store").exists()
    assert store.fsck().ok
