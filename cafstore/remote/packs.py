"""Packs: many small objects in one remote key, as git's packfiles, so a push of 10,000 small
artifacts is a few requests rather than 10,000.

A pack is ``packs/<id>.pack``: a magic line followed by the objects' bytes,
back to back; ``<id>`` is the blake3 of the whole pack, so a pack is
content-addressed like everything else on a remote. Its index,
``packs/<id>.idx``, lists each object's id, encoding, offset and size; it is
written after the pack, so an index names only a pack that is whole (a
pack without one is the leftover of an interrupted push, swept by
``gc --remote``). Objects at or above ``LOOSE_MIN`` travel on their own
instead (``objects/<id>``), streamed.
"""

from __future__ import annotations

import struct
from typing import Iterable, Iterator, NamedTuple

from cafstore.exception import RemoteError
from cafstore.store.objectid import ObjectId, hash_bytes

PACK_MAGIC = b"cafpack1\n"
INDEX_MAGIC = b"cafidx1\n"
_ENTRY = struct.Struct("<32sBQQ")  # digest, encoding, offset, size
LOOSE_MIN = 1 << 20  # objects this large or larger travel alone (objects/<id>)
PACK_TARGET = 16 << 20  # a pack is closed once it holds this much: several packs upload in parallel


class Entry(NamedTuple):
    oid: ObjectId
    encoding: int
    offset: int
    size: int


def pack_key(pack_id: str) -> str:
    return f"packs/{pack_id}.pack"


def index_key(pack_id: str) -> str:
    return f"packs/{pack_id}.idx"


def build(objects: Iterable[tuple[ObjectId, int, "bytes | memoryview"]]) -> tuple[str, bytes, bytes]:
    """(pack id, pack bytes, index bytes) holding ``objects`` (id, encoding, bytes)."""
    body = bytearray(PACK_MAGIC)
    entries = []
    for oid, encoding, data in objects:
        entries.append(_ENTRY.pack(oid.digest, encoding, len(body), len(data)))
        body += data
    pack = bytes(body)
    return str(hash_bytes(pack)), pack, INDEX_MAGIC + b"".join(entries)


def batches(sizes: Iterable[tuple[ObjectId, int]], target: int = 0) -> Iterator[list[ObjectId]]:
    """Split objects (id, size) into groups of about ``target`` bytes (default ``PACK_TARGET``), one pack each."""
    target = target or PACK_TARGET
    group: list[ObjectId] = []
    total = 0
    for oid, size in sizes:
        group.append(oid)
        total += size
        if total >= target:
            yield group
            group, total = [], 0
    if group:
        yield group


def read_index(pack_id: str, data: bytes) -> list[Entry]:
    """The entries of a pack's index; a RemoteError naming the pack if it is not one."""
    body = data[len(INDEX_MAGIC) :]
    if not data.startswith(INDEX_MAGIC) or len(body) % _ENTRY.size:
        raise RemoteError(
            f"The pack index {index_key(pack_id)} on the remote is damaged (not a cafstore pack index). Nothing was "
            "taken from it; `cafstore gc --remote NAME` cannot judge it either, so remove it by hand if no run needs it."
        )
    return [Entry(ObjectId(d), e, o, s) for d, e, o, s in _ENTRY.iter_unpack(body)]
