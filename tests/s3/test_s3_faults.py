"""Faults with a real S3 server: the writer killed mid-multipart, the server killed mid-upload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cafstore.maintenance import gc
from cafstore.store import Store, StoreConfig

# A writer that stores 40 MiB in 5 MiB parts, one at a time (slow enough to be caught mid-upload).
WRITER = """
import os, sys, random
from cafstore.store import Store
store = Store(sys.argv[1])
data = random.Random(3).randbytes(40 << 20)
oid = store.put_bytes(data)
print("STORED", oid, flush=True)
"""
OPTIONS = {"multipart_threshold": 5 << 20, "part_size": 5 << 20, "concurrency": 1}


def _store(tmp_path: Path, s3_options: dict) -> Store:
    store = Store(tmp_path / "store", StoreConfig(blob_backend="s3", blob_options={**s3_options, **OPTIONS}))
    store.stats()
    return store


def _uploads(store: Store) -> list:
    listed = store.blobs.client.list_multipart_uploads(Bucket=store.blobs.bucket, Prefix=store.blobs.prefix + "/")
    return listed.get("Uploads", [])


def _start_writer(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "store")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_upload(store: Store, writer: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not _uploads(store):
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never started a multipart upload"
        time.sleep(0.05)


def test_a_writer_killed_mid_multipart_leaves_nothing_visible_and_gc_aborts_its_upload(tmp_path, s3_options):
    store = _store(tmp_path, s3_options)
    writer = _start_writer(tmp_path)
    _wait_for_upload(store, writer)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert list(store.blobs.iter_ids()) == []  # no partial object is ever visible
    assert store.fsck().ok
    report = gc.collect(store, grace=0)
    assert report.aborted_uploads == 1 and _uploads(store) == []


def test_the_server_killed_mid_upload_then_restarted_the_retry_completes(tmp_path, s3_server, s3_options):
    store = _store(tmp_path, s3_options)
    writer = _start_writer(tmp_path)
    _wait_for_upload(store, writer)
    s3_server.stop(signal.SIGKILL)
    s3_server.start()
    out, err = writer.communicate(timeout=180)
    assert writer.returncode == 0 and "STORED" in out, out + err
    oid = out.split()[1]
    reader = Store(tmp_path / "store")
    assert len(reader.get_bytes(oid, verify=True)) == 40 << 20 and reader.fsck().ok
