"""The LMDB index: one environment per store, opened once per process.

LMDB forbids opening one environment twice in a process and using an
environment across ``fork()``. ``open_index`` therefore keeps one handle per
(path, pid): a forked child that touches the store gets its own handle, and
two ``Store`` objects on one path share one.

A child cannot simply ignore its parent's handle: py-lmdb remembers, per
process, which environments are open, and a forked child inherits that memory,
so opening the store again in the child fails ("already open in this
process"), while closing the inherited handle in the child would release
reader slots that belong to the parent. So this process's handles are closed
just *before* every ``fork()`` (``os.register_at_fork``), as py-lmdb's
documentation prescribes; parent and child both reopen on next use (about a
millisecond). Open ``Store.iter_refs`` scans survive it (see ``generation``).

Tables (LMDB named databases):

- ``objects``  digest -> packed ObjectMeta (one entry per object, inline or not)
- ``inline``   digest -> bytes of small objects
- ``refs``     utf-8 name -> canonical JSON value (the only mutable state)
- ``counters`` utf-8 name -> u64 (run ids)
- ``meta``     utf-8 name -> bytes: facts about the index itself (the store id it
  belongs to, its generation; see identity.py)
- ``similar``  8-byte fingerprint -> digest: which large object a sampled piece of
  content was seen in (hints for chunking at put time; see similar.py)

``Store.index`` is this module's public face for the store's own helpers and
for maintenance (gc, repair, dedup, fsck): transactions (``read``, ``write``,
``retrying``) and verbs over the object tables that take a transaction, so no
caller outside this module needs LMDB's table handles or the packed meta
layout. An object's meta is the tuple ``(location, encoding, size, created)``.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, NoReturn, Optional, TypeVar

import lmdb

from cafstore.exception import StorageFull, StoreError
from cafstore.store import indexfaults
from cafstore.store.config import StoreConfig

T = TypeVar("T")
ObjectMeta = tuple  # (location, encoding, size, created): unpack_meta's result
TABLES = ("objects", "inline", "refs", "counters", "meta", "similar")
OPTIONAL_TABLES = frozenset({"meta", "similar"})  # added after stores existed; a read-only opener may not find them

LOCATION_INLINE = 1
LOCATION_FILE = 2
LOCATION_CHUNKED = 3
LOCATION_NAMES = {LOCATION_INLINE: "inline", LOCATION_FILE: "file", LOCATION_CHUNKED: "chunked"}

ENCODING_RAW = 0
ENCODING_ARTIFACT = 1
ENCODING_RECORD = 2
ENCODING_NAMES = {ENCODING_RAW: "raw", ENCODING_ARTIFACT: "artifact", ENCODING_RECORD: "record"}

_META = struct.Struct("<BBQd")  # location, encoding, size, created (unix time)
_lock = threading.Lock()
_open: dict = {}


def pack_meta(location: int, encoding: int, size: int, created: float) -> bytes:
    return _META.pack(location, encoding, size, created)


def unpack_meta(raw: bytes) -> tuple[int, int, int, float]:
    return _META.unpack(raw)


class Index:
    """An open LMDB environment plus its tables, with map growth handled here."""

    def __init__(self, path: Path, config: StoreConfig) -> None:
        self.path = path
        self.config = config
        # A store this process may not write (a read-only mount, another user's files) is opened
        # read-only: reading commands and the client work, writes raise StoreReadOnly.
        self.readonly = not indexfaults.writable(path)
        if not self.readonly:
            path.mkdir(parents=True, exist_ok=True)
        # A writable store whose index exists starts out read-only ("deferred"): in a writable
        # LMDB environment, opening a named table takes the writer lock, so every task would queue
        # behind other processes' commits just to start. The first write reopens the environment
        # writable and opens the tables inside that same write transaction (``write``).
        self.deferred = not self.readonly and _file_size(path) > 0
        self._tables_pending = False  # tables to open in the next write transaction
        self._first_writer: Optional[int] = None  # the thread inside that transaction
        self.env = self._open_env()
        try:
            indexfaults.check_size(self.env, path)  # before any data page is touched: no SIGBUS
            if not self.readonly:
                # Free the reader slots of processes that died holding a read snapshot (kill -9):
                # left alone they pin old pages, so the file only grows, and they fill the reader
                # table until every new reader fails. LMDB probes each slot's pid; it is cheap.
                self.env.reader_check()
            self.closed = False
            self.verified = False  # set by Store.index once identity.verify accepted this handle
            # Bumped whenever this process remaps the environment (growing it, or adopting
            # another process's growth, or reopening it writable): py-lmdb then invalidates every
            # open transaction, and long-lived readers (``Store.iter_refs``) resume in a fresh one.
            self.generation = 0
            self.tables = {}
            missing = self._open_existing_tables() if self.readonly or self.deferred else set(TABLES)
            if missing - OPTIONAL_TABLES and self.readonly:
                raise indexfaults.read_only(path, "its index lacks tables a writer would create")
            if missing and not self.readonly:  # a new index, or one from before a table existed
                if self.deferred:
                    self._become_writer()
                with self.env.begin(write=True) as txn:
                    for name in TABLES:
                        self.tables[name] = self.env.open_db(name.encode(), txn=txn)
                self._tables_pending = False
            # (read-only: a store written before an optional table existed is read as it is;
            # ``meta_value`` answers None.)
        except BaseException as exc:
            self.env.close()
            _raise_translated(exc, path, "open")

    def _open_existing_tables(self) -> set:
        """Open the tables of a read-only environment (a read transaction each); the names missing."""
        missing = set()
        for name in TABLES:
            try:
                self.tables[name] = self.env.open_db(name.encode(), create=False)
            except lmdb.NotFoundError:
                missing.add(name)
        return missing

    def _become_writer(self) -> None:
        """Reopen a deferred environment writable; its tables are opened by the next write."""
        self.env.close()
        self.generation += 1
        self.deferred = False
        self.env = self._open_env()
        self._tables_pending = True

    def _open_env(self) -> "lmdb.Environment":
        def environment(lock: bool) -> "lmdb.Environment":
            return lmdb.open(
                str(self.path),
                map_size=max(self.config.initial_map_size, _file_size(self.path) * 2),
                max_dbs=len(TABLES) + 4,
                max_readers=self.config.max_readers,
                sync=self.config.durable,
                metasync=self.config.durable and self.config.metasync,
                readahead=False,
                readonly=self.readonly or self.deferred,
                lock=lock,
            )

        if self.readonly and not (self.path / indexfaults.DATA_FILE).exists():
            raise indexfaults.read_only(self.path, "it has no index yet, and cannot be given one")
        try:
            return environment(lock=True)
        except lmdb.Error as exc:
            if self.deferred:  # (a data file LMDB cannot open read-only: let the writer try)
                self.deferred = False
                return self._open_env()
            if not self.readonly:
                _raise_translated(exc, self.path, "open")
        # Read-only, and the lock file cannot be written either: read without LMDB's reader table.
        # On a read-only mount nobody writes; a store its owner writes while another user reads it
        # can show that reader a page reused under it (docs/store.md, "Read-only stores").
        try:
            return environment(lock=False)
        except lmdb.Error as exc:
            _raise_translated(exc, self.path, "open")

    # -- transactions ------------------------------------------------------
    def read(self) -> "_Reading":
        """A read transaction; use as a context manager (``with index.read() as txn:``).

        LMDB's errors inside the block come out as the store's (a damaged page
        is ``IndexDamaged``, see indexfaults.py), never as raw ``lmdb`` ones.
        """
        if self._tables_pending:
            self._open_tables_now()
        try:
            txn = self.env.begin(buffers=False)
        except lmdb.MapResizedError:
            self._adopt_map_size()  # another process grew the map
            txn = self.env.begin(buffers=False)
        except lmdb.Error as exc:
            _raise_translated(exc, self.path, "read")
        return _Reading(txn, self.path)

    @contextlib.contextmanager
    def write(self) -> Iterator["lmdb.Transaction[bytes]"]:
        """One write transaction: everything in it commits together or not at all.

        The map is grown *before* the transaction when it is more than half
        used, because a transaction that hits MapFullError must be aborted and
        the caller's body cannot be replayed here.
        """
        if self.readonly:
            raise indexfaults.read_only(self.path, "it was opened read-only because its files cannot be written")
        try:
            if self.deferred:
                self._become_writer()
            self._grow_if_needed()
            try:
                txn = self.env.begin(write=True)
            except lmdb.MapResizedError:
                self._adopt_map_size()
                txn = self.env.begin(write=True)
        except lmdb.Error as exc:
            _raise_translated(exc, self.path, "write to")
        first = self._tables_pending
        if first:  # one writer lock for the tables and the first write (see __init__)
            try:
                for name in TABLES:
                    self.tables[name] = self.env.open_db(name.encode(), txn=txn)
            except lmdb.Error as exc:
                txn.abort()
                _raise_translated(exc, self.path, "write to")
            self._first_writer = threading.get_ident()
        try:
            yield txn
        except lmdb.MapFullError as exc:
            # The body outgrew the map. A ``with store.transaction()`` body cannot be
            # replayed here, so the caller gets the same StorageFull (with the map
            # already enlarged) as a full commit; ``retrying`` replays its own bodies.
            txn.abort()
            self.grow()
            raise StorageFull(
                "The store index ran out of room in one transaction; it has been enlarged, retry the command."
            ) from exc
        except lmdb.Error as exc:
            txn.abort()
            _raise_translated(exc, self.path, "write to")
        except BaseException:
            txn.abort()
            raise
        finally:
            self._first_writer = None
        try:
            txn.commit()
        except lmdb.MapFullError as exc:
            self.grow()
            raise StorageFull(
                "The store index ran out of room in one transaction; it has been enlarged, retry the command."
            ) from exc
        except lmdb.Error as exc:
            _raise_translated(exc, self.path, "commit to")
        if first:
            self._tables_pending = False  # committed: the handles are the environment's now

    def _open_tables_now(self) -> None:
        """Tables for a read after a first write that did not commit (its handles died with it)."""
        if self._first_writer == threading.get_ident():
            raise StoreError("internal error: an index read inside the first write transaction of this process")
        with self.write():
            pass

    def retrying(self, body: Callable[["lmdb.Transaction[bytes]"], T]) -> T:
        """Run ``body`` in a write transaction, growing the map and retrying if it fills."""
        for _attempt in range(8):
            try:
                with self.write() as txn:
                    return body(txn)
            except lmdb.MapFullError:
                self.grow()
            except StorageFull as exc:
                if not isinstance(exc.__cause__, lmdb.MapFullError):
                    raise
        raise StorageFull("The store index could not be grown enough to hold this write.")

    # -- the object tables, by verb -----------------------------------------
    def object_meta(self, txn: Any, digest: bytes) -> Optional[ObjectMeta]:
        """The meta of the object with this digest, or None if it is not indexed."""
        raw = txn.get(digest, db=self.tables["objects"])
        return None if raw is None else _META.unpack(raw)

    def inline_bytes(self, txn: Any, digest: bytes) -> Optional[bytes]:
        """The ``inline`` table's bytes for ``digest``: a small object, or a chunked object's chunk list."""
        return txn.get(digest, db=self.tables["inline"])

    def put_meta(self, txn: Any, digest: bytes, meta: ObjectMeta, overwrite: bool = True) -> bool:
        """Index an object (or rewrite its meta: a new created time); False if it existed and
        ``overwrite`` is off. The object's bytes must already be durable (invariant 1)."""
        return txn.put(digest, _META.pack(*meta), db=self.tables["objects"], overwrite=overwrite)

    def put_inline_bytes(self, txn: Any, digest: bytes, data: bytes) -> None:
        """Store a small object's bytes (or a chunk list) in the ``inline`` table."""
        txn.put(digest, data, db=self.tables["inline"])

    def delete_object(self, txn: Any, digest: bytes) -> bool:
        """Unindex an object: its meta and any inline bytes. False if it was not indexed.

        A file object's blob is not touched: callers remove it after this commits
        (index entries go before the files they name).
        """
        found = txn.delete(digest, db=self.tables["objects"])
        txn.delete(digest, db=self.tables["inline"])
        return found

    def iter_objects(self, txn: Any) -> Iterator[tuple[bytes, ObjectMeta]]:
        """(digest, meta) of every indexed object, in digest order, within ``txn``."""
        for key, raw in txn.cursor(db=self.tables["objects"]):
            yield key, _META.unpack(raw)

    def iter_raw_refs(self, txn: Any) -> Iterator[tuple[bytes, bytes]]:
        """(name, encoded value) of every ref, in name order, within ``txn``; undecoded, so a
        caller can report a ref that does not decode instead of failing on it."""
        yield from txn.cursor(db=self.tables["refs"])

    def meta_value(self, txn: Any, name: str) -> Optional[bytes]:
        """A fact about the index itself (``meta`` table), or None if it was never written."""
        table = self.tables.get("meta")
        return None if table is None else txn.get(name.encode(), db=table)

    def set_meta_value(self, txn: Any, name: str, value: bytes, overwrite: bool = True) -> bool:
        """Write a fact about the index; False if it existed and ``overwrite`` is off (put-if-absent)."""
        return txn.put(name.encode(), value, db=self.tables["meta"], overwrite=overwrite)

    def count(self, txn: Any, table: str) -> int:
        """Entries in ``table`` (one of ``TABLES``), from LMDB's own statistics: no scan."""
        return txn.stat(self.tables[table])["entries"]

    # -- map size ----------------------------------------------------------
    def _grow_if_needed(self) -> None:
        info = self.env.info()
        used = (info["last_pgno"] + 1) * self.env.stat()["psize"]
        if used * 2 > info["map_size"]:
            self.grow()

    def grow(self) -> None:
        info = self.env.info()
        self.generation += 1
        try:
            self.env.set_mapsize(info["map_size"] * 2)
        except lmdb.Error as exc:
            raise StorageFull.disk_full(
                f"enlarge the store index {self.path / indexfaults.DATA_FILE} beyond {info['map_size']} bytes", str(exc)
            ) from exc

    def _adopt_map_size(self) -> None:
        self.generation += 1
        self.env.set_mapsize(0)  # 0: take the size another process grew the map to

    def close(self) -> None:
        self.closed = True
        self.generation += 1
        self.env.close()


