"""Chunk-level dedup: large values stored as content-defined chunks behind a chunk list.

Whole-object dedup only helps when bytes are identical. A 64 MiB array with
1% of it changed, or a byte string with 1 KiB inserted at the front, shares
almost everything with its previous version but hashes differently. Cutting
values at *content-defined* boundaries (FastCDC: a rolling gear hash decides
where chunks end, so an insertion moves only the boundaries next to it) makes
the unchanged regions come out as identical chunks, each stored once.

Layout: a chunked object keeps its usual entry in the ``objects`` table (the
blake3 of the whole content, so ids never depend on chunking) with location
``chunked``; its ``inline`` entry holds a chunk-list record
``{"kind": "chunks", "size": N, "chunks": [[ObjectId, length], ...]}``. Each
chunk is an ordinary raw object (a file, or inline if tiny), so existence
checks, fsck and gc treat chunks like any object: the ObjectIds in the chunk
list are the edges gc marks along.

Reads reassemble into one buffer (the only copy); the whole-object path can
hand out a zero-copy mmap instead, which is the price of sharing bytes (see
docs/maintenance.md for the measured figures).
"""

from __future__ import annotations

import mmap
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Optional

from cafstore.exception import CorruptObject, ObjectNotFound, StoreError
from cafstore.store import freshen, records, similar
from cafstore.store.index import ENCODING_RAW, LOCATION_CHUNKED, LOCATION_FILE, LOCATION_INLINE
from cafstore.store.objectid import ObjectId, hash_bytes, new_hasher

KIND = "chunks"
_WORKERS = 4  # chunk files are written (and fsynced) in parallel: fsync latency, not bandwidth, bounds them
_pool_lock = threading.Lock()
_pool: "tuple[int, ThreadPoolExecutor] | None" = None


