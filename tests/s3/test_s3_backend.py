"""The S3 backend's own behaviour against a real server: put-if-absent, the read cache,
multipart, error messages, gc's stale uploads and its race with a writer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cafstore.exception import CorruptObject, RemoteStoreError
from cafstore.maintenance import gc
from cafstore.store import Store, StoreConfig, hash_bytes
from cafstore.store.backends.s3 import S3BlobBackend


def _backend(tmp_path: Path, s3_options: dict, **extra) -> S3BlobBackend:
    return S3BlobBackend.from_settings(tmp_path / "store", None, {**s3_options, **extra})


def _raw_key(backend: S3BlobBackend, oid) -> dict:
    return backend.client.get_object(Bucket=backend.bucket, Key=backend.key(oid))


def test_storing_an_existing_object_sends_no_bytes(tmp_path, s3_options):
    backend = _backend(tmp_path, s3_options)
    data = os.urandom(50_000)
    oid = hash_bytes(data)
    backend.put_pieces(oid, [data], len(data))
    backend.client.put_object(Bucket=backend.bucket, Key=backend.key(oid), Body=b"marker")  # behind our back
    backend.put_pieces(oid, [data], len(data))
    assert _raw_key(backend, oid)["Body"].read() == b"marker"  # If-None-Match: * kept the object as it was


def test_large_objects_go_multipart_and_read_back_from_the_cache(tmp_path, s3_options):
    backend = _backend(tmp_path, s3_options, multipart_threshold=5 << 20, part_size=5 << 20)
    data = os.urandom(11 << 20)
    oid = hash_bytes(data)
    backend.put_pieces(oid, [data[:3], data[3:]], len(data))
    assert _raw_key(backend, oid)["ETag"].strip('"').endswith("-3")  # three parts
    assert backend.cache.path(oid).exists()  # the uploaded file became the cached copy
    backend.client.delete_object(Bucket=backend.bucket, Key=backend.key(oid))
    assert bytes(backend.open(oid)) == data  # a re-read costs no network


def test_the_cache_verifies_on_arrival_and_evicts_least_recently_used(tmp_path, s3_options):
    backend = _backend(tmp_path, s3_options, cache_bytes=250_000)
    blobs = [os.urandom(100_000) for _ in range(3)]
    oids = [hash_bytes(b) for b in blobs]
    for oid, data in zip(oids, blobs):
        backend.put_pieces(oid, [data], len(data))
    assert bytes(backend.open(oids[0])) == blobs[0]
    time.sleep(0.01)
    assert bytes(backend.open(oids[1])) == blobs[1]
    time.sleep(0.01)
    backend.open(oids[0])  # used again: now the most recent
    time.sleep(0.01)
    backend.open(oids[2])  # over the limit: the least recently used (1) goes
    cached = {p.name for p in backend.cache.directory.iterdir()}
    assert cached == {str(oids[0]), str(oids[2])}
    view = backend.open(oids[0])
    view[0] ^= 1  # a private view: the cached file is untouched
    assert bytes(backend.open(oids[0])) == blobs[0]
    # Bad bytes under a fresh key (an overwrite of an existing key may be served from the server's own
    # cache for a moment): the download fails verification and never enters the cache.
    good = os.urandom(100_000)
    oid = hash_bytes(good)
    backend.client.put_object(Bucket=backend.bucket, Key=backend.key(oid), Body=b"x" + good[1:])
    with pytest.raises(CorruptObject, match=str(oid)):
        backend.open(oid)
    assert not any(p.name == str(oid) for p in backend.cache.directory.iterdir())


@pytest.mark.parametrize("size", [100_000, 6 << 20], ids=["single-put", "multipart"])
def test_a_blob_gc_deletes_while_a_writer_reuses_it_is_stored_again(tmp_path, s3_options, size):
    """The window gc's mtime check cannot close: a writer's put finds the blob (sends nothing), gc
    deletes it, then the writer indexes it. The writer's confirm after its commit stores it again."""
    options = {**s3_options, "multipart_threshold": 5 << 20, "part_size": 5 << 20}
    store = Store(tmp_path / "store", StoreConfig(blob_backend="s3", blob_options=options, durable=False))
    store.stats()  # the store exists (an index with its id) before any blob
    data = os.urandom(size)
    oid = hash_bytes(data)
    store.blobs.put_pieces(oid, [data], len(data))  # an unindexed blob (a dead writer's, or one gc unindexed)
    real_put = store.blobs.put_pieces

    def put_then_gc_deletes(oid_, pieces, size):
        real_put(oid_, pieces, size)
        store.blobs.client.delete_object(Bucket=store.blobs.bucket, Key=store.blobs.key(oid_))  # gc, meanwhile

    store.blobs.put_pieces = put_then_gc_deletes  # type: ignore[method-assign]
    assert store.put_bytes(data) == oid
    store.blobs.put_pieces = real_put  # type: ignore[method-assign]
    assert store.blobs.exists(oid) and store.fsck().ok
    store.blobs.cache.discard(oid)
    assert store.get_bytes(oid) == data


def test_gc_aborts_stale_multipart_uploads_and_keeps_fresh_ones(tmp_path, s3_options):
    store = Store(tmp_path / "store", StoreConfig(blob_backend="s3", blob_options=s3_options, durable=False))
    client, bucket = store.blobs.client, store.blobs.bucket
    stale = client.create_multipart_upload(Bucket=bucket, Key=f"{s3_options['prefix']}/{'a' * 64}")
    time.sleep(3)
    fresh_at = time.time()
    client.create_multipart_upload(Bucket=bucket, Key=f"{s3_options['prefix']}/{'b' * 64}")
    # A grace between the two uploads' ages however long the machine took to get here (the server
    # records whole seconds): the stale one is 3 s older than the fresh one.
    report = gc.collect(store, grace=time.time() - fresh_at + 1.5)
    assert report.aborted_uploads == 1
    left = client.list_multipart_uploads(Bucket=bucket, Prefix=s3_options["prefix"] + "/").get("Uploads", [])
    assert [u["Key"][-64:] for u in left] == ["b" * 64] and stale["UploadId"] not in str(left)


def _init(tmp_path: Path, url: str, endpoint: str, env: dict) -> "subprocess.CompletedProcess[str]":
    environ = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "init", str(tmp_path / "s"), "--blobs", url, "--endpoint-url", endpoint],
        capture_output=True, text=True, env=environ, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    "case, message",
    [
        ("wrong secret", "denied access"),
        ("missing bucket", "does not exist"),
        ("no credentials", "no AWS credentials"),
        ("unreachable", "cannot be reached"),
    ],
)
def test_init_says_what_is_wrong_with_the_object_store(tmp_path, s3_server, case, message):
    url, endpoint, env = f"s3://{s3_server.bucket}/p", s3_server.endpoint, {}
    if case == "wrong secret":
        env = {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    elif case == "missing bucket":
        url = "s3://no-such-bucket/p"
    elif case == "no credentials":
        env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
               "AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    else:
        endpoint = "http://127.0.0.1:9"  # discard port: nothing listens
    made = _init(tmp_path, url, endpoint, env)
    assert made.returncode == 1 and message in made.stderr, made.stdout + made.stderr
    assert "Traceback" not in made.stderr
    assert not (tmp_path / "s" / "store.json").exists()  # nothing recorded for a store that cannot work


def test_a_write_with_a_wrong_secret_is_a_store_error(tmp_path, s3_options, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    backend = _backend(tmp_path, s3_options)
    data = os.urandom(40_000)
    with pytest.raises(RemoteStoreError, match="denied access"):
        backend.put_pieces(hash_bytes(data), [data], len(data))
