"""A bounded, content-addressed local read cache for a remote blob backend.

Remote blobs are immutable and named by their blake3 id, so a local copy is
never stale: a re-read costs no network, and ``open()`` can still hand out a
copy-on-write memory map of a local file exactly as the local backend does.
Files enter only whole and verified (downloaded to a temp name, hashed,
renamed in); the cache is evicted least-recently-used (a read touches the
file's mtime) once it holds more than ``limit`` bytes.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import uuid
from pathlib import Path
from typing import Optional

from cafstore.store.objectid import ObjectId


class ReadCache:
    """Files ``<directory>/<oid>``, at most ``limit`` bytes in all (0: keep nothing once read)."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = Path(directory)
        self.limit = int(limit)

    def path(self, oid: ObjectId) -> Path:
        return self.directory / str(oid)

    def temp_path(self) -> Path:
        """A fresh name inside the cache directory, so that adding it is one rename."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"

    def lookup(self, oid: ObjectId) -> Optional[Path]:
        """The cached file of ``oid``, marked as just used, or None."""
        path = self.path(oid)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def add(self, oid: ObjectId, temp: Path) -> Path:
        """Move the verified file ``temp`` in as ``oid``'s copy, then evict down to the limit."""
        path = self.path(oid)
        os.chmod(temp, 0o444)
        os.replace(temp, path)
        self.evict(keep=path)
        return path

    def discard(self, oid: ObjectId) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(oid))

    def evict(self, keep: Optional[Path] = None) -> int:
        """Remove least-recently-used files until the cache holds at most ``limit`` bytes; bytes freed.

        ``keep`` (the file just added) goes last, so a blob larger than the
        whole cache can still be opened once. A mapped file that is evicted
        stays readable by whoever mapped it (POSIX unlink semantics).
        """
        entries = []
        total = 0
        for entry in self.directory.iterdir() if self.directory.is_dir() else ():
            if entry.name.startswith(".tmp-"):
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            total += stat.st_size
            entries.append((entry == keep, stat.st_mtime, stat.st_size, entry))
        freed = 0
        for _, _, size, entry in sorted(entries, key=lambda item: (item[0], item[1])):
            if total - freed <= self.limit or entry == keep:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry)
                freed += size
        return freed


def map_private(path: Path) -> memoryview:
    """A copy-on-write map of ``path`` (an empty buffer for an empty file)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return memoryview(bytearray())
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY))
