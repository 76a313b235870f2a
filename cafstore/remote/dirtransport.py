"""A directory remote: a shared drive (or, in tests, a temp folder) laid out like a bucket.

Every write goes to ``tmp/`` first, is fsynced, then moved into place: a
content-addressed key by ``rename`` (same bytes whoever wins), a ref version
by ``link``, which fails if the name exists -- the directory's
put-if-absent, atomic on local file systems and NFS alike.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from cafstore.exception import RemoteError, StorageFull
from cafstore.remote.transport import Listed, RemoteMissing, Transport
from cafstore.store.durable import fsync_path
from cafstore.store.objectid import ObjectId, new_hasher

_COPY = 8 << 20


class DirTransport(Transport):
    """Keys are files under ``root``; ``tmp/`` holds writes in progress (gc removes stale ones)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def _fail(self, action: str, exc: OSError) -> "RemoteError | StorageFull":
        import errno

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFull(
                f"Could not {action} on the remote {self.root}: its disk is full ({exc.strerror}). Nothing was "
                "half-written; free space there (`cafstore gc --remote NAME`) and retry."
            )
        return RemoteError(f"Could not {action} on the remote {self.root}: {exc.strerror or exc}.")

    def _temp(self) -> Path:
        tmp = self.root / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail("create its tmp/ folder", exc) from exc
        return tmp / f"{os.getpid()}-{uuid.uuid4().hex}"

    def _write_temp(self, key: str, write: Callable[[BinaryIO], object]) -> Path:
        temp = self._temp()
        try:
            with open(temp, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            self._path(key).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise self._fail(f"write {key}", exc) from exc
        return temp

    def _finish(self, key: str, temp: Path, exclusive: bool) -> bool:
        target = self._path(key)
        try:
            if exclusive:
                try:
                    os.link(temp, target)
                except FileExistsError:
                    return False
                finally:
                    os.unlink(temp)
            else:
                os.replace(temp, target)
            fsync_path(target.parent, directory=True)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise self._fail(f"write {key}", exc) from exc
        return True

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._finish(key, self._write_temp(key, lambda out: out.write(data)), exclusive=True)

    def put(self, key: str, data: "bytes | memoryview") -> None:
        self._finish(key, self._write_temp(key, lambda out: out.write(data)), exclusive=False)

    def put_large(self, key: str, view: memoryview) -> None:
        def write(out: BinaryIO) -> None:
            for start in range(0, view.nbytes, _COPY):
                out.write(view[start : start + _COPY])

        self._finish(key, self._write_temp(key, write), exclusive=False)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise RemoteMissing(f"{key} is missing from the remote {self.root}.") from exc
        except OSError as exc:
            raise self._fail(f"read {key}", exc) from exc

    def download_hashed(self, key: str, destination: Path, size: int) -> ObjectId:
        """One pass: each block read is hashed and written."""
        hasher = new_hasher(size)
        try:
            with open(self._path(key), "rb") as source, open(destination, "wb") as out:
                for block in iter(lambda: source.read(_COPY), b""):
                    hasher.update(block)
                    out.write(block)
        except FileNotFoundError as exc:
            if not self._path(key).exists():
                raise RemoteMissing(f"{key} is missing from the remote {self.root}.") from exc
            raise self._fail(f"read {key}", exc) from exc
        except OSError as exc:
            raise self._fail(f"read {key}", exc) from exc
        return ObjectId(hasher.digest())

    def list(self, prefix: str) -> Iterator[Listed]:
        base = self._path(prefix)
        if not base.is_dir():  # an empty remote (a push creates the folders); pull calls check() first
            return
        for folder, _dirs, files in os.walk(base):
            for name in files:
                path = Path(folder) / name
                with contextlib.suppress(FileNotFoundError):
                    st = path.stat()
                    yield Listed(path.relative_to(self.root).as_posix(), st.st_size, st.st_mtime)

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._fail(f"delete {key}", exc) from exc

    def check(self) -> None:
        if not self.root.is_dir():
            raise RemoteError(
                f"The remote directory {self.root} does not exist (or is not a directory). Create it first "
                "(`mkdir -p`), or give the path of an existing shared folder."
            )
