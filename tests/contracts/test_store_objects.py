"""The store's object contract over every registered blob backend: what a Store promises its
callers must not depend on where large objects' bytes live.

Each test runs once per backend in ``BACKENDS`` (conftest.py), against a real
Store on disk whose blobs are in that backend.
"""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
import pytest
from contract_helpers import INLINE, rot

from cafstore.exception import CorruptObject, StoreError
from cafstore.maintenance import dedup
from cafstore.store import hash_bytes


def blob_count(store) -> int:
    return len(list(store.blobs.iter_ids()))


@pytest.mark.parametrize("size", [0, 10, INLINE, INLINE + 1, 200_000])
def test_bytes_round_trip_inline_and_blob(store, size):
    data = os.urandom(size)
    oid = store.put_bytes(data)
    assert oid == hash_bytes(data)
    assert store.get_bytes(oid) == data == store.get_bytes(oid, verify=True)
    assert store.stat(oid).location == ("inline" if size <= INLINE else "file")
    assert store.blobs.exists(oid) == (size > INLINE)


def test_artifacts_round_trip_small_and_large(store):
    small = {"alpha": 0.5, "names": ["a", "b"]}
    large = np.arange(100_000, dtype=np.float64)
    small_id, large_id = store.put_artifact(small), store.put_artifact(large)
    assert store.stat(small_id).location == "inline" and store.stat(large_id).location == "file"
    assert store.get_artifact(small_id) == small
    loaded = store.get_artifact(large_id, verify=True)
    assert np.array_equal(loaded, large)
    loaded[0] = -1.0  # a step may modify what it loaded...
    assert store.get_artifact(large_id)[0] == 0.0  # ...without touching the store


def test_storing_existing_bytes_writes_nothing(store):
    data = os.urandom(50_000)
    first = store.put_bytes(data)
    before = (blob_count(store), store.blobs.mtime(first), store.stats()["objects"])
    assert store.put_bytes(data) == first
    assert (blob_count(store), store.blobs.mtime(first), store.stats()["objects"]) == before


def test_put_file_streams_into_the_backend(store, tmp_path):
    data = os.urandom(300_000)
    source = tmp_path / "input.bin"
    source.write_bytes(data)
    oid = store.put_file(source)
    assert oid == hash_bytes(data) and store.stat(oid).location == "file"
    assert store.get_bytes(oid, verify=True) == data
    assert store.put_file(io.BytesIO(b"tiny")) == hash_bytes(b"tiny")  # small: inline, no blob
    count = blob_count(store)
    assert store.put_file(source) == oid and blob_count(store) == count  # dedup on the streaming path too
    assert store.blobs.stray_temp_files() == []


def test_damaged_bytes_raise_corrupt_object_on_a_verified_read(store):
    data = os.urandom(100_000)
    oid = store.put_bytes(data)
    bad = bytearray(data)
    bad[1234] ^= 0xFF
    rot(store.blobs, oid, bytes(bad))  # bit rot
    with pytest.raises(CorruptObject) as info:
        store.get_bytes(oid, verify=True)
    assert info.value.oid == oid and str(oid) in str(info.value)
    report = store.fsck()
    assert not report.ok and oid in report.bad_objects


def test_chunked_objects_read_back_and_share_chunks(make_store):
    store = make_store(chunk_threshold=64 << 10, chunk_similar_only=False, chunk_size=16 << 10)
    base = os.urandom(400_000)
    edited = base[:200_000] + b"an insertion" + base[200_000:]
    first, second = store.put_bytes(base), store.put_bytes(edited)
    assert store.stat(first).location == store.stat(second).location == "chunked"
    assert store.get_bytes(first, verify=True) == base and store.get_bytes(second, verify=True) == edited
    report = dedup.analyse(store)
    assert report.logical_bytes > report.physical_bytes  # most chunks are shared
    assert store.fsck().ok


def test_a_similar_value_is_chunked_at_put_time_with_the_one_it_resembles(make_store):
    """The default policy (store/similar.py) over the backend: the stored value is re-chunked, blobs
    and index agree, gc keeps the chunks the live version reaches."""
    from cafstore.maintenance import gc

    store = make_store(chunk_threshold=256 << 10, chunk_size=128 << 10)
    base = os.urandom(2 << 20)
    first = store.put_bytes(base)
    assert store.stat(first).location == "file"
    second = store.put_bytes(base[: 1 << 20] + b"an insertion" + base[1 << 20 :])
    assert store.stat(first).location == store.stat(second).location == "chunked"
    assert not store.blobs.exists(first)  # the whole blob went once its chunks were indexed
    store.set_ref("keep", store.put_record({"v": second}))
    gc.collect(store, grace=0)
    assert not store.exists(first)
    assert store.get_bytes(second, verify=True) == base[: 1 << 20] + b"an insertion" + base[1 << 20 :]
    assert store.fsck().ok


def test_rechunking_a_whole_object(store):
    data = os.urandom(300_000)
    oid = store.put_bytes(data)
    assert store.stat(oid).location == "file"
    store.config = dataclasses.replace(store.config, chunk_size=16 << 10)  # small chunks for small data
    done = dedup.rechunk_all(store, [(oid, len(data))])
    assert [item[0] for item in done] == [oid]
    assert store.stat(oid).location == "chunked" and not store.blobs.exists(oid)
    assert store.get_bytes(oid, verify=True) == data
    assert store.fsck().ok


def test_a_store_refuses_a_per_process_backend_in_its_settings(tmp_path, backend_name, backend_options):
    from cafstore.store import Store, StoreConfig
    from cafstore.store.backends import backend_class

    config = StoreConfig(blob_backend=backend_name, blob_options=backend_options, durable=False)
    if backend_class(backend_name).shared:
        store = Store(tmp_path / "s", config)
        assert type(store.blobs) is backend_class(backend_name)
        assert type(Store(tmp_path / "s").blobs) is backend_class(backend_name)  # every later opener agrees
    else:
        with pytest.raises(StoreError, match="explicitly"):
            Store(tmp_path / "s", config)
