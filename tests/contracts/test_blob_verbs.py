"""The contract every blob backend must honour, verb by verb, over every registered backend.

A new backend (an S3-compatible object store) joins by its entry in
``cafstore.store.backends.BACKENDS``: conftest.py parametrises these tests
from that registry, and they must pass unchanged. The optional capabilities
(``reading``, ``read_into``, ``remove_if_older``, ``quarantine``, temp files)
are tested here too, whether a backend keeps the generic default or overrides it.
"""

from __future__ import annotations

import os
import time

import pytest
from contract_helpers import build_backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cafstore.exception import ObjectNotFound
from cafstore.store import hash_bytes
from cafstore.store.backends import BACKENDS, BlobBackend, backend_class


def put(backend: BlobBackend, data: bytes):
    oid = hash_bytes(data)
    backend.put_pieces(oid, [data], len(data))
    return oid


def test_the_registry_holds_blob_backends():
    assert {"local", "memory"} <= set(BACKENDS)
    assert all(issubclass(backend_class(name), BlobBackend) for name in BACKENDS)


def test_put_pieces_then_read_back(blobs):
    pieces = [b"head", memoryview(b"-middle-"), bytearray(b"tail")]
    data = b"".join(bytes(p) for p in pieces)
    oid = hash_bytes(data)
    blobs.put_pieces(oid, pieces, len(data))
    assert blobs.exists(oid)
    assert blobs.size(oid) == len(data)
    assert blobs.get(oid) == data
    assert bytes(blobs.open(oid)) == data
    assert oid in set(blobs.iter_ids())
    assert abs(blobs.mtime(oid) - time.time()) < 60


def test_open_is_private_copy_on_write(blobs):
    data = b"x" * 10000
    oid = put(blobs, data)
    view = blobs.open(oid)
    view[0:1] = b"y"  # a loaded array may be modified by its step...
    assert blobs.get(oid) == data  # ...without touching the stored blob
    assert bytes(blobs.open(oid)) == data


def test_put_file_consumes_the_temp_file(blobs):
    data = b"streamed" * 1000
    oid = hash_bytes(data)
    temp = blobs.new_temp_path()
    temp.write_bytes(data)
    blobs.put_file(oid, temp)
    assert not temp.exists()
    assert blobs.get(oid) == data
    assert blobs.stray_temp_files() == []


def test_rewrite_is_idempotent(blobs):
    data = b"same bytes"
    oid = put(blobs, data)
    put(blobs, data)
    assert list(blobs.iter_ids()).count(oid) == 1
    assert blobs.get(oid) == data


def test_missing_blob(blobs):
    oid = hash_bytes(b"never stored")
    assert not blobs.exists(oid)
    assert blobs.size(oid) is None
    assert blobs.mtime(oid) == 0.0
    with pytest.raises(ObjectNotFound):
        blobs.get(oid)
    with pytest.raises(ObjectNotFound):
        blobs.open(oid)
    with pytest.raises(ObjectNotFound):
        blobs.read_into(oid, memoryview(bytearray(3)))
    with pytest.raises(ObjectNotFound):
        with blobs.reading(oid):
            pass


def test_delete_is_idempotent(blobs):
    oid = put(blobs, b"to delete")
    blobs.delete(oid)
    blobs.delete(oid)
    assert not blobs.exists(oid)
    assert oid not in set(blobs.iter_ids())


def test_empty_blob(blobs):
    oid = hash_bytes(b"")
    blobs.put_pieces(oid, [], 0)
    assert blobs.get(oid) == b""
    assert bytes(blobs.open(oid)) == b""


# -- optional capabilities ---------------------------------------------------------------------
def test_reading_gives_the_bytes_for_the_block(blobs):
    data = os.urandom(5000)
    oid = put(blobs, data)
    with blobs.reading(oid) as view:
        assert bytes(view) == data and view.nbytes == len(data)


def test_read_into_fills_an_exact_target_and_reports_a_size_mismatch(blobs):
    data = os.urandom(3000)
    oid = put(blobs, data)
    target = memoryview(bytearray(len(data)))
    assert blobs.read_into(oid, target) == len(data) and bytes(target) == data
    short = memoryview(bytearray(10))
    assert blobs.read_into(oid, short) == len(data)  # the caller sees the mismatch: corruption
    assert bytes(short) == bytes(10)


def test_remove_if_older_spares_a_blob_written_after_the_cutoff(blobs):
    oid = put(blobs, b"young" * 100)
    assert blobs.remove_if_older(oid, cutoff=time.time() - 3600) == 0
    assert blobs.exists(oid)
    assert blobs.remove_if_older(oid, cutoff=time.time() + 1) == 500
    assert not blobs.exists(oid)
    assert blobs.remove_if_older(oid, cutoff=time.time() + 1) == 0  # absent: nothing to free


def test_quarantine_moves_the_bytes_out(blobs, tmp_path):
    data = b"suspect" * 50
    oid = put(blobs, data)
    destination = tmp_path / "quarantined"
    assert blobs.quarantine(oid, destination) is True
    assert destination.read_bytes() == data and not blobs.exists(oid)
    assert blobs.quarantine(oid, tmp_path / "again") is False


def test_stray_temp_files_are_old_unconsumed_temp_files(blobs):
    temp = blobs.new_temp_path()
    temp.write_bytes(b"half a blob")
    assert blobs.stray_temp_files(older_than=3600) == []  # a live writer's file is protected
    old = time.time() - 7200
    os.utime(temp, (old, old))
    assert blobs.stray_temp_files(older_than=3600) == [temp]


# -- a property: any sequence of verbs agrees with a dict ----------------------------------------
PAYLOADS = st.binary(max_size=2000)
OPS = st.lists(st.tuples(st.sampled_from(["put", "delete", "get", "put_file"]), st.integers(0, 7)), max_size=40)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(PAYLOADS, min_size=8, max_size=8), ops=OPS)
def test_any_sequence_of_verbs_matches_a_dict(backend_name, backend_options, tmp_path_factory, payloads, ops):
    root = tmp_path_factory.mktemp("model")
    options = dict(backend_options)
    if "prefix" in options:
        options["prefix"] += f"/{root.name}"  # each example starts empty
    backend = build_backend(backend_name, root, options=options)
    model: dict = {}
    for op, i in ops:
        data = payloads[i]
        oid = hash_bytes(data)
        if op == "put":
            backend.put_pieces(oid, [data[:7], data[7:]], len(data))
            model[oid] = data
        elif op == "put_file":
            temp = backend.new_temp_path()
            temp.write_bytes(data)
            backend.put_file(oid, temp)
            model[oid] = data
        elif op == "delete":
            backend.delete(oid)
            model.pop(oid, None)
        else:
            if oid in model:
                assert backend.get(oid) == model[oid] == bytes(backend.open(oid))
            else:
                with pytest.raises(ObjectNotFound):
                    backend.get(oid)
        assert backend.exists(oid) == (oid in model)
        assert backend.size(oid) == (len(model[oid]) if oid in model else None)
    assert sorted(backend.iter_ids()) == sorted(model)
    assert backend.stray_temp_files() == []
