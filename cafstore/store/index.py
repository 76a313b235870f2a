"""The LMDB index: one environment per store, opened once per process.

LMDB forbids opening one environment twice in a process and using an
environment across ``fork()``. ``open_index`` therefore keeps one handle per
(path, pid): a forked child that touches the store gets its own handle, and
two ``Store`` objects on one path share one.

Tables (LMDB named databases):

- ``objects``  digest -> packed ObjectMeta (one entry per object, inline or not)
- ``inline``   digest -> bytes of small objects
- ``refs``     utf-8 name -> canonical JSON value (the only mutable state)
- ``counters`` utf-8 name -> u64 (run ids)
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import lmdb

from cafstore.exception import StorageFull, StoreError
from cafstore.store.config import StoreConfig

T = TypeVar("T")
TABLES = ("objects", "inline", "refs", "counters")

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
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.env = lmdb.open(
                str(path),
                map_size=max(config.initial_map_size, _file_size(path) * 2),
                max_dbs=len(TABLES) + 4,
                max_readers=config.max_readers,
                sync=config.durable,
                metasync=config.durable,
                readahead=False,
                lock=True,
            )
        except lmdb.Error as exc:
            raise StoreError(f"Cannot open the store index at {path}: {exc}") from exc
        self.tables = {}
        with self.env.begin(write=True) as txn:
            for name in TABLES:
                self.tables[name] = self.env.open_db(name.encode(), txn=txn)

    # -- transactions ------------------------------------------------------
    def read(self) -> "lmdb.Transaction":
        """A read transaction; use as a context manager."""
        try:
            return self.env.begin(buffers=False)
        except lmdb.MapResizedError:
            self.env.set_mapsize(0)  # another process grew the map: adopt its size
            return self.env.begin(buffers=False)

    @contextlib.contextmanager
    def write(self) -> Iterator["lmdb.Transaction"]:
        """One write transaction: everything in it commits together or not at all.

        The map is grown *before* the transaction when it is more than half
        used, because a transaction that hits MapFullError must be aborted and
        the caller's body cannot be replayed here.
        """
        self._grow_if_needed()
        try:
            txn = self.env.begin(write=True)
        except lmdb.MapResizedError:
            self.env.set_mapsize(0)
            txn = self.env.begin(write=True)
        try:
            yield txn
        except BaseException:
            txn.abort()
            raise
        try:
            txn.commit()
        except lmdb.MapFullError as exc:
            self.grow()
            raise StorageFull(
                "The store index ran out of room in one transaction; it has been enlarged, retry the command."
            ) from exc
        except lmdb.DiskError as exc:
            raise StorageFull(f"Could not commit to the store index: {exc}. Is the disk full?") from exc

    def retrying(self, body: Callable[["lmdb.Transaction"], T]) -> T:
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

    # -- map size ----------------------------------------------------------
    def _grow_if_needed(self) -> None:
        info = self.env.info()
        used = (info["last_pgno"] + 1) * self.env.stat()["psize"]
        if used * 2 > info["map_size"]:
            self.grow()

    def grow(self) -> None:
        info = self.env.info()
        try:
            self.env.set_mapsize(info["map_size"] * 2)
        except lmdb.Error as exc:
            raise StorageFull(f"Cannot enlarge the store index beyond {info['map_size']} bytes: {exc}") from exc

    def close(self) -> None:
        self.env.close()


def _file_size(path: Path) -> int:
    try:
        return (path / "data.mdb").stat().st_size
    except FileNotFoundError:
        return 0


def open_index(path: Path, config: StoreConfig) -> Index:
    """The process's one Index for ``path`` (a new one after a fork)."""
    key = (str(path.resolve()), os.getpid())
    with _lock:
        index = _open.get(key)
        if index is None:
            # Handles inherited from a parent process must never be used (LMDB rule).
            for stale in [k for k in _open if k[1] != key[1]]:
                del _open[stale]
            index = _open[key] = Index(path, config)
        return index


def close_all() -> None:
    """Close this process's handles: call before fork() in a process that will keep running."""
    with _lock:
        for key, index in list(_open.items()):
            if key[1] == os.getpid():
                index.close()
            del _open[key]
