"""The store: objects by content, immutable records, and refs.

Like Git, cafstore separates what never changes (objects and records, named
by the blake3 hash of their bytes) from the little that does (refs: runs,
tags, namespaces, pins). The LMDB index is the single source of truth for
what exists; large objects' bytes live in a blob backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Optional, Union

import lmdb

from cafstore.exception import CorruptObject, ObjectNotFound, RefConflict, StoreError
from cafstore.store import freshen, records, serialize
from cafstore.store.blobs import BlobBackend, LocalBlobBackend
from cafstore.store.config import StoreConfig
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
    pack_meta,
    unpack_meta,
)
from cafstore.store.objectid import ObjectId, hash_bytes, hash_pieces, new_hasher

MISSING: Any = object()  # ``expected=`` default of set_ref: no compare-and-swap
_MAX_KEY = 500


class ObjectStat:
    """What the index knows about one object."""

    __slots__ = ("oid", "size", "location", "encoding", "created")

    def __init__(self, oid: ObjectId, size: int, location: str, encoding: str, created: float) -> None:
        self.oid, self.size, self.location, self.encoding, self.created = oid, size, location, encoding, created

    def __repr__(self) -> str:
        return f"ObjectStat({self.oid.short}, size={self.size}, {self.location}, {self.encoding})"


def _ref_key(name: str) -> bytes:
    try:
        key = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreError(f"Ref name {name[:80]!r} is not valid Unicode text ({exc.reason}).") from exc
    if not key or len(key) > _MAX_KEY:
        raise StoreError(f"Ref name {name[:80]!r} must be 1 to {_MAX_KEY} bytes of UTF-8.")
    return key


class Transaction:
    """A group of ref, counter and record changes committed atomically.

    Obtained from ``Store.transaction()``; readers in other processes see
    either none or all of its changes.
    """

    def __init__(self, store: "Store", txn: Any) -> None:
        self._store = store
        self._txn = txn
        self._refs = store._index.tables["refs"]

    def get_ref(self, name: str, default: Any = None) -> Any:
        raw = self._txn.get(_ref_key(name), db=self._refs)
        return default if raw is None else records.decode(raw)

    def set_ref(self, name: str, value: Any, expected: Any = MISSING) -> None:
        """Point ``name`` at ``value``; with ``expected``, only if it still holds that (None: absent)."""
        key = _ref_key(name)
        encoded = records.encode(value)
        if expected is not MISSING:
            raw = self._txn.get(key, db=self._refs)
            # Compared as canonical bytes: Python's 1 == 1.0 == True must not let a CAS
            # succeed against a different JSON value.
            if raw != (None if expected is None else records.encode(expected)):
                current = None if raw is None else records.decode(raw)
                raise RefConflict(
                    f"Ref {name!r} changed while it was being updated (expected {expected!r}, found "
                    f"{current!r}); re-read it and try again."
                )
        self._txn.put(key, encoded, db=self._refs)

    def delete_ref(self, name: str) -> bool:
        return self._txn.delete(_ref_key(name), db=self._refs)

    def list_refs(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        yield from _scan_refs(self._txn, self._refs, prefix)

    def next_counter(self, name: str) -> int:
        """Increment and return a named counter (1 the first time): how run ids are allocated."""
        db = self._store._index.tables["counters"]
        key = _ref_key(name)
        raw = self._txn.get(key, db=db)
        value = (int.from_bytes(raw, "little") if raw else 0) + 1
        self._txn.put(key, value.to_bytes(8, "little"), db=db)
        return value

    def put_record(self, record: dict) -> ObjectId:
        return self._store._put_inline(self._txn, records.encode_record(record), ENCODING_RECORD)

    def put_bytes(self, data: bytes) -> ObjectId:
        return self._store._put_serialized(self._txn, [data], len(data), ENCODING_RAW)

    def put_artifact(self, value: Any, name: str = "") -> ObjectId:
        return self.put_serialized(serialize.dumps(value, name))

    def put_serialized(self, blob: "serialize.Serialized") -> ObjectId:
        """A serialised value, inside this transaction if small (large ones are files written first)."""
        return self._store._put_serialized(self._txn, blob.pieces, blob.size, ENCODING_ARTIFACT)


def _fsync_file(path: "os.PathLike") -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prefix_key(prefix: str) -> bytes:
    try:
        return prefix.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreError(f"Ref prefix {prefix[:80]!r} is not valid Unicode text ({exc.reason}).") from exc


def _position(cursor: Any, start: bytes, reverse: bool, after: Optional[bytes]) -> bool:
    """Put ``cursor`` on the first entry of a range scan over keys starting with ``start``.

    ``after``: the last key already seen (resuming), so the scan continues past it.
    Returns False if there is no such entry at all.
    """
    if not reverse:
        if after is None:
            return cursor.set_range(start)
        if not cursor.set_range(after):
            return False
        return cursor.next() if cursor.key() == after else True
    if after is not None:
        bound = after  # walk back from just before the last key seen
    else:
        bound = _prefix_end(start)  # walk back from just past the prefix range
    if bound and cursor.set_range(bound):
        return cursor.prev()
    return cursor.last()  # nothing sorts after the bound: start from the very last key


def _scan_refs(txn: Any, db: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    start = _prefix_key(prefix)
    cursor = txn.cursor(db=db)
    if not cursor.set_range(start):
        return
    for key, raw in cursor:
        if not key.startswith(start):
            break
        yield key.decode("utf-8"), records.decode(raw)


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (b"" if none)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b""
    return stripped[:-1] + bytes([stripped[-1] + 1])


class Store:
    """A content-addressed store on disk (see docs/store.md for the format).

    ``Store(path)`` opens or creates the store at ``path``; ``Store()`` finds
    one the way Git finds a repository (``Store.discover``).
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
        self.blobs = blobs or LocalBlobBackend(self.path, durable=self.config.durable)
        self._index_handle: Optional[Index] = None
        self._index_pid = -1

    @classmethod
    def discover(cls, start: "Union[str, os.PathLike, None]" = None) -> "Store":
        from cafstore.store.discover import discover_path

        return cls(discover_path(start))

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def _index(self) -> Index:
        # Re-opened after a fork: an LMDB handle must never cross into a child.
        if self._index_handle is None or self._index_pid != os.getpid() or self._index_handle.closed:
            self._index_handle = open_index(self.path / "index", self.config)
            self._index_pid = os.getpid()
        return self._index_handle

    def close(self) -> None:
        """Close this process's handle on this store's index (reopened on next use).

        Other Store objects on the same path share the handle; they reopen it too.
        Stores on other paths are not affected.
        """
        from cafstore.store.index import close_index

        self._index_handle = None
        close_index(self.path / "index")

    # -- objects -----------------------------------------------------------
    def _lookup(self, txn: Any, oid: ObjectId) -> Optional[tuple[int, int, int, float]]:
        raw = txn.get(oid.digest, db=self._index.tables["objects"])
        return None if raw is None else unpack_meta(raw)

    def _put_inline(self, txn: Any, data: bytes, encoding: int) -> ObjectId:
        oid = hash_bytes(data)
        tables = self._index.tables
        if not freshen.known(self, txn, oid):  # a hit on an old object refreshes it for gc
            txn.put(oid.digest, data, db=tables["inline"])
            txn.put(oid.digest, pack_meta(LOCATION_INLINE, encoding, len(data), time.time()), db=tables["objects"])
        return oid

    def _put_serialized(self, txn: Any, pieces: list, size: int, encoding: int) -> ObjectId:
        """Store pieces whose concatenation is the object; inside ``txn`` if given."""
        if size <= self.config.inline_threshold:
            data = pieces[0] if len(pieces) == 1 and isinstance(pieces[0], bytes) else b"".join(pieces)
            if txn is not None:
                return self._put_inline(txn, data, encoding)
            return self._index.retrying(lambda t: self._put_inline(t, data, encoding))
        oid = hash_pieces(pieces, size)
        if freshen.known(self, txn, oid):
            return oid  # deduplicated: hashing was the whole cost
        if self.config.chunk_threshold and size >= self.config.chunk_threshold:
            from cafstore.store import chunks

            return chunks.put_chunked(self, txn, oid, pieces, size, encoding)
        self.blobs.put_pieces(oid, pieces, size)  # durable before the index refers to it
        self._index_file(txn, oid, size, encoding)
        return oid

    def _index_file(self, txn: Any, oid: ObjectId, size: int, encoding: int) -> None:
        meta = pack_meta(LOCATION_FILE, encoding, size, time.time())
        db = self._index.tables["objects"]
        if txn is not None:
            txn.put(oid.digest, meta, db=db, overwrite=False)
        else:
            self._index.retrying(lambda t: t.put(oid.digest, meta, db=db, overwrite=False))

    def put_bytes(self, data: "bytes | bytearray | memoryview") -> ObjectId:
        """Store ``data``; returns its blake3 id. Storing existing bytes writes nothing."""
        view = memoryview(data).cast("B")
        return self._put_serialized(None, [view if view.nbytes > self.config.inline_threshold else bytes(view)],
                                    view.nbytes, ENCODING_RAW)

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
            if size <= self.config.inline_threshold:
                os.unlink(temp)
                self._index.retrying(lambda t: self._put_inline(t, bytes(head), ENCODING_RAW))
            elif freshen.known(self, None, oid):
                os.unlink(temp)  # deduplicated: never fsynced, the page cache just drops it
            elif self.config.chunk_threshold and size >= self.config.chunk_threshold:
                from cafstore.store import chunks

                chunks.put_file_chunked(self, oid, temp, size)  # chunk files are fsynced one by one
            else:
                if self.config.durable:
                    _fsync_file(temp)
                self.blobs.put_file(oid, temp)
                self._index_file(None, oid, size, ENCODING_RAW)
            return oid
        except BaseException:
            # A failed read or write leaves no temp file behind (a consumed one is already gone).
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def exists(self, oid: "ObjectId | str") -> bool:
        oid = ObjectId(oid)
        with self._index.read() as txn:
            return self._lookup(txn, oid) is not None

    def stat(self, oid: "ObjectId | str") -> ObjectStat:
        oid = ObjectId(oid)
        with self._index.read() as txn:
            meta = self._lookup(txn, oid)
        if meta is None:
            raise ObjectNotFound(f"No object {oid} in the store at {self.path}.")
        location, encoding, size, created = meta
        return ObjectStat(oid, size, LOCATION_NAMES.get(location, "?"), ENCODING_NAMES.get(encoding, "?"), created)

    def open(self, oid: "ObjectId | str", verify: bool = False) -> memoryview:
        """The object's bytes without a copy: an mmap (copy-on-write) for files."""
        oid = ObjectId(oid)
        with self._index.read() as txn:
            meta = self._lookup(txn, oid)
            if meta is None:
                raise ObjectNotFound(f"No object {oid} in the store at {self.path}.")
            if meta[0] == LOCATION_INLINE:
                data = txn.get(oid.digest, db=self._index.tables["inline"])
                if data is None:
                    raise CorruptObject(f"Object {oid} is indexed as inline but its bytes are missing.", oid)
                # Small objects are always verified: hashing a few KiB costs microseconds.
                self._verify(oid, data)
                return memoryview(bytearray(data))
            if meta[0] == LOCATION_CHUNKED:
                chunk_list = txn.get(oid.digest, db=self._index.tables["inline"])
        if meta[0] == LOCATION_CHUNKED:
            from cafstore.store import chunks

            return chunks.assemble(self, oid, chunk_list, meta[2], verify=verify)
        try:
            view = self.blobs.open(oid)
        except ObjectNotFound:
            if self.stat(oid).location != "chunked":  # `cafstore dedup` re-chunked it meanwhile?
                raise
            return self.open(oid, verify=verify)
        if verify:
            self._verify(oid, view)
        return view

    def get_bytes(self, oid: "ObjectId | str", verify: bool = False) -> bytes:
        """The object's bytes; ``verify=True`` re-hashes large ones too (small ones always are)."""
        return bytes(self.open(oid, verify=verify))

    def _verify(self, oid: ObjectId, data: "bytes | memoryview") -> None:
        if hash_bytes(data) != oid:
            raise CorruptObject(
                f"Object {oid} is corrupt: its stored bytes no longer hash to its id. "
                "Run `cafstore fsck` to list every run that uses it.",
                oid,
            )

    def iter_objects(self) -> Iterator[ObjectStat]:
        """Every indexed object, in id order (one read transaction, no directory scan)."""
        for key, raw in self._range_scan("objects", b""):
            location, encoding, size, created = unpack_meta(raw)
            yield ObjectStat(ObjectId(key), size, LOCATION_NAMES.get(location, "?"),
                             ENCODING_NAMES.get(encoding, "?"), created)

    # -- artifacts ---------------------------------------------------------
    def put_artifact(self, value: Any, name: str = "") -> ObjectId:
        """Serialise and store ``value`` (pickle 5, out-of-band buffers; cloudpickle if needed)."""
        return self.put_serialized(serialize.dumps(value, name))

    def put_serialized(self, blob: "serialize.Serialized") -> ObjectId:
        """Store a value already serialised with ``serialize.dumps`` (the runner serialises
        first, to learn sizes and ids, and must not pay for it twice)."""
        return self._put_serialized(None, blob.pieces, blob.size, ENCODING_ARTIFACT)

    def get_artifact(self, oid: "ObjectId | str", verify: bool = False, name: str = "") -> Any:
        """Load a value; large arrays come back as copy-on-write views of the file, not copies."""
        return serialize.loads(self.open(oid, verify=verify), name)

    # -- records -----------------------------------------------------------
    def put_record(self, record: dict) -> ObjectId:
        """Store an immutable record; equal records get equal ids."""
        data = records.encode_record(record)
        return self._index.retrying(lambda t: self._put_inline(t, data, ENCODING_RECORD))

    def get_record(self, oid: "ObjectId | str") -> dict:
        return records.decode_record(self.open(oid))

    # -- refs --------------------------------------------------------------
    def transaction(self):  # -> ContextManager[Transaction]
        """``with store.transaction() as txn:`` groups ref/counter/record changes atomically."""
        @contextlib.contextmanager
        def scope() -> Iterator[Transaction]:
            with self._index.write() as txn:
                yield Transaction(self, txn)

        return scope()

    def get_ref(self, name: str, default: Any = None) -> Any:
        with self._index.read() as txn:
            raw = txn.get(_ref_key(name), db=self._index.tables["refs"])
        return default if raw is None else records.decode(raw)

    def set_ref(self, name: str, value: Any, expected: Any = MISSING) -> None:
        self._index.retrying(lambda t: Transaction(self, t).set_ref(name, value, expected))

    def delete_ref(self, name: str) -> bool:
        return self._index.retrying(lambda t: Transaction(self, t).delete_ref(name))

    def list_refs(self, prefix: str = "") -> list[tuple[str, Any]]:
        """Refs whose names start with ``prefix``, sorted by name (an LMDB range scan)."""
        with self._index.read() as txn:
            return list(_scan_refs(txn, self._index.tables["refs"], prefix))

    def iter_refs(self, prefix: str = "", reverse: bool = False,
                  containing: Iterable[str] = ()) -> Iterator[tuple[str, Any]]:
        """Refs under ``prefix`` lazily, optionally newest-name-first, within one read snapshot.

        ``latest_run`` is a reverse scan that stops at the first match, so it
        costs the same with ten runs or ten thousand. ``containing``: only refs
        whose value holds each of these strings as a JSON string (a tag, a
        user); the test is a byte search on the encoded value, so refs that
        cannot match are skipped without being decoded (~2 us each instead of
        ~50). Callers still check matches exactly.
        """
        marks = [json.dumps(text, ensure_ascii=False).encode("utf-8") for text in containing]
        for key, raw in self._range_scan("refs", _prefix_key(prefix), reverse):
            if all(mark in raw for mark in marks):
                yield key.decode("utf-8"), records.decode(raw)

    def _range_scan(self, table: str, start: bytes, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Entries of ``table`` whose keys start with ``start``, in key order or reversed, lazily.

        One read snapshot, except in one case: when this process remaps or closes
        the LMDB environment while the scan is suspended (a write that grows the
        map, a read adopting another process's growth, a ``fork()``: see index.py),
        py-lmdb invalidates every open transaction; the scan then resumes after the
        last key it yielded, in a fresh snapshot, instead of failing.
        """
        last: Optional[bytes] = None
        while True:
            index = self._index
            generation = index.generation
            try:
                with index.read() as txn:
                    cursor = txn.cursor(db=index.tables[table])
                    found = _position(cursor, start, reverse, last)
                    while found:
                        key = cursor.key()
                        if not key.startswith(start):
                            return
                        value = cursor.value()
                        last = key
                        yield key, value
                        found = cursor.prev() if reverse else cursor.next()
                    return
            except lmdb.Error:
                if index.generation == generation:
                    raise

    def next_counter(self, name: str) -> int:
        return self._index.retrying(lambda t: Transaction(self, t).next_counter(name))

    def update_ref(self, name: str, change, default: Any = None) -> Any:
        """Read-modify-write of one ref in a single transaction: ``change(old) -> new``.

        Concurrent updaters serialise on LMDB's writer lock, so no change is lost.
        """

        def body(txn: Any) -> Any:
            t = Transaction(self, txn)
            new = change(t.get_ref(name, default))
            t.set_ref(name, new)
            return new

        return self._index.retrying(body)

    # -- maintenance -------------------------------------------------------
    def fsck(self, progress: bool = False):
        from cafstore.store.fsck import fsck

        return fsck(self, progress=progress)

    def stats(self) -> dict:
        """Counts and bytes: objects inline vs in files, logical vs physical."""
        out = {"objects": 0, "inline": 0, "files": 0, "records": 0, "artifacts": 0, "raw": 0,
               "logical_bytes": 0, "inline_bytes": 0, "file_bytes": 0, "refs": 0}
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
        with self._index.read() as txn:
            out["refs"] = txn.stat(self._index.tables["refs"])["entries"]
        out["index_bytes"] = (self.path / "index" / "data.mdb").stat().st_size
        out["physical_bytes"] = out["index_bytes"] + out["file_bytes"]
        return out
