"""Artifact serialisation: pickle protocol 5 with out-of-band buffers.

The serialised form of a value is a list of *pieces* (header, pickle stream,
padding, raw buffers) that are hashed and written one after the other, never
joined: a 1 GiB NumPy array is hashed and written straight from its own
memory. Buffers start at 64-byte offsets so that, read back through mmap, the
arrays they become are aligned like freshly allocated ones.

Layout (all integers little-endian)::

    b"CAFA" | u8 version | u8 kind | u16 n_buffers | u64 stream_len | n x u64 buffer_len
    stream | (pad to 64) buffer 0 | (pad to 64) buffer 1 | ...

``kind`` 0 is a pickle stream; kind 1 is a top-level ``bytes`` value stored
raw (stream is the value itself), which spares large byte strings the copy
the pickler would make.
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any, Callable

from cafstore.exception import ArtifactLoadError, ArtifactSerializationError

MAGIC = b"CAFA"
VERSION = 1
KIND_PICKLE = 0
KIND_RAW_BYTES = 1
ALIGN = 64
_HEAD = struct.Struct("<4sBBHQ")
_RAW_BYTES_MIN = 64 * 1024


class Serialized:
    """A value's serialised form as pieces, with its total length."""

    __slots__ = ("pieces", "size")

    def __init__(self, pieces: list, size: int) -> None:
        self.pieces = pieces
        self.size = size

    def join(self) -> bytes:
        return b"".join(self.pieces)


def _pickle(value: Any, pickler_class: Callable) -> tuple[bytes, list[pickle.PickleBuffer]]:
    buffers: list[pickle.PickleBuffer] = []
    stream = io.BytesIO()
    pickler_class(stream, protocol=5, buffer_callback=buffers.append).dump(value)
    return stream.getvalue(), buffers


def _cloudpickler() -> Callable:
    import cloudpickle  # imported only when plain pickle is not enough: it costs ~20 ms

    return cloudpickle.CloudPickler


def dumps(value: Any, name: str = "") -> Serialized:
    """Serialise ``value``; ``name`` only improves the error message."""
    if type(value) is bytes and len(value) >= _RAW_BYTES_MIN:
        return _frame(KIND_RAW_BYTES, value, [])
    try:
        stream, buffers = _pickle(value, pickle.Pickler)
        # A class or function defined in the flow file is pickled by reference to
        # ``__main__``, which no other process can resolve: store it by value.
        if b"__main__" in stream:
            stream, buffers = _pickle(value, _cloudpickler())
    except Exception as plain_exc:  # pickle raises many types: PicklingError, TypeError, AttributeError...
        try:
            stream, buffers = _pickle(value, _cloudpickler())
        except Exception as exc:
            what = f"artifact {name!r}" if name else "this value"
            raise ArtifactSerializationError(
                f"Cannot store {what}: a {type(value).__module__}.{type(value).__qualname__} cannot be "
                f"pickled ({exc.__class__.__name__}: {exc}; plain pickle said: {plain_exc}). Artifacts must be "
                "picklable: keep open files, sockets, locks and generators in local variables, or assign a "
                "picklable summary of them to self instead."
            ) from exc
    # raw() needs a contiguous buffer; NumPy sends only contiguous arrays out of band.
    return _frame(KIND_PICKLE, stream, [buf.raw() for buf in buffers])


def _frame(kind: int, stream: "bytes", views: list[memoryview]) -> Serialized:
    lengths = [v.nbytes for v in views]
    head = _HEAD.pack(MAGIC, VERSION, kind, len(views), len(stream)) + struct.pack(f"<{len(views)}Q", *lengths)
    pieces: list = [head, stream]
    offset = len(head) + len(stream)
    for view in views:
        pad = -offset % ALIGN
        if pad:
            pieces.append(b"\0" * pad)
            offset += pad
        pieces.append(view)
        offset += view.nbytes
    return Serialized(pieces, offset)


def loads(data: "bytes | memoryview", name: str = "") -> Any:
    """Rebuild a value from its serialised form.

    Buffers are handed to pickle as slices of ``data`` with no copy: when
    ``data`` is a writable copy-on-write mmap, a NumPy array loads instantly,
    is writable, and pages in only what the step touches.
    """
    view = memoryview(data)
    if view.nbytes < _HEAD.size:
        raise ArtifactLoadError(f"Artifact {name!r} is truncated ({view.nbytes} bytes).")
    magic, version, kind, n_buffers, stream_len = _HEAD.unpack_from(view, 0)
    if magic != MAGIC or version != VERSION:
        raise ArtifactLoadError(f"Artifact {name!r} is not in a format this cafstore can read.")
    lengths = struct.unpack_from(f"<{n_buffers}Q", view, _HEAD.size)
    offset = _HEAD.size + 8 * n_buffers
    stream = view[offset : offset + stream_len]
    if kind == KIND_RAW_BYTES:
        return bytes(stream)
    offset += stream_len
    buffers = []
    for length in lengths:
        offset += -offset % ALIGN
        buffers.append(view[offset : offset + length])
        offset += length
    try:
        return pickle.loads(stream, buffers=buffers)
    except Exception as exc:
        raise ArtifactLoadError(
            f"Artifact {name or '(unnamed)'} cannot be loaded here: {exc.__class__.__name__}: {exc}. "
            "It was pickled in an environment with other packages or versions; install the package "
            "that defines its type, in a compatible version."
        ) from exc
