"""An in-memory blob backend: the whole store's large objects in one process's dict.

It exists so the contract suite (tests/contracts) can show that the store,
gc, fsck, repair and dedup rely only on the ``BlobBackend`` interface, and
so tests can run a store whose blobs never touch the disk. It is a complete
backend (atomic put-if-absent, private views, temp-file streaming), but its
blobs live and die with the process: a forked task process gets a copy the
parent never sees, and another process opening the same store sees none of
them. That is why it cannot be chosen in a store's settings (``shared`` is
False): hand it to one ``Store`` explicitly, ``Store(path, blobs=MemoryBlobBackend())``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Optional

from cafstore.exception import ObjectNotFound, StoreError
from cafstore.store.backends.base import BlobBackend, files_older_than
from cafstore.store.objectid import ObjectId


class MemoryBlobBackend(BlobBackend):
    """Blobs as ``bytes`` in a dict, each with the time it was written.

    ``temp_dir``: where ``new_temp_path`` puts streamed temp files (a store's
    ``tmp/`` when built from settings); by default a private temporary
    directory, removed when the backend is garbage-collected.
    """

    shared: ClassVar[bool] = False

    def __init__(self, temp_dir: "Optional[os.PathLike]" = None) -> None:
        self._blobs: dict[ObjectId, tuple[bytes, float]] = {}
        self._lock = threading.Lock()  # chunked puts write from a thread pool
        self._temp_dir: Optional[Path] = Path(temp_dir) if temp_dir is not None else None

    @classmethod
    def from_settings(cls, root: Path, config: Any, options: Mapping[str, Any]) -> "MemoryBlobBackend":
        """A fresh, empty backend whose temp files go to the store's ``tmp/``."""
        if options:
            raise StoreError(f"The memory blob backend takes no options, got {sorted(options)}.")
        return cls(temp_dir=Path(root) / "tmp")

    def _temp_root(self) -> Path:
        if self._temp_dir is None:
            import shutil
            import tempfile
            import weakref

            self._temp_dir = Path(tempfile.mkdtemp(prefix="cafstore-memory-"))
            weakref.finalize(self, shutil.rmtree, str(self._temp_dir), True)
        self._temp_dir.mkdir(parents=True, exist_ok=True)
        return self._temp_dir

    # -- required verbs ----------------------------------------------------
    def put_pieces(self, oid: ObjectId, pieces: Iterable, size: int) -> None:
        data = b"".join(memoryview(piece).cast("B") for piece in pieces)  # built first: the put is atomic
        with self._lock:
            self._blobs[oid] = (data, time.time())  # a rewrite is young again, like a replaced file

    def put_file(self, oid: ObjectId, path: Path) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise StoreError(
                f"Could not write object {oid.short}: cannot read its temp file {path} ({exc.strerror or exc})."
            ) from exc
        finally:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        with self._lock:
            self._blobs[oid] = (data, time.time())

    def _entry(self, oid: ObjectId) -> tuple[bytes, float]:
        entry = self._blobs.get(oid)
        if entry is None:
            raise ObjectNotFound(
                f"Object {oid} is indexed but its bytes are missing from the memory "
                "blob backend; run `cafstore fsck` to see what is affected."
            )
        return entry

    def open(self, oid: ObjectId) -> memoryview:
        return memoryview(bytearray(self._entry(oid)[0]))  # a private copy: writable, never shared

    def get(self, oid: ObjectId) -> bytes:
        return self._entry(oid)[0]

    def exists(self, oid: ObjectId) -> bool:
        return oid in self._blobs

    def size(self, oid: ObjectId) -> "int | None":
        entry = self._blobs.get(oid)
        return None if entry is None else len(entry[0])

    def mtime(self, oid: ObjectId) -> float:
        entry = self._blobs.get(oid)
        return 0.0 if entry is None else entry[1]

    def delete(self, oid: ObjectId) -> None:
        with self._lock:
            self._blobs.pop(oid, None)

    def iter_ids(self) -> Iterator[ObjectId]:
        with self._lock:
            ids = sorted(self._blobs)  # a snapshot: callers delete while iterating
        return iter(ids)

    def new_temp_path(self) -> Path:
        return self._temp_root() / f"{os.getpid()}-{uuid.uuid4().hex}"

    # -- optional capabilities ---------------------------------------------
    def stray_temp_files(self, older_than: float = 0.0) -> list[Path]:
        """Temp files of interrupted ``put_file`` streams, like the local backend's ``tmp/``."""
        return files_older_than(self._temp_dir, older_than)