class _Reading:
    """``Index.read()``: a read transaction whose LMDB errors leave the block as store errors."""

    __slots__ = ("txn", "path")

    def __init__(self, txn: Any, path: Path) -> None:
        self.txn, self.path = txn, path

    def __enter__(self) -> "lmdb.Transaction[bytes]":
        return self.txn

    def __exit__(self, kind: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.txn.abort()
        if exc is not None:
            translated = indexfaults.translate(exc, self.path, "read")
            if translated is not None:
                raise translated from exc


def _raise_translated(exc: BaseException, path: Path, action: str) -> NoReturn:
    """Raise ``exc`` as the store's error (caused by it) if indexfaults knows it, else ``exc`` itself."""
    translated = indexfaults.translate(exc, path, action)
    if translated is None:
        raise exc
    raise translated from exc


def _file_size(path: Path) -> int:
    try:
        return (path / "data.mdb").stat().st_size
    except FileNotFoundError:
        return 0


_real_paths: Dict[str, str] = {}  # index path as given -> resolved: a task opens its index a few times


def _resolved(path: Path) -> str:
    given = str(path)
    real = _real_paths.get(given)
    if real is None:
        real = str(path.resolve())
        if path.is_absolute():  # (a relative one depends on the working directory)
            _real_paths[given] = real
    return real


def open_index(path: Path, config: StoreConfig) -> Index:
    """The process's one Index for ``path`` (a new one after a fork)."""
    key = (_resolved(path), os.getpid())
    with _lock:
        index = _open.get(key)
        if index is None:
            # Handles inherited from a parent process must never be used (LMDB rule).
            for stale in [k for k in _open if k[1] != key[1]]:
                del _open[stale]
            index = _open[key] = Index(path, config)
        return index


def close_index(path: Path) -> None:
    """Close this process's handle on the index at ``path``, if open (``Store.close``)."""
    key = (_resolved(path), os.getpid())
    with _lock:
        index = _open.pop(key, None)
    if index is not None:
        index.close()


def close_all() -> None:
    """Close this process's handles (they are reopened on next use). Runs before every fork()."""
    with _lock:
        for key, index in list(_open.items()):
            if key[1] == os.getpid():
                index.close()
            del _open[key]


def _before_fork() -> None:
    try:
        close_all()
    except Exception:  # never make fork() itself fail; the child would then refuse to open
        pass


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the moment of the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
