"""Object ids: the blake3 digest that names every object in the store."""

from __future__ import annotations

import os
import re

import blake3 as _blake3

from cafstore.exception import StoreError

HEX_LENGTH = 64
DIGEST_SIZE = 32
# Above this many bytes, hashing uses every core: blake3 parallelises within one input.
_PARALLEL_HASH_BYTES = 1 << 20
# An explicit thread count, never ``blake3.AUTO``: AUTO uses one process-wide pool whose threads
# do not survive fork(), so a forked task hashing after its parent did would wait forever.
# An explicit count gives each hasher a pool of its own (measured: the same speed).
_THREADS = os.cpu_count() or 1
_HEX_ID = re.compile(f"[0-9a-f]{{{HEX_LENGTH}}}")  # one C-level match: ids are parsed by the thousand in listings


class ObjectId(str):
    """The 64-character hex blake3 digest of an object's bytes.

    A ``str`` subclass so that ids print, compare and serve as dict keys like
    the hex strings users copy from logs, while records can still tell an id
    from an ordinary string (see ``records.py``).
    """

    __slots__ = ()

    def __new__(cls, value: "str | bytes") -> "ObjectId":
        if isinstance(value, ObjectId):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            if len(raw) != DIGEST_SIZE:
                raise StoreError(f"An object id digest has {DIGEST_SIZE} bytes, got {len(raw)}.")
            return super().__new__(cls, raw.hex())
        text = str(value).strip().lower()
        if _HEX_ID.fullmatch(text) is None:
            raise StoreError(
                f"{value!r} is not an object id: ids are {HEX_LENGTH} hex characters "
                "(the blake3 digest of the object's bytes)."
            )
        return super().__new__(cls, text)

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self)

    @property
    def short(self) -> str:
        return self[:12]

    def __repr__(self) -> str:
        return f"ObjectId('{self}')"


def new_hasher(size_hint: int = 0) -> "_blake3.blake3":
    if size_hint >= _PARALLEL_HASH_BYTES:
        return _blake3.blake3(max_threads=_THREADS)
    return _blake3.blake3()


def hash_bytes(data: "bytes | memoryview") -> ObjectId:
    """Id of ``data``: what ``put_bytes(data)`` would return."""
    return ObjectId(new_hasher(len(data)).update(data).digest())


def hash_pieces(pieces: "list[memoryview | bytes]", total: int) -> ObjectId:
    """Id of the concatenation of ``pieces``, without concatenating them."""
    hasher = new_hasher(total)
    for piece in pieces:
        hasher.update(piece)
    return ObjectId(hasher.digest())
