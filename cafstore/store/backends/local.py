"""The local directory blob backend: ``objects/ab/cdef...`` files under the store directory.

Writes go temp file (``tmp/``) -> fsync -> rename -> fsync of the directory,
so a crash leaves either the whole blob or an orphan temp file that gc
removes. Reads are copy-on-write mmaps, so a large array loads without a copy.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from cafstore.exception import ObjectNotFound, StorageFull, StoreError, StoreReadOnly
from cafstore.progress import for_object
from cafstore.store.backends.base import BlobBackend, files_older_than
from cafstore.store.durable import fsync_path
from cafstore.store.objectid import ObjectId

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


class LocalBlobBackend(BlobBackend):
    """Blobs as read-only files ``objects/ab/cdef...`` under the store directory ``root``."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.durable = durable
        for folder in (self.objects, self.tmp):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                if exc.errno not in _READ_ONLY:
                    raise
                # A read-only store can still be read; a write says so (``_os_error``).

    @classmethod
    def from_settings(cls, root: Path, config: Any, options: Mapping[str, Any]) -> "LocalBlobBackend":
        """The store's own directory; fsync follows ``StoreConfig.durable``. No options."""
        if options:
            raise StoreError(
                f"The local blob backend takes no options, but the store's settings give "
                f"{sorted(options)}; check store.json in {root}."
            )
        return cls(root, durable=config.durable)

    def path(self, oid: ObjectId) -> Path:
        """The file holding ``oid`` (which may not exist)."""
        return self.objects / oid[:2] / oid[2:]

    def new_temp_path(self) -> Path:
        return self.tmp / f"{os.getpid()}-{uuid.uuid4().hex}"

    def put_pieces(self, oid: ObjectId, pieces: Iterable, size: int) -> None:
        """Write the pieces to a temp file, then move it into place. A big value (``for_object``) is
        written in 64 MiB blocks so a progress bar can follow it; any other in one write per piece."""
        temp = self.new_temp_path()
        bar = for_object(f"writing {oid.short}", size)
        block = 1 << 30 if bar is None else 64 << 20
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                for piece in pieces:
                    view = memoryview(piece).cast("B")
                    while view.nbytes:
                        written = os.write(fd, view[:block])
                        view = view[written:]
                        if bar is not None:
                            bar.advance(written)
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
                if bar is not None:
                    bar.close()
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
                    fsync_path(self.objects, directory=True)
            os.chmod(path, 0o444)
            os.replace(path, target)
            if self.durable:
                fsync_path(target.parent, directory=True)
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
            raise self._missing(oid) from exc

    def get(self, oid: ObjectId) -> bytes:
        try:
            return self.path(oid).read_bytes()
        except FileNotFoundError as exc:
            raise self._missing(oid) from exc

    def _missing(self, oid: ObjectId) -> ObjectNotFound:
        return ObjectNotFound(
            f"Object {oid} is indexed but its file {self.path(oid)} is missing; "
            "run `cafstore fsck` to see what is affected."
        )

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

    # -- optional capabilities, done the local way -------------------------
    def stray_temp_files(self, older_than: float = 0.0) -> list[Path]:
        """Temp files left by writers that died; ``older_than`` seconds protects live writers."""
        return files_older_than(self.tmp, older_than)

    @contextlib.contextmanager
    def reading(self, oid: ObjectId) -> Iterator[memoryview]:
        """A read-only map of the file, unmapped on exit (no private pages to account for)."""
        try:
            with open(self.path(oid), "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError as exc:
            raise self._missing(oid) from exc
        view = memoryview(mapped)
        try:
            yield view
        finally:
            view.release()
            mapped.close()

    def read_into(self, oid: ObjectId, target: memoryview) -> int:
        """``preadv`` straight into ``target``: a chunk is copied once, from the page cache."""
        try:
            fd = os.open(self.path(oid), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"chunk {oid} missing") from exc
        try:
            actual = os.fstat(fd).st_size
            if actual != target.nbytes:
                return actual
            total = 0
            while total < actual:
                got = os.preadv(fd, [target[total:]], total)
                if got == 0:
                    break
                total += got
            return total
        finally:
            os.close(fd)

    def remove_if_older(self, oid: ObjectId, cutoff: float) -> int:
        """Rename the file aside first, then check its mtime: a file a writer replaced after
        gc's index commit is young, and is linked back, so no window loses a fresh write."""
        path = self.path(oid)
        trash = self.tmp / f"gc-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return 0
        stat = os.stat(trash)
        if stat.st_mtime >= cutoff:
            try:
                os.link(trash, path)
            except FileExistsError:
                pass
            os.unlink(trash)
            return 0
        os.unlink(trash)
        return stat.st_size

    def quarantine(self, oid: ObjectId, destination: Path) -> bool:
        """Move the file itself (no copy) to ``destination``."""
        import shutil  # rare (fsck --repair): not worth its import on every start

        source = self.path(oid)
        if not source.exists():
            return False
        shutil.move(str(source), str(destination))
        return True


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _os_error(action: str, oid: ObjectId, exc: OSError) -> StoreError:
    if exc.errno in _DISK_FULL:
        return StorageFull.disk_full(f"{action} object {oid.short}", str(exc.strerror))
    if exc.errno in _READ_ONLY:
        return StoreReadOnly(
            f"Could not {action} object {oid.short}: the store's files cannot be written here "
            f"({exc.strerror}: {exc.filename or ''}). The store can still be read; write to it as a user "
            "who may, or from a mount that is not read-only."
        )
    return StoreError(f"Could not {action} object {oid.short}: {exc.strerror or exc} ({exc.filename or ''}).")