def _executor() -> ThreadPoolExecutor:
    """A process-wide pool, recreated after fork (threads do not survive into a child)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(_WORKERS, thread_name_prefix="cafstore-chunks"))
        return _pool[1]


class Chunker:
    """FastCDC with the store's chunk size (average ``avg``, bounds avg/4 .. avg*4)."""

    _cache: dict = {}

    def __init__(self, avg: int) -> None:
        from pyfastcdc import FastCDC  # compiled (Cython); imported only when a large value is stored

        if FastCDC.__module__.startswith("pyfastcdc.py"):
            warnings.warn(
                "pyfastcdc is running its pure-Python fallback (no compiled wheel for this "
                "platform): chunking large values will be very slow.",
                RuntimeWarning,
                stacklevel=2,
            )
        self.avg = avg
        self.min = max(64, avg // 4)
        self._cdc = FastCDC(avg, min_size=self.min, max_size=avg * 4)

    @classmethod
    def get(cls, avg: int) -> "Chunker":
        chunker = cls._cache.get(avg)
        if chunker is None:
            chunker = cls._cache[avg] = cls(avg)
        return chunker

    def cut(self, pieces: Iterable) -> list:
        """Views whose concatenation is the concatenation of ``pieces``, cut at content boundaries.

        Small pieces (an artifact's header and pickle stream) are joined --
        copying a few KiB is cheaper than a tiny chunk per piece -- and large
        ones (out-of-band buffers) are cut in place, without a copy.
        """
        spans: list = []
        small: list = []

        def flush_small() -> None:
            if small:
                spans.extend(self._cut_one(memoryview(b"".join(bytes(p) for p in small))))
                small.clear()

        for piece in pieces:
            view = memoryview(piece).cast("B")
            if view.nbytes < self.min * 4:
                small.append(view)
                continue
            flush_small()
            spans.extend(self._cut_one(view))
        flush_small()
        return spans

    def _cut_one(self, view: memoryview) -> list:
        if view.nbytes <= self.min:
            return [view] if view.nbytes else []
        return [view[c.offset : c.offset + c.length] for c in self._cdc.cut_buf(view)]


def encode_list(size: int, chunk_ids: list, lengths: list) -> bytes:
    return records.encode_record(
        {"kind": KIND, "size": size, "chunks": [[cid, n] for cid, n in zip(chunk_ids, lengths)]}
    )


def decode_list(payload: "bytes | memoryview | None", oid: ObjectId) -> list:
    """[(chunk id, length), ...] of a chunked object; CorruptObject if the list is unreadable."""
    if payload is None:
        raise CorruptObject(f"Object {oid} is stored in chunks but its chunk list is missing.", oid)
    try:
        value = records.decode_record(payload)
        entries = [(ObjectId(cid), int(n)) for cid, n in value["chunks"]]
        size = int(value["size"])
    except (StoreError, ValueError, KeyError, TypeError) as exc:
        raise CorruptObject(f"Object {oid} has an unreadable chunk list ({exc}).", oid) from exc
    if sum(n for _, n in entries) != size:
        raise CorruptObject(f"Object {oid} has a chunk list whose lengths do not add up to {size}.", oid)
    return entries


# -- writing ---------------------------------------------------------------------------------
def put_chunked(
    store: Any,
    txn: Any,
    oid: ObjectId,
    pieces: list,
    size: int,
    encoding: int,
    convert: "list | None" = None,
    sketch: "list | None" = None,
) -> ObjectId:
    """Store the content ``pieces`` (whose blake3 is ``oid``) as chunks plus a chunk list.

    Order keeps invariant 1: chunk files are fsynced before the one write
    transaction that indexes the chunks and the object. Chunks already stored
    are freshened instead of written; a chunk that gc swept between our check
    and our commit is noticed in the commit transaction and written again.
    """
    spans = Chunker.get(store.config.chunk_size).cut(pieces)
    ids = list(_executor().map(hash_bytes, spans)) if len(spans) > 8 else [hash_bytes(s) for s in spans]
    payload = encode_list(size, ids, [s.nbytes for s in spans])
    unique: dict[ObjectId, memoryview] = {}
    for cid, span in zip(ids, spans):
        unique.setdefault(cid, span)
    written: set = set()
    index = store.index
    if txn is None:
        with index.read() as read_txn:
            missing = [cid for cid in unique if index.object_meta(read_txn, cid.digest) is None]
    else:
        missing = [cid for cid in unique if index.object_meta(txn, cid.digest) is None]
    for _attempt in range(5):
        _write_files(store, [(cid, unique[cid]) for cid in missing if cid not in written], written)
        if txn is not None:
            vanished = _commit(store, txn, oid, unique, written, payload, size, encoding, convert, sketch)
        else:
            vanished = store.index.retrying(  # re-read: a fork may have replaced the handle
                lambda t: _commit(store, t, oid, unique, written, payload, size, encoding, convert, sketch)
            )
        if not vanished:
            return oid
        written.difference_update(vanished)  # their files may be gone too: write them again
        missing = vanished
    raise StoreError(f"Could not store object {oid.short}: its chunks kept disappearing under a concurrent gc.")


def _write_files(store: Any, todo: list, written: set) -> None:
    large = [(cid, span) for cid, span in todo if span.nbytes > store.config.inline_threshold]
    _all(lambda item: store.blobs.put_pieces(item[0], [item[1]], item[1].nbytes), large)
    written.update(cid for cid, _ in todo)


def _all(function: Any, items: list) -> None:
    """``function`` over ``items`` in the pool; waits for every call (none still running when
    this raises: a failed put must not leave another thread's temp file behind), then raises the first error."""
    if len(items) <= 1:
        for item in items:
            function(item)
        return
    futures = [_executor().submit(function, item) for item in items]
    errors = [f.exception() for f in futures]  # exception() waits for each one
    for error in errors:
        if error is not None:
            raise error


def _commit(
    store: Any,
    txn: Any,
    oid: ObjectId,
    unique: dict,
    written: set,
    payload: bytes,
    size: int,
    encoding: int,
    convert: "list | None" = None,
    sketch: "list | None" = None,
) -> list:
    """Index chunks and the object in ``txn``; returns chunk ids that vanished (nothing written then).

    ``convert``: re-chunking an object stored whole; the bytes of new chunks are appended if it committed.
    """
    index = store.index
    now = time.time()
    present = {cid: index.object_meta(txn, cid.digest) for cid in unique}
    vanished = [cid for cid, meta in present.items() if meta is None and cid not in written]
    if vanished:
        return vanished
    existing = index.object_meta(txn, oid.digest)
    if convert is None and existing is not None:
        return []  # another writer stored the same object meanwhile: its chunks are indexed
    if convert is not None and (existing is None or existing[0] != LOCATION_FILE):
        return []  # swept or already converted meanwhile: leave it be
    for cid, meta in present.items():
        span = unique[cid]
        if meta is not None:
            if now - meta[3] > store.config.freshen_after:
                freshen.freshen(index, txn, cid, now, store.config.freshen_after)
        elif span.nbytes <= store.config.inline_threshold:
            index.put_inline_bytes(txn, cid.digest, bytes(span))
            index.put_meta(txn, cid.digest, (LOCATION_INLINE, ENCODING_RAW, span.nbytes, now))
        else:
            index.put_meta(txn, cid.digest, (LOCATION_FILE, ENCODING_RAW, span.nbytes, now))
    index.put_inline_bytes(txn, oid.digest, payload)
    created = existing[3] if convert is not None else now  # conversion keeps gc's view of its age
    index.put_meta(txn, oid.digest, (LOCATION_CHUNKED, encoding, size, created))
    if sketch:
        similar.record(index, txn, sketch, oid)
    if convert is not None:
        convert.append(sum(unique[cid].nbytes for cid, meta in present.items() if meta is None))
    return []


def put_if_similar(store: Any, txn: Any, oid: ObjectId, pieces: list, size: int, encoding: int) -> "list | None":
    """Store a large new value in chunks if it resembles a stored one; None if it did.

    Otherwise returns the value's sketch, for the caller to index with the
    whole object (similar.py). A resembling value stored whole is re-chunked
    afterwards, so both share their common chunks from now on (not inside a
    caller's write transaction: LMDB allows one writer per thread; the next
    similar put converts it then). The conversion only saves space, so its
    failure (a concurrent gc took the old value, a damaged file) leaves the
    new value stored and is not raised.
    """
    sketch = similar.sketch(pieces, size, store.config.chunk_size)
    index = store.index
    if txn is not None:
        base = similar.find(index, txn, sketch)
    else:
        with index.read() as read_txn:
            base = similar.find(index, read_txn, sketch)
    if base is None and store.config.chunk_similar_only:
        return sketch
    put_chunked(store, txn, oid, pieces, size, encoding, sketch=sketch)
    if base is not None and txn is None:
        try:
            rechunk(store, base)
        except StoreError:
            pass  # only space is lost; `cafstore dedup` can convert it later
    return None


def put_file_if_similar(
    store: Any, oid: ObjectId, temp: "os.PathLike", size: int, encoding: int = ENCODING_RAW
) -> "list | None":
    """``put_if_similar`` for a finished temp file (``Store.put_file``), read through a map;
    the temp file is removed if the value was stored in chunks."""
    with open(temp, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        view = memoryview(mapped)
        try:
            sketch = put_if_similar(store, None, oid, [view], size, encoding)
        finally:
            view.release()
    finally:
        mapped.close()
    if sketch is None:
        os.unlink(temp)
    return sketch


def rechunk(store: Any, oid: ObjectId) -> Optional[int]:
    """Convert an object stored whole into chunks (``cafstore dedup``): bytes of new chunks, None if not.

    The whole file is removed after the index says ``chunked``; a reader that
    looked the object up just before finds the file gone and re-reads the
    index (``Store.open``), so it never fails.
    """
    index = store.index
    with index.read() as txn:
        meta = index.object_meta(txn, oid.digest)
    if meta is None or meta[0] != LOCATION_FILE:
        return None
    _, encoding, size, _ = meta
    converted: list = []
    with store.blobs.reading(oid) as view:
        if view.nbytes != size or hash_bytes(view) != oid:
            raise CorruptObject(
                f"Object {oid} is corrupt (its file no longer hashes to its id); "
                "it was not re-chunked. Run `cafstore fsck --repair`.",
                oid,
            )
        put_chunked(store, None, oid, [view], size, encoding, convert=converted)
    if not converted:
        return None
    store.blobs.delete(oid)
    return converted[0]


# -- reading ---------------------------------------------------------------------------------
def assemble(store: Any, oid: ObjectId, payload: "bytes | None", size: int, verify: bool = False) -> memoryview:
    """The object's bytes reassembled into one writable buffer (the only copy made)."""
    entries = decode_list(payload, oid)
    located = _locate(store, oid, entries)
    view = memoryview(_buffer(size))
    jobs, offset = [], 0
    for (cid, length), inline in zip(entries, located):
        jobs.append((cid, inline, view[offset : offset + length]))
        offset += length
    _all(lambda job: _fill(store, oid, *job), jobs if len(jobs) > 8 else [])
    if len(jobs) <= 8:
        for job in jobs:
            _fill(store, oid, *job)
    if verify and hash_bytes(view) != oid:
        raise CorruptObject(
            f"Object {oid} is corrupt: its reassembled chunks no longer hash to its id. "
            "Run `cafstore fsck` to list every run that uses it.",
            oid,
        )
    return view


def _buffer(size: int) -> "bytearray | mmap.mmap":
    """A private, writable buffer of ``size`` bytes with every page already faulted in.

    ``MAP_POPULATE`` maps and faults all pages in one call instead of one
    fault per page as the chunks land: measured 1.7x faster reassembly of a
    256 MiB object than a ``bytearray`` (benchmarks/dedup_bench.py). The map
    lives as long as the views handed out over it.
    """
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if size == 0 or not populate:
        return bytearray(size)
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | populate)


def _locate(store: Any, oid: ObjectId, entries: list) -> list:
    """Per chunk: its bytes if inline, else None (a file); one read transaction for all of them."""
    out = []
    index = store.index
    with index.read() as txn:
        for cid, length in entries:
            meta = index.object_meta(txn, cid.digest)
            if meta is None:
                raise CorruptObject(
                    f"Object {oid} is corrupt: its chunk {cid.short} is missing from the "
                    "store. Run `cafstore fsck` to list every run that uses it.",
                    oid,
                )
            if meta[2] != length:
                raise CorruptObject(
                    f"Object {oid} is corrupt: chunk {cid.short} has {meta[2]} bytes, its chunk list says {length}.",
                    oid,
                )
            out.append(index.inline_bytes(txn, cid.digest) if meta[0] == LOCATION_INLINE else None)
    return out


def _fill(store: Any, oid: ObjectId, cid: ObjectId, inline: "bytes | None", target: memoryview) -> None:
    if inline is not None:
        if len(inline) != target.nbytes:
            raise CorruptObject(f"Object {oid} is corrupt: its inline chunk {cid.short} is truncated.", oid)
        target[:] = inline
        return
    try:
        got = store.blobs.read_into(cid, target)
    except ObjectNotFound as exc:
        raise CorruptObject(
            f"Object {oid} is corrupt: the file of its chunk {cid.short} is missing. "
            "Run `cafstore fsck` to list every run that uses it.",
            oid,
        ) from exc
    if got != target.nbytes:
        raise CorruptObject(
            f"Object {oid} is corrupt: its chunk {cid.short} has {got} bytes on disk, {target.nbytes} expected.", oid
        )


def rehash(store: Any, oid: ObjectId, payload: "bytes | None", size: int) -> ObjectId:
    """blake3 of the reassembled content, streamed chunk by chunk (fsck): no whole-size buffer."""
    entries = decode_list(payload, oid)
    if sum(n for _, n in entries) != size:
        raise CorruptObject(f"Object {oid}: chunk list covers the wrong number of bytes.", oid)
    hasher = new_hasher(size)
    for (cid, length), inline in zip(entries, _locate(store, oid, entries)):
        buf = memoryview(bytearray(length))
        _fill(store, oid, cid, inline, buf)
        hasher.update(buf)
    return ObjectId(hasher.digest())


def chunk_ids(store: Any, oid: ObjectId) -> Optional[list]:
    """[(chunk id, length)] of a chunked object, or None if it is stored whole."""
    index = store.index
    with index.read() as txn:
        meta = index.object_meta(txn, oid.digest)
        if meta is None:
            raise ObjectNotFound(f"No object {oid} in the store at {store.path}.")
        if meta[0] != LOCATION_CHUNKED:
            return None
        payload = index.inline_bytes(txn, oid.digest)
    return decode_list(payload, oid)
