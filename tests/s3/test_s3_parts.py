"""Large objects moved in parts against a real server: a download in parallel ranged GETs hashed once
as the parts land, an upload sent from memory while the cache copy is written, and what the store
still verifies itself (a copy already in the cache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cafstore.exception import CorruptObject
from cafstore.store import Store, StoreConfig, hash_bytes

PART = 256 << 10


def _store(tmp_path: Path, s3_options: dict) -> Store:
    options = {**s3_options, "part_size": PART, "concurrency": 4, "multipart_threshold": 5 << 20}
    return Store(tmp_path / "store", StoreConfig(blob_backend="s3", blob_options=options, durable=False))


def test_a_cold_read_downloads_in_parts_hashed_once_and_maps_the_cached_file(tmp_path, s3_options):
    store = _store(tmp_path, s3_options)
    data = os.urandom(10 * PART + 12345)  # ten whole parts and a short one
    oid = store.put_bytes(data)
    store.blobs.cache.discard(oid)
    view, checked = store.blobs.open_checked(oid)
    assert checked and bytes(view) == data  # hashed on arrival: the store skips its own pass
    view, checked = store.blobs.open_checked(oid)
    assert not checked and bytes(view) == data  # from the cache: the store's read hashes it
    store.blobs.cache.discard(oid)
    assert store.get_bytes(oid) == data and bytes(store.open(oid)) == data
    assert not list(store.blobs.cache.directory.glob(".tmp-*"))  # no temp file left behind


def test_bad_bytes_in_any_part_fail_the_download_and_never_enter_the_cache(tmp_path, s3_options):
    store = _store(tmp_path, s3_options)
    good = os.urandom(4 * PART + 1000)
    oid = hash_bytes(good)
    bad = good[:-10] + bytes(b ^ 1 for b in good[-10:])  # damage in the last, short part only
    store.blobs.client.put_object(Bucket=store.blobs.bucket, Key=store.blobs.key(oid), Body=bad)
    with pytest.raises(CorruptObject, match=str(oid)):
        store.blobs.open(oid)
    assert not store.blobs.cache.directory.exists() or not any(store.blobs.cache.directory.iterdir())


def test_a_copy_damaged_in_the_cache_is_caught_by_the_store_read(tmp_path, s3_options):
    store = _store(tmp_path, s3_options)
    data = os.urandom(3 * PART)
    oid = store.put_bytes(data)
    assert bytes(store.open(oid)) == data  # downloaded (a single put leaves no local copy): now cached
    cached = store.blobs.cache.path(oid)
    cached.chmod(0o644)
    with open(cached, "r+b") as handle:
        handle.seek(PART)
        handle.write(b"\0" * 8)
    with pytest.raises(CorruptObject, match=str(oid)):
        store.open(oid)
    with pytest.raises(CorruptObject, match=str(oid)):
        store.get_bytes(oid)
    store.blobs.cache.discard(oid)
    assert store.get_bytes(oid) == data  # the bucket's copy is good: a fresh download heals the read


def test_a_large_put_from_pieces_sends_parts_and_keeps_the_same_bytes_locally(tmp_path, s3_options):
    store = _store(tmp_path, s3_options)
    data = os.urandom((6 << 20) + 7)
    pieces = [data[:100], data[100 : 3 << 20], data[3 << 20 :]]  # part edges fall inside pieces
    oid = hash_bytes(data)
    store.blobs.put_pieces(oid, pieces, len(data))
    head = store.blobs.client.head_object(Bucket=store.blobs.bucket, Key=store.blobs.key(oid))
    assert head["ContentLength"] == len(data) and head["ETag"].strip('"').endswith("-2")  # 5 MiB parts
    assert store.blobs.cache.path(oid).read_bytes() == data
    body = store.blobs.client.get_object(Bucket=store.blobs.bucket, Key=store.blobs.key(oid))["Body"].read()
    assert body == data
