"""The contract every blob backend must honour.

Today only the local directory backend exists; a remote backend (an
S3-compatible object store) joins by adding a factory to BACKENDS and must
pass the same tests unchanged.
"""

from __future__ import annotations

import pytest

from cafstore.exception import ObjectNotFound
from cafstore.store import LocalBlobBackend, hash_bytes


def _local(tmp_path):
    return LocalBlobBackend(tmp_path / "blobs")


BACKENDS = {"local": _local}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path):
    return BACKENDS[request.param](tmp_path)


def test_put_pieces_then_read_back(backend):
    pieces = [b"head", memoryview(b"-middle-"), bytearray(b"tail")]
    data = b"".join(bytes(p) for p in pieces)
    oid = hash_bytes(data)
    backend.put_pieces(oid, pieces, len(data))
    assert backend.exists(oid)
    assert backend.size(oid) == len(data)
    assert backend.get(oid) == data
    assert bytes(backend.open(oid)) == data
    assert oid in set(backend.iter_ids())


def test_open_is_private_copy_on_write(backend):
    data = b"x" * 10000
    oid = hash_bytes(data)
    backend.put_pieces(oid, [data], len(data))
    view = backend.open(oid)
    view[0:1] = b"y"  # a loaded array may be modified by its step...
    assert backend.get(oid) == data  # ...without touching the stored blob


def test_put_file_consumes_the_temp_file(backend):
    data = b"streamed" * 1000
    oid = hash_bytes(data)
    temp = backend.new_temp_path()
    temp.write_bytes(data)
    backend.put_file(oid, temp)
    assert not temp.exists()
    assert backend.get(oid) == data


def test_rewrite_is_idempotent(backend):
    data = b"same bytes"
    oid = hash_bytes(data)
    backend.put_pieces(oid, [data], len(data))
    backend.put_pieces(oid, [data], len(data))
    assert list(backend.iter_ids()).count(oid) == 1


def test_missing_blob(backend):
    oid = hash_bytes(b"never stored")
    assert not backend.exists(oid)
    assert backend.size(oid) is None
    with pytest.raises(ObjectNotFound):
        backend.get(oid)
    with pytest.raises(ObjectNotFound):
        backend.open(oid)


def test_delete_is_idempotent(backend):
    data = b"to delete"
    oid = hash_bytes(data)
    backend.put_pieces(oid, [data], len(data))
    backend.delete(oid)
    backend.delete(oid)
    assert not backend.exists(oid)
    assert oid not in set(backend.iter_ids())


def test_empty_blob(backend):
    oid = hash_bytes(b"")
    backend.put_pieces(oid, [], 0)
    assert backend.get(oid) == b""
    assert bytes(backend.open(oid)) == b""
