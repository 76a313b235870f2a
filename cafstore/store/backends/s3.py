"""The S3 blob backend: large objects in an S3-compatible bucket, keyed by their blake3 id.

Content-addressed objects never change, which is what object stores do
well: a key is ``PREFIX/<id>``, a write is put-if-absent, nothing is updated
in place. The LMDB index stays local (it decides what exists); this module
only moves bytes. boto3 is imported here only, so a store without S3 blobs
never pays for it (``pip install 'cafstore[s3]'``).

- Writes: one ``PutObject`` with ``If-None-Match: *`` below
  ``multipart_threshold`` (a 412 means the object exists: nothing more to
  send), a parallel multipart upload above it after a HEAD check.
- Reads: through a bounded local read cache (readcache.py), verified by hash
  on arrival, so ``open()`` still memory-maps a local file.
- Retries: botocore's "standard" retry mode with backoff; errors become
  store errors with the fix in the message (s3errors.py).
- Endpoint: the ``endpoint_url`` option, else ``AWS_ENDPOINT_URL`` (read by
  botocore), else AWS. Credentials and region: the standard AWS chain.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Optional, TypeVar

from cafstore.exception import CorruptObject, ObjectNotFound, StoreError
from cafstore.store.backends.base import BlobBackend, files_older_than
from cafstore.store.backends.readcache import ReadCache, map_private
from cafstore.store.backends.s3config import (
    DEFAULT_CACHE_BYTES,
    DEFAULT_CONCURRENCY,
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    OPTIONS,
    RETRY_ATTEMPTS,
    new_client,
    options_from_url,
    warm_session,
)
from cafstore.store.backends.s3errors import error_code, http_status, translate
from cafstore.store.backends.s3parts import download_hashed, part_source, upload_parts
from cafstore.store.objectid import ObjectId, new_hasher

__all__ = ["S3BlobBackend", "options_from_url"]  # the latter for `cafstore init --blobs`

T = TypeVar("T")


class S3BlobBackend(BlobBackend):
    """Blobs as objects ``s3://bucket/prefix/<id>``, read through a local cache under the store directory."""

    delete_under_index_lock: ClassVar[bool] = True
    remote: ClassVar[bool] = True

    def __init__(self, root: Path, bucket: str, prefix: str = "", endpoint_url: Optional[str] = None,
                 region: Optional[str] = None, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 part_size: int = DEFAULT_PART_SIZE, multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
                 concurrency: int = DEFAULT_CONCURRENCY) -> None:  # fmt: skip
        self.root = Path(root)
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.endpoint_url, self.region = endpoint_url, region
        self.part_size, self.multipart_threshold, self.concurrency = part_size, multipart_threshold, concurrency
        self.tmp = self.root / "tmp"
        self.cache = ReadCache(self.root / "cache" / "s3", cache_bytes)
        self._client: Any = None
        self._client_pid = -1
        self._session: Any = None  # a warmed boto3 session (warm), shared by the clients of forked tasks
        self._forker: Optional[int] = None  # the process that forks tasks (it called warm), told of their need
        self._marks = self.root / "cache" / "s3-clients"  # <pid>: a child of pid made a client
        self._lock = threading.Lock()
        self._reused: dict[ObjectId, Any] = {}  # oid -> its bytes or local copy, until confirm()

    @classmethod
    def from_settings(cls, root: Path, config: Any, options: Mapping[str, Any]) -> "S3BlobBackend":
        """Options from store.json: bucket (required), prefix, endpoint_url, region, cache_bytes, part sizes."""
        unknown = set(options) - OPTIONS
        if unknown or not options.get("bucket"):
            raise StoreError(
                f"The s3 blob backend needs a 'bucket' option and knows {sorted(OPTIONS)}; the store's settings "
                f"give {sorted(options)}. Check store.json in {root} (made by `cafstore init PATH --blobs s3://BUCKET/PREFIX`)."
            )
        return cls(Path(root), **dict(options))

    # -- plumbing ----------------------------------------------------------
    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, oid: ObjectId) -> str:
        return f"{self.prefix}/{oid}" if self.prefix else str(oid)

    @property
    def client(self) -> Any:
        """This process's boto3 client (a client must not cross a fork: rebuilt in a child)."""
        if self._client is None or self._client_pid != os.getpid():
            with self._lock:
                if self._client is None or self._client_pid != os.getpid():
                    self._client = self._new_client(RETRY_ATTEMPTS)
                    self._client_pid = os.getpid()
        return self._client

    def _new_client(self, attempts: int) -> Any:
        if self._session is None and self._forker not in (None, os.getpid()):  # tell the forking parent
            with contextlib.suppress(OSError):  # its tasks need clients (a hint: only speed depends on it)
                self._marks.mkdir(parents=True, exist_ok=True)
                (self._marks / str(self._forker)).touch()
        return new_client(self.endpoint_url, self.region, self.concurrency, attempts, self._session)

    def warm(self) -> None:
        """Load boto3 and the S3 models here, once, for the task processes this process will fork --
        but only once one of them has needed a client (it leaves a mark for its parent). Measured: a
        warmed task makes its client in tens of milliseconds instead of about a second (8 tasks with
        200 KB artifacts: 2.6 s instead of 7.9 s), but every fork of the bigger process costs more (300
        trivial tasks: 12.7 s instead of 10.0 s), so a run whose artifacts stay small is left alone."""
        self._forker = os.getpid()
        mark = self._marks / str(self._forker)
        if self._session is None and mark.exists():
            self._session = warm_session(self.endpoint_url, self.region, self.concurrency)
            with contextlib.suppress(OSError):
                mark.unlink()

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """Run one S3 request; its failure becomes a store error naming ``action`` and the fix."""
        import botocore.exceptions as bex

        try:
            return fn()
        except (bex.BotoCoreError, bex.ClientError) as exc:
            endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "AWS"
            raise translate(exc, action, self.where, endpoint) from exc

    def check_reachable(self) -> None:
        """Raise the store error a first write would meet (credentials, endpoint, bucket), or return."""
        import botocore.exceptions as bex

        quick = self._new_client(2)  # a user waiting at `cafstore init` is told at once

        def head_bucket() -> None:
            try:
                quick.head_bucket(Bucket=self.bucket)
            except bex.ClientError as exc:
                if http_status(exc) == 404:  # HEAD has no body: a 404 on the bucket means it is missing
                    exc.response["Error"]["Code"] = "NoSuchBucket"
                raise

        self._call("use the bucket", head_bucket)

    def _head(self, oid: ObjectId) -> Optional[dict]:
        import botocore.exceptions as bex

        def head() -> Optional[dict]:
            try:
                return self.client.head_object(Bucket=self.bucket, Key=self.key(oid))
            except bex.ClientError as exc:
                if http_status(exc) == 404 or error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise

        return self._call(f"look up object {oid.short}", head)

    # -- writes ------------------------------------------------------------
    def new_temp_path(self) -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{os.getpid()}-{uuid.uuid4().hex}"

    def put_pieces(self, oid: ObjectId, pieces: Iterable, size: int) -> None:
        views = [memoryview(piece).cast("B") for piece in pieces]
        if size < self.multipart_threshold:
            self._put_small(oid, b"".join(views))
        else:
            self._put_large(oid, self.cache.temp_path(), size, views)

    def put_file(self, oid: ObjectId, path: Path) -> None:
        """Upload the finished temp file, which then becomes the cached copy (no re-download to read it)."""
        size = os.path.getsize(path)
        if size < self.multipart_threshold:
            try:
                body = Path(path).read_bytes()
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            self._put_small(oid, body)
            return
        temp = self.cache.temp_path()
        os.replace(path, temp)
        self._put_large(oid, temp, size, None)

    def _put_small(self, oid: ObjectId, body: bytes) -> None:
        """One PutObject, put-if-absent: a 412 means the object is there already (same id, same bytes)."""
        import botocore.exceptions as bex

        def put() -> None:
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key(oid), Body=body, IfNoneMatch="*")
            except bex.ClientError as exc:
                if http_status(exc) != 412 and error_code(exc) != "PreconditionFailed":
                    raise
                self._touch(oid)
                self._reused[oid] = body

        self._call(f"write object {oid.short}", put)

    def _put_large(self, oid: ObjectId, temp: Path, size: int, pieces: Optional[list]) -> None:
        """HEAD, then a parallel multipart upload if absent; ``temp`` becomes the cached copy.

        ``pieces``: the bytes in memory, sent from there part by part while
        each part is also written to ``temp``; None: ``temp`` holds them.
        """
        try:
            with part_source(temp, size, pieces) as read_part:
                if self._head(oid) is not None:
                    self._call(f"write object {oid.short}", lambda: self._touch(oid))
                    self._reused[oid] = self.cache.path(oid)  # the copy kept below
                    if pieces is not None:
                        for offset in range(0, size, self.part_size):
                            read_part(offset, min(self.part_size, size - offset))
                else:
                    # fmt: off
                    self._call(f"write object {oid.short}", lambda: upload_parts(
                        self.client, self.bucket, self.key(oid), size, read_part, self.part_size, self.concurrency,
                        label=f"uploading {oid.short}"))
                    # fmt: on
            self.cache.add(oid, temp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def confirm(self, oid: ObjectId) -> None:
        """If the put of ``oid`` found it present (sent nothing), check it survived until the index
        entry was committed, and upload it again if a gc deleted it in between."""
        kept = self._reused.pop(oid, None)
        if kept is None or self._head(oid) is not None:
            return
        if isinstance(kept, Path):
            temp = self.cache.temp_path()
            try:
                os.link(kept, temp)
            except FileNotFoundError as exc:
                raise StoreError(
                    f"Object {oid} was removed from {self.where} by a concurrent gc while being stored, and its "
                    "local copy is gone too; store the value again."
                ) from exc
            self.cache.discard(oid)
            self._put_large(oid, temp, os.path.getsize(temp), None)
        else:
            self._put_small(oid, kept)
        self._reused.pop(oid, None)

    def _touch(self, oid: ObjectId) -> None:
        """Make an existing object young again (a rewrite of the same bytes, like the local backend's
        replace), so a gc that has just unindexed it keeps it (its grace period, ``remove_if_older``)."""
        self.client.copy_object(
            Bucket=self.bucket,
            Key=self.key(oid),
            CopySource={"Bucket": self.bucket, "Key": self.key(oid)},
            MetadataDirective="REPLACE",
            Metadata={"cafstore-touched": repr(time.time())},
        )

    # -- reads -------------------------------------------------------------
    def _local(self, oid: ObjectId) -> tuple[Path, bool]:
        """The verified local copy of ``oid``, and whether it was downloaded (and so hashed) just now.

        From the cache, or downloaded in parallel parts hashed as they land
        (s3parts.py) and added to the cache only if it hashes to ``oid``.
        """
        cached = self.cache.lookup(oid)
        if cached is not None:
            return cached, False
        temp = self.cache.temp_path()
        try:
            # fmt: off
            got = self._call(f"read object {oid.short}", lambda: download_hashed(
                self.client, self.bucket, self.key(oid), temp, self.part_size, self.concurrency,
                label=f"downloading {oid.short}"))
            # fmt: on
            if got != oid:
                raise CorruptObject(
                    f"Object {oid} is corrupt in {self.where}: its bytes hash to {got.short}. "
                    "Run `cafstore fsck --remote-sample 0` to list every damaged object and the runs that use them.",
                    oid,
                )
            return self.cache.add(oid, temp), True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def open_checked(self, oid: ObjectId) -> tuple[memoryview, bool]:
        """A private map of the local copy; True if it was downloaded and hashed to ``oid`` just now, so
        the store need not hash it again (a copy already in the cache is hashed by the store's read)."""
        path, fresh = self._local(oid)
        try:
            return map_private(path), fresh
        except FileNotFoundError:  # evicted between download and map by another reader
            self.cache.discard(oid)
            path, fresh = self._local(oid)
            return map_private(path), fresh

    def open(self, oid: ObjectId) -> memoryview:
        return self.open_checked(oid)[0]

    def get_checked(self, oid: ObjectId) -> tuple[bytes, bool]:
        """The local copy's bytes, read (not mapped and copied); True if downloaded and hashed just now."""
        path, fresh = self._local(oid)
        try:
            return path.read_bytes(), fresh
        except FileNotFoundError:  # evicted between download and read by another reader
            self.cache.discard(oid)
            path, fresh = self._local(oid)
            return path.read_bytes(), fresh

    def get(self, oid: ObjectId) -> bytes:
        return self.get_checked(oid)[0]

    # -- metadata ----------------------------------------------------------
    def exists(self, oid: ObjectId) -> bool:
        return self._head(oid) is not None

    def size(self, oid: ObjectId) -> "int | None":
        head = self._head(oid)
        return None if head is None else int(head["ContentLength"])

    def mtime(self, oid: ObjectId) -> float:
        head = self._head(oid)
        return 0.0 if head is None else head["LastModified"].timestamp()

    def delete(self, oid: ObjectId) -> None:
        self.cache.discard(oid)
        self._call(
            f"delete object {oid.short}", lambda: self.client.delete_object(Bucket=self.bucket, Key=self.key(oid))
        )

    def stored_sizes(self) -> dict:
        """``{oid: bytes}`` of every object under the prefix, by paginated listing (1,000 keys a request)."""
        prefix = f"{self.prefix}/" if self.prefix else ""

        def pages() -> list:
            paginator = self.client.get_paginator("list_objects_v2")
            return list(paginator.paginate(Bucket=self.bucket, Prefix=prefix))

        found = {}
        for page in self._call("list objects", pages):
            for item in page.get("Contents", ()):
                name = item["Key"][len(prefix) :]
                if len(name) == 64 and "/" not in name:
                    with contextlib.suppress(ValueError):
                        found[ObjectId(name)] = int(item["Size"])
        return found

    def iter_ids(self) -> Iterator[ObjectId]:
        return iter(sorted(self.stored_sizes()))

    def rehash_stored(self, oid: ObjectId) -> ObjectId:
        """Download (streamed, not cached) and hash: what the bucket holds, whatever the cache has."""

        def rehash() -> ObjectId:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(oid))["Body"]
            hasher = new_hasher()
            for block in body.iter_chunks(8 << 20):
                hasher.update(block)
            return ObjectId(hasher.digest())

        return self._call(f"read object {oid.short}", rehash)

    # -- optional capabilities ---------------------------------------------
    def stray_temp_files(self, older_than: float = 0.0) -> list[Path]:
        strays = files_older_than(self.tmp, older_than)
        cutoff = time.time() - older_than
        for entry in self.cache.directory.glob(".tmp-*") if self.cache.directory.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime <= cutoff:
                    strays.append(entry)
        return strays

    @contextlib.contextmanager
    def reading(self, oid: ObjectId) -> Iterator[memoryview]:
        yield self.open(oid)

    def remove_if_older(self, oid: ObjectId, cutoff: float) -> int:
        """Delete the object unless it was (re)written at or after ``cutoff``; bytes freed.

        A writer that re-stored the same bytes touched the object (``_touch``),
        making it young; see docs/storage.md for the window that remains.
        """
        head = self._head(oid)
        if head is None or head["LastModified"].timestamp() >= cutoff:
            return 0
        self.cache.discard(oid)
        self._call(
            f"delete object {oid.short}",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=self.key(oid)),
        )
        return int(head["ContentLength"])

    def abort_stale_uploads(self, older_than: float) -> int:
        """Abort multipart uploads under the prefix started more than ``older_than`` seconds ago
        (left by a writer that died mid-upload); how many. Their parts cost storage until aborted."""
        prefix = f"{self.prefix}/" if self.prefix else ""
        cutoff = time.time() - older_than

        def abort() -> int:
            count = 0
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        count += 1
            return count

        return self._call("abort stale multipart uploads", abort)

    def quarantine(self, oid: ObjectId, destination: Path) -> bool:
        try:
            self.cache.discard(oid)  # the bad bytes themselves, not a verified cached copy
            data = self._call(
                f"read object {oid.short}",
                lambda: self.client.get_object(Bucket=self.bucket, Key=self.key(oid))["Body"].read(),
            )
        except ObjectNotFound:
            return False
        destination.write_bytes(data)
        self.delete(oid)
        return True
