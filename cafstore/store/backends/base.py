"""The blob backend interface: immutable bytes by id, the one seam for where large objects live.

The index (LMDB) decides *whether* an object exists; a blob backend only
holds bytes by id. The required verbs are the ones an object store such as
S3 offers for immutable content-addressed keys (put-if-absent, get, exists,
delete, list), so a remote backend can replace the local directory without
the layers above noticing.

Maintenance (gc, repair, dedup) and chunked reads need a few more verbs.
They are *optional capabilities*: each has a generic default here, written
with the required verbs only, so a new backend works everywhere by
implementing the abstract methods; a backend overrides a default when it can
do better (the local directory renames files aside instead of racing a
delete, and reads chunk files straight into their target buffer).

Adding a backend: one module in this package with a ``BlobBackend``
subclass, plus one entry in ``BACKENDS`` (``backends/__init__.py``). The
contract suite in tests/contracts then runs the store over it unchanged.
"""

from __future__ import annotations

import abc
import contextlib
import time
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Optional

from cafstore.exception import ObjectNotFound
from cafstore.store.objectid import ObjectId


class BlobBackend(abc.ABC):
    """Immutable bytes by id. Every write is atomic: a blob is whole or absent.

    ``shared``: whether every process that opens the store reaches the same
    blobs through a backend built from the store's settings (``store.json``).
    Only shared backends may be chosen there; a per-process backend (memory)
    can only be handed to one ``Store`` object explicitly.
    """

    shared: ClassVar[bool] = True
    # Whether gc must delete a blob inside an index write transaction that re-checks the blob is
    # still unindexed: for a backend whose put-if-absent can report "already there" without
    # rewriting (S3), where an mtime check alone cannot see a writer reusing the blob.
    delete_under_index_lock: ClassVar[bool] = False
    # Whether the bytes live on another machine: fsck then checks every blob by one listing and
    # re-hashes a sample by download (``--remote-sample``) instead of reading each one.
    remote: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, root: Path, config: Any, options: Mapping[str, Any]) -> "BlobBackend":
        """The backend of the store at ``root``, built from its settings.

        ``config``: the store's ``StoreConfig``; ``options``: the backend's
        own options as persisted in ``store.json`` (JSON values).
        """

    # -- required verbs ----------------------------------------------------
    @abc.abstractmethod
    def put_pieces(self, oid: ObjectId, pieces: Iterable, size: int) -> None:
        """Store the concatenation of ``pieces`` (bytes-like) under ``oid``, durably."""

    @abc.abstractmethod
    def put_file(self, oid: ObjectId, path: Path) -> None:
        """Store the finished temp file ``path`` under ``oid``; the file is consumed."""

    @abc.abstractmethod
    def open(self, oid: ObjectId) -> memoryview:
        """A writable-but-private view of the blob: a step may modify what it loaded
        without touching the stored bytes (the local backend maps the file copy-on-write)."""

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
    def mtime(self, oid: ObjectId) -> float:
        """When the blob was last written (0.0 if absent): gc's grace period for unindexed blobs."""

    @abc.abstractmethod
    def new_temp_path(self) -> Path:
        """A fresh *local* path for streaming a blob whose id is not known yet
        (``Store.put_file``); ``put_file`` consumes it once the id is known."""

    # -- optional capabilities (generic defaults) --------------------------
    def stray_temp_files(self, older_than: float = 0.0) -> list[Path]:
        """Local temp files left by writers that died, untouched for ``older_than`` seconds.

        gc and repair unlink them; fsck lists them. A backend without local
        temp files has none.
        """
        return []

    @contextlib.contextmanager
    def reading(self, oid: ObjectId) -> Iterator[memoryview]:
        """A read-only view of the blob, valid inside the ``with`` block only.

        For passes over a whole blob (re-chunking, measuring sharing) that must
        not keep it in memory afterwards; the local backend maps the file and
        unmaps it on exit. Raises ObjectNotFound if absent.
        """
        yield self.open(oid)

    def read_into(self, oid: ObjectId, target: memoryview) -> int:
        """Copy the blob into ``target`` if it has exactly ``target.nbytes`` bytes.

        Returns the blob's size either way, so the caller can tell a truncated
        or overlong blob (corruption) from a good one. Raises ObjectNotFound.
        """
        data = self.open(oid)
        if data.nbytes == target.nbytes:
            target[:] = data
        return data.nbytes

    def open_checked(self, oid: ObjectId) -> tuple[memoryview, bool]:
        """``open(oid)``, and whether the backend itself hashed exactly these bytes to ``oid`` just now.

        A remote backend hashes a download as it lands (it must, before the
        bytes may enter its cache); the store's verified read then need not
        hash the same bytes a second time. A local read is never pre-checked.
        """
        return self.open(oid), False

    def get_checked(self, oid: ObjectId) -> tuple[bytes, bool]:
        """``get(oid)``, and whether the backend hashed exactly these bytes to ``oid`` just now
        (as ``open_checked``)."""
        return self.get(oid), False

    def warm(self) -> None:
        """Prepare, in a process about to fork task processes, what each of them would otherwise
        redo on its first read or write (a remote backend loads its client library here). Makes no
        request. A local backend has nothing to prepare."""
        return None

    def remove_if_older(self, oid: ObjectId, cutoff: float) -> int:
        """Delete the blob unless it was (re)written at or after ``cutoff``; bytes freed.

        gc calls this after its index commit: a writer that stored the same
        bytes again meanwhile must keep them. This default checks then deletes
        (a tiny race a backend with an atomic rename can close, as the local one does).
        """
        if self.mtime(oid) >= cutoff:
            return 0
        size = self.size(oid) or 0
        self.delete(oid)
        return size

    def confirm(self, oid: ObjectId) -> None:
        """Called once the index entry of a just-put ``oid`` is committed: make sure its bytes are there.

        A put that found the blob already present sent nothing; a gc that had
        unindexed it may have deleted it before our entry was committed. Such a
        backend re-checks here and stores the bytes again (gc re-checks the
        index under its write lock before each delete, so the entry now
        protects them). A backend whose put always writes has nothing to do.
        """
        return None

    def stored_sizes(self) -> dict:
        """``{oid: bytes}`` of every blob present (fsck of a remote backend: one listing, no reads)."""
        return {oid: self.size(oid) for oid in self.iter_ids()}

    def rehash_stored(self, oid: ObjectId) -> ObjectId:
        """The hash of the bytes the backend itself holds (not a local cached copy); ObjectNotFound if absent."""
        from cafstore.store.objectid import hash_bytes

        with self.reading(oid) as view:
            return hash_bytes(view)

    def abort_stale_uploads(self, older_than: float) -> int:
        """Abort uploads a dead writer left unfinished, started ``older_than`` seconds ago or more;
        how many (gc). A backend whose writes cannot be left half-done has none."""
        return 0

    def quarantine(self, oid: ObjectId, destination: Path) -> bool:
        """Move a corrupt blob's bytes out of the store to the local file ``destination``.

        ``fsck --repair`` keeps them for a human to inspect, and removes them
        from the store so that storing the same content again heals it
        instead of deduplicating against the bad copy. False if absent.
        """
        try:
            data = self.get(oid)
        except ObjectNotFound:
            return False
        destination.write_bytes(data)
        self.delete(oid)
        return True


def files_older_than(directory: Optional[Path], older_than: float) -> list[Path]:
    """Files in ``directory`` untouched for ``older_than`` seconds (none if it does not exist): how a
    backend with a local temp folder answers ``stray_temp_files`` without racing live writers."""
    if directory is None or not directory.is_dir():
        return []
    cutoff = time.time() - older_than
    found = []
    for entry in directory.iterdir():
        try:
            if entry.stat().st_mtime <= cutoff:
                found.append(entry)
        except FileNotFoundError:  # its writer finished (renamed it) or gc took it meanwhile
            continue
    return found
