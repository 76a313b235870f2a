"""The store: objects by content, immutable records, and refs.

Like Git, cafstore separates what never changes (objects and records, named
by the blake3 hash of their bytes) from the little that does (refs: runs,
tags, namespaces, pins). The LMDB index is the single source of truth for
what exists; large objects' bytes live in a blob backend (``backends/``),
chosen by the store's settings (``settings.py``). Ref names, scans and
``Transaction`` are in ``refs.py``; this module writes and reads objects.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional, Union

from cafstore.exception import CorruptObject, ObjectNotFound, StoreError
from cafstore.store import freshen, records, serialize
from cafstore.store.backends import BlobBackend, open_backend
from cafstore.store.config import StoreConfig
from cafstore.store.durable import fsync_path
from cafstore.store.index import (
    ENCODING_ARTIFACT,
    ENCODING_NAMES,
    ENCODING_RAW,
    ENCODING_RECORD,
    LOCATION_CHUNKED,
    LOCATION_FILE,
    LOCATION_INLINE,
    LOCATION_NAMES,
    Index,
    open_index,
    unpack_meta,
)
from cafstore.store.objectid import ObjectId, hash_bytes, hash_pieces, new_hasher
from cafstore.store.refs import RefVerbs


class ObjectStat:
    """What the index knows about one object."""

    __slots__ = ("oid", "size", "location", "encoding", "created")

    def __init__(self, oid: ObjectId, size: int, location: str, encoding: str, created: float) -> None:
        self.oid, self.size, self.location, self.encoding, self.created = oid, size, location, encoding, created

    def __repr__(self) -> str:
        return f"ObjectStat({self.oid.short}, size={self.size}, {self.location}, {self.encoding})"


class Store(RefVerbs):
    """A content-addressed store on disk (see docs/store.md for the format).

    ``Store(path)`` opens or creates the store at ``path``; ``Store()`` finds
    one the way Git finds a repository (``Store.discover``). The blob backend
    is the one the store's settings name (local unless it was created with
    another ``StoreConfig.blob_backend``); ``blobs=`` overrides it for this
    object only, which is the one way to use a per-process backend such as
    ``MemoryBlobBackend`` (other processes opening the path never see it).
    """

    def __init__(
        self,
        path: "Union[str, os.PathLike, None]" = None,
        config: Optional[StoreConfig] = None,
        blobs: Optional[BlobBackend] = None,
    ) -> None:
        from cafstore.store.discover import discover_path

        # Absolute: blobs and index must not move if the process changes directory.
        self.path = (Path(path) if path is not None else discover_path()).absolute()
        self.config = config or StoreConfig.from_env()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the store directory {self.path}: {exc.strerror}.") from exc
        if blobs is None:
            from cafstore.store.settings import backend_choice

            name, options = backend_choice(self.path, self.config)
            blobs = open_backend(self.path, name, options, self.config)
        self.blobs = blobs
        self._index_handle: Optional[Index] = None
        self._index_pid = -1

    @classmethod
    def discover(cls, start: "Union[str, os.PathLike, None]" = None) -> "Store":
        from cafstore.store.discover import discover_path

        return cls(discover_path(start))

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def index(self) -> Index:
        """This process's handle on the LMDB index: transactions and object-table verbs.

        The facade the store's helper modules and maintenance (gc, repair,
        dedup, fsck) work through (see index.py). Re-opened after a fork: an
        LMDB handle must never cross into a child.
        """
        if self._index_handle is None or self._index_pid != os.getpid() or self._index_handle.closed:
            from cafstore.store import identity

            handle = open_index(self.path / "index", self.config)
            if not handle.verified:
                identity.verify(self, handle)  # IndexLost unless it is this store's current index
                handle.verified = True
            self._index_handle = handle
            self._index_pid = os.getpid()
        return self._index_handle

    def unverified_index(self) -> Index:
        """The index without the identity check of ``index``: only for fsck and the rebuild,
        which must look at an index that ``identity.verify`` rejects."""
        return open_index(self.path / "index", self.config)

    def check_writable(self) -> None:
        """Raise ``StoreReadOnly`` if this process may only read the store (a read-only mount, or
        files it may not write): for work that touches files before its first index write."""
        if self.index.readonly:
            from cafstore.store.indexfaults import read_only

            raise read_only(self.path / "index", "its files cannot be written by this process")

    def close(self) -> None:
        """Close this process's handle on this store's index (reopened on next use).

        Other Store objects on the same path share the handle; they reopen it too.
        Stores on other paths are not affected.
        """
        from cafstore.store.index import close_index

        self._index_handle = None
        close_index(self.path / "index")

    # -- objects -----------------------------------------------------------
    def put_inline(self, txn: Any, data: bytes, encoding: int) -> ObjectId:
        """Store small ``data`` in the index inside the write transaction ``txn`` (from
        ``index.write()``/``retrying``); an existing object is reused (and freshened, for gc)."""
        oid = hash_bytes(data)
        if not freshen.known(self, txn, oid):  # a hit on an old object refreshes it for gc
            index = self.index
            index.put_inline_bytes(txn, oid.digest, data)
            index.put_meta(txn, oid.digest, (LOCATION_INLINE, encoding, len(data), time.time()))
        return oid

    def put_encoded(self, txn: Any, pieces: list, size: int, encoding: int) -> ObjectId:
        """Store the object whose bytes are the concatenation of ``pieces`` (``size`` in all).

        The one path every put takes: inline if small, else a blob (or chunks)
        made durable before the index refers to it. ``txn``: a write
        transaction to index it in, or None for a short one of its own.
        ``encoding``: one of index.py's ENCODING_* values.
        """
        if size <= self.config.inline_threshold:
            data = pieces[0] if len(pieces) == 1 and isinstance(pieces[0], bytes) else b"".join(pieces)
            if txn is not None:
                return self.put_inline(txn, data, encoding)
            return self.index.retrying(lambda t: self.put_inline(t, data, encoding))
        oid = hash_pieces(pieces, size)
        if freshen.known(self, txn, oid):
            return oid  # deduplicated: hashing was the whole cost
        sketch = None
        if self.config.chunk_threshold and size >= self.config.chunk_threshold:
            from cafstore.store import chunks

            sketch = chunks.put_if_similar(self, txn, oid, pieces, size, encoding)
            if sketch is None:
                return oid  # it resembled a stored value: stored in chunks
        self.blobs.put_pieces(oid, pieces, size)  # durable before the index refers to it
        self._index_file(txn, oid, size, encoding, sketch)
        if txn is None:
            self.blobs.confirm(oid)  # (inside a caller's write transaction no gc could interleave)
        return oid

    def _index_file(self, txn: Any, oid: ObjectId, size: int, encoding: int, sketch: "list | None") -> None:
        """Index a blob just made durable, with its similarity sketch (if it was taken)."""
        meta = (LOCATION_FILE, encoding, size, time.time())

        def body(t: Any) -> None:
            if self.index.put_meta(t, oid.digest, meta, overwrite=False) and sketch:
                from cafstore.store import similar

                similar.record(self.index, t, sketch, oid)

        if txn is not None:
            body(txn)
        else:
            self.index.retrying(body)

    def put_bytes(self, data: "bytes | bytearray | memoryview") -> ObjectId:
        """Store ``data``; returns its blake3 id. Storing existing bytes writes nothing."""
        view = memoryview(data).cast("B")
        return self.put_encoded(
            None, [view if view.nbytes > self.config.inline_threshold else bytes(view)], view.nbytes, ENCODING_RAW
        )

    def put_file(self, source: "Union[str, os.PathLike, BinaryIO]") -> ObjectId:
        """Store a file's content by streaming it: memory use stays flat for any size."""
        handle = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source
        temp = self.blobs.new_temp_path()
        try:
            try:
                hasher = new_hasher(1 << 30)
                size = 0
                head = bytearray()
                with open(temp, "wb") as out:
                    while True:
                        chunk = handle.read(self.config.copy_chunk)
                        if not chunk:
                            break
                        hasher.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                        if size <= self.config.inline_threshold:
                            head += chunk
            finally:
                if handle is not source:
                    handle.close()
            oid = ObjectId(hasher.digest())
            self._adopt(temp, oid, size, ENCODING_RAW, bytes(head) if size <= self.config.inline_threshold else None)
            return oid
        except BaseException:
            # A failed read or write leaves no temp file behind (a consumed one is already gone).
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def put_hashed_file(self, temp: "os.PathLike | str", oid: "ObjectId | str", encoding: int) -> ObjectId:
        """Store the temp file ``temp`` (from ``blobs.new_temp_path()``, consumed) whose blake3 the caller
        has just computed as ``oid``: a pull verifies each object on arrival and must not hash twice."""
        temp, oid = Path(temp), ObjectId(oid)
        try:
            size = temp.stat().st_size
            head = temp.read_bytes() if size <= self.config.inline_threshold else None
            self._adopt(temp, oid, size, encoding, head)
            return oid
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def _adopt(self, temp: Path, oid: ObjectId, size: int, encoding: int, head: Optional[bytes]) -> None:
        """Index the finished temp file ``temp`` as ``oid``: inline, deduplicated, chunked or a blob."""
        if head is not None:
            os.unlink(temp)
            self.index.retrying(lambda t: self.put_inline(t, head, encoding))
            return
        if freshen.known(self, None, oid):
            os.unlink(temp)  # deduplicated: never fsynced, the page cache just drops it
            return
        sketch = None
        if self.config.chunk_threshold and size >= self.config.chunk_threshold:
            from cafstore.store import chunks

            sketch = chunks.put_file_if_similar(self, oid, temp, size, encoding)  # None: stored in chunks
            if sketch is None:
                return
        if self.config.durable:
            fsync_path(temp)
        self.blobs.put_file(oid, temp)
        self._index_file(None, oid, size, encoding, sketch)
        self.blobs.confirm(oid)

    def exists(self, oid: "ObjectId | str") -> bool:
        oid = ObjectId(oid)
        index = self.index
        with index.read() as txn:
            return index.object_meta(txn, oid.digest) is not None

    def reuse(self, oid: "ObjectId | str") -> bool:
        """Whether ``oid`` is stored, protecting it from a concurrent gc if it is.

        For a caller about to reference an object it did not write (a cached
        task record): like a dedup hit, an old object -- and everything it
        reaches -- gets a new created time, so gc's grace period covers it
        until the caller's ref points at it (see freshen.py).
        """
        return freshen.known(self, None, ObjectId(oid))

    def stat(self, oid: "ObjectId | str") -> ObjectStat:
        oid = ObjectId(oid)
        index = self.index
        with index.read() as txn:
            meta = index.object_meta(txn, oid.digest)
        if meta is None:
            raise ObjectNotFound(f"No object {oid} in the store at {self.path}.")
        location, encoding, size, created = meta
        return ObjectStat(oid, size, LOCATION_NAMES.get(location, "?"), ENCODING_NAMES.get(encoding, "?"), created)

    def open(self, oid: "ObjectId | str", verify: bool = True) -> memoryview:
        """The object's bytes without a copy: an mmap (copy-on-write) for files.

        Verified by default: the view handed out is the view hashed, so a
        corrupt object raises ``CorruptObject`` instead of being returned as
        data. ``verify=False`` skips the hash of large objects (small ones are
        always checked); it is for trusted hot paths that re-read bytes they
        have just verified -- the hash costs about as much as one pass over
        the bytes (docs/performance.md, "Verified reads").
        """
        return self._open(ObjectId(oid), verify)[0]

    def _open(self, oid: ObjectId, verify: bool) -> tuple[memoryview, bool]:
        """``open``, and whether the bytes were hashed to ``oid`` (here, or by the backend on arrival)."""
        index = self.index
        with index.read() as txn:
            meta = index.object_meta(txn, oid.digest)
            if meta is None:
                raise ObjectNotFound(f"No object {oid} in the store at {self.path}.")
            if meta[0] == LOCATION_INLINE:
                data = index.inline_bytes(txn, oid.digest)
                if data is None:
                    raise CorruptObject(f"Object {oid} is indexed as inline but its bytes are missing.", oid)
                # Small objects are always verified: hashing a few KiB costs microseconds.
                self._verify(oid, data)
                return memoryview(bytearray(data)), True
            if meta[0] == LOCATION_CHUNKED:
                chunk_list = index.inline_bytes(txn, oid.digest)
        if meta[0] == LOCATION_CHUNKED:
            from cafstore.store import chunks

            # Reassembled into a private buffer, which is what is hashed: nothing can change it after.
            return chunks.assemble(self, oid, chunk_list, meta[2], verify=verify), verify
        try:
            view, checked = self.blobs.open_checked(oid)
        except ObjectNotFound:
            if self.stat(oid).location != "chunked":  # `cafstore dedup` re-chunked it meanwhile?
                raise
            return self._open(oid, verify)
        if checked:  # a remote blob hashed to its id while it was downloaded, just now
            return view, True
        if verify:
            if view.nbytes != meta[2]:
                raise CorruptObject(
                    f"Object {oid} is corrupt: its file has {view.nbytes} bytes, the index says {meta[2]}. "
                    "Run `cafstore fsck` to list every run that uses it.",
                    oid,
                )
            # The hash reads the very pages the caller gets (the mapping is private to this
            # process, and object files are never written in place), so no other bytes can slip in.
            self._verify(oid, view)
        return view, verify

    def get_bytes(self, oid: "ObjectId | str", verify: bool = True) -> bytes:
        """A copy of the object's bytes, verified by default (the copy is what is hashed, unless the
        backend hashed the very bytes copied as it downloaded them just now).

        A file is read, not mapped and copied: one copy made by the kernel
        costs about half of faulting in a map's pages and copying them.
        """
        oid = ObjectId(oid)
        if self.stat(oid).location == "file":
            try:
                data, checked = self.blobs.get_checked(oid)
            except ObjectNotFound:
                if self.stat(oid).location != "chunked":  # `cafstore dedup` re-chunked it meanwhile?
                    raise
                return self.get_bytes(oid, verify)
        else:
            view, checked = self._open(oid, verify=False)
            data = bytes(view)
        if verify and not checked:
            self._verify(oid, data)
        return data

    def _verify(self, oid: ObjectId, data: "bytes | memoryview") -> None:
        if hash_bytes(data) != oid:
            raise CorruptObject(
                f"Object {oid} is corrupt: its stored bytes no longer hash to its id. "
                "Run `cafstore fsck` to list every run that uses it.",
                oid,
            )

    def iter_objects(self) -> Iterator[ObjectStat]:
        """Every indexed object, in id order (one read transaction, no directory scan)."""
        for key, raw in self.scan("objects", b""):
            location, encoding, size, created = unpack_meta(raw)
            yield ObjectStat(
                ObjectId(key), size, LOCATION_NAMES.get(location, "?"), ENCODING_NAMES.get(encoding, "?"), created
            )

    # -- artifacts ---------------------------------------------------------
    def put_artifact(self, value: Any, name: str = "") -> ObjectId:
        """Serialise and store ``value`` (pickle 5, out-of-band buffers; cloudpickle if needed)."""
        return self.put_serialized(serialize.dumps(value, name))

    def put_serialized(self, blob: "serialize.Serialized") -> ObjectId:
        """Store a value already serialised with ``serialize.dumps`` (the runner serialises
        first, to learn sizes and ids, and must not pay for it twice)."""
        return self.put_encoded(None, blob.pieces, blob.size, ENCODING_ARTIFACT)

    def get_artifact(self, oid: "ObjectId | str", verify: bool = True, name: str = "") -> Any:
        """Load a value; large arrays come back as copy-on-write views of the file, not copies.

        Verified by default, like ``open`` (whose ``verify=False`` opt-out it passes on)."""
        return serialize.loads(self.open(oid, verify=verify), name)

    # -- records -----------------------------------------------------------
    def put_record(self, record: dict) -> ObjectId:
        """Store an immutable record; equal records get equal ids."""
        data = records.encode_record(record)
        return self.index.retrying(lambda t: self.put_inline(t, data, ENCODING_RECORD))

    def get_record(self, oid: "ObjectId | str") -> dict:
        return records.decode_record(self.open(oid))

    # -- maintenance -------------------------------------------------------
    def fsck(self, progress: bool = False, remote_sample: Optional[int] = None):
        """Check the whole store (fsck.py); ``remote_sample``: how many remote blobs to re-hash by download."""
        from cafstore.store.fsck import fsck

        return fsck(self, progress=progress, remote_sample=remote_sample)

    def stats(self) -> dict:
        """Counts and bytes: objects inline vs in files, logical vs physical."""
        out = {
            "objects": 0,
            "inline": 0,
            "files": 0,
            "records": 0,
            "artifacts": 0,
            "raw": 0,
            "logical_bytes": 0,
            "inline_bytes": 0,
            "file_bytes": 0,
            "refs": 0,
        }
        for st in self.iter_objects():
            out["objects"] += 1
            out["logical_bytes"] += st.size
            if st.location == "inline":
                out["inline"] += 1
                out["inline_bytes"] += st.size
            elif st.location == "chunked":
                out["chunked"] = out.get("chunked", 0) + 1  # its bytes are counted in its chunks
            else:
                out["files"] += 1
                out["file_bytes"] += st.size
            key = {"record": "records", "artifact": "artifacts"}.get(st.encoding, "raw")
            out[key] += 1
        with self.index.read() as txn:
            out["refs"] = self.index.count(txn, "refs")
        out["index_bytes"] = (self.path / "index" / "data.mdb").stat().st_size
        out["physical_bytes"] = out["index_bytes"] + out["file_bytes"]
        return out
