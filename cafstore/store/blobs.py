"""Where large objects' bytes live: the blob backend interface and its local directory.

The index (LMDB) decides *whether* an object exists; a blob backend only
holds bytes by id. The interface is kept to the verbs an object store such as
S3 offers for immutable content-addressed keys, so a remote backend can
replace the local one without the layers above noticing.
"""

from __future__ import annotations

import abc
import errno
import mmap
import os
import time
import uuid
from pathlib import Path
from typing import Iterable, Iterator

from cafstore.exception import ObjectNotFound, StorageFull, StoreError
from cafstore.store.objectid import ObjectId

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class BlobBackend(abc.ABC):
    """Immutable bytes by id. Every write is atomic: a blob is whole or absent."""

    @abc.abstractmethod
    def put_pieces(self, oid: ObjectId, pieces: Iterable, size: int) -> None:
        """Store the concatenation of ``pieces`` (bytes-like) under ``oid``, durably."""

    @abc.abstractmethod
    def put_file(self, oid: ObjectId, path: Path) -> None:
        """Store the finished temp file ``path`` under ``oid``; the file is consumed."""

    @abc.abstractmethod
    def open(self, oid: ObjectId) -> memoryview:
        """A zero-copy, writable-but-private view of the blob (copy-on-write)."""

    @abc.abstractmethod
    def get(self, oid: ObjectId) -> bytes: ...

    @abc.abstractmethod
    def exists(self, oid: ObjectId) -> bool: ...

    @abc.abstractmethod
    def size(self, oid: ObjectId) -> "int | None":
        """Bytes stored for ``oid``, or None if absent."""

    @abc.abstractmethod
    def delete(self, oid: ObjectId) -> None:
        """Remove the blob; absent blobs are not an error (gc may be re-run)."""

    @abc.abstractmethod
    def iter_ids(self) -> Iterator[ObjectId]:
        """Every blob present, indexed or not (fsck and gc look for orphans)."""

    @abc.abstractmethod
    def mtime(self, oid: ObjectId) -> float: ...

    @abc.abstractmethod
    def new_temp_path(self) -> Path:
        """A fresh local path for streaming a blob whose id is not known yet."""

    def stray_temp_files(self, older_than: float = 0.0) -> list:
        """Leftovers of interrupted writes; a backend without local temp files has none."""
        return []


class LocalBlobBackend(BlobBackend):
    """Blobs as files ``objects/ab/cdef...`` under the store directory.

    Writes go temp file -> fsync -> rename -> fsync of the directory, so a
    crash leaves either the whole blob or an orphan temp file that gc removes.
    """

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.durable = durable
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, oid: ObjectId) -> Path:
        return self.objects / oid[:2] / oid[2:]

    def new_temp_path(self) -> Path:
        return self.tmp / f"{os.getpid()}-{uuid.uuid4().hex}"

    def put_pieces(self, oid: ObjectId, pieces: Iterable, size: int) -> None:
        temp = self.new_temp_path()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                for piece in pieces:
                    view = memoryview(piece).cast("B")
                    while view.nbytes:
                        written = os.write(fd, view[: 1 << 30])
                        view = view[written:]
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self.put_file(oid, temp)
        except OSError as exc:
            _unlink_quietly(temp)
            raise _os_error("write", oid, exc) from exc

    def put_file(self, oid: ObjectId, path: Path) -> None:
        target = self.path(oid)
        try:
            if not target.parent.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
                if self.durable:
                    _fsync_dir(self.objects)
            os.chmod(path, 0o444)
            os.replace(path, target)
            if self.durable:
                _fsync_dir(target.parent)
        except OSError as exc:
            _unlink_quietly(path)
            raise _os_error("write", oid, exc) from exc

    def open(self, oid: ObjectId) -> memoryview:
        try:
            with open(self.path(oid), "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size == 0:
                    return memoryview(bytearray())
                return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY))
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"Object {oid} is indexed but its file {self.path(oid)} is missing; "
                                 "run `cafstore fsck` to see what is affected.") from exc

    def get(self, oid: ObjectId) -> bytes:
        try:
            return self.path(oid).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"Object {oid} is indexed but its file {self.path(oid)} is missing; "
                                 "run `cafstore fsck` to see what is affected.") from exc

    def exists(self, oid: ObjectId) -> bool:
        return self.path(oid).is_file()

    def size(self, oid: ObjectId) -> "int | None":
        try:
            return self.path(oid).stat().st_size
        except FileNotFoundError:
            return None

    def mtime(self, oid: ObjectId) -> float:
        try:
            return self.path(oid).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def delete(self, oid: ObjectId) -> None:
        _unlink_quietly(self.path(oid))

    def iter_ids(self) -> Iterator[ObjectId]:
        for fan in sorted(self.objects.iterdir()) if self.objects.is_dir() else ():
            if len(fan.name) != 2 or not fan.is_dir():
                continue
            for entry in sorted(fan.iterdir()):
                try:
                    yield ObjectId(fan.name + entry.name)
                except StoreError:
                    continue  # a stray file that is not a blob: fsck reports it separately

    def stray_temp_files(self, older_than: float = 0.0) -> list[Path]:
        """Temp files left by writers that died; ``older_than`` seconds protects live writers."""
        cutoff = time.time() - older_than
        found = []
        for entry in self.tmp.iterdir() if self.tmp.is_dir() else ():
            try:
                if entry.stat().st_mtime <= cutoff:
                    found.append(entry)
            except FileNotFoundError:
                continue
        return found


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _os_error(action: str, oid: ObjectId, exc: OSError) -> StoreError:
    if exc.errno in _DISK_FULL:
        return StorageFull(
            f"Could not {action} object {oid.short}: the disk holding the store is full ({exc.strerror}). "
            "Nothing was half-written; free some space (`cafstore gc` removes unreferenced data) and retry."
        )
    return StoreError(f"Could not {action} object {oid.short}: {exc.strerror or exc} ({exc.filename or ''}).")
