"""Where a remote's keys live: the few verbs push, pull and gc need, and the URL that picks them.

A remote is a flat space of keys (``refs/...``, ``packs/...``, ``objects/...``;
docs/remotes.md) holding immutable bytes. Every write here is whole or
absent; the one conditional write, ``put_if_absent``, is what the refs'
compare-and-swap is built on (``refcas.py``), so a transport needs nothing
an S3 bucket or a shared directory cannot do atomically: a PUT with
``If-None-Match: *``, or a hard link that fails if the name exists.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

from cafstore.exception import RemoteError
from cafstore.store.objectid import ObjectId


class Listed(NamedTuple):
    """One key of a listing: its name under the remote's root, its size and last write time."""

    key: str
    size: int
    mtime: float


class Transport(abc.ABC):
    """The verbs of one remote. Keys are ``/``-separated names under the remote's root."""

    url: str
    name: str = ""  # the remote's name in the store that opened it (``remote add NAME``), for messages

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write ``key`` only if no such key exists; False (and nothing written) if one does."""

    @abc.abstractmethod
    def put(self, key: str, data: "bytes | memoryview") -> None:
        """Write ``key`` atomically (whole or absent); used for content-addressed keys only,
        whose bytes are the same whoever writes them."""

    @abc.abstractmethod
    def put_large(self, key: str, view: memoryview) -> None:
        """``put`` for a large object: streamed (S3: a parallel multipart upload)."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes of ``key``; ``RemoteMissing`` if there is no such key."""

    @abc.abstractmethod
    def download_hashed(self, key: str, destination: Path, size: int) -> ObjectId:
        """Copy ``key`` (``size`` bytes) into the new file ``destination``; the blake3 of what arrived,
        hashed while the bytes arrive (a pull verifies every object: hashing afterwards is a second pass)."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[Listed]:
        """Every key under ``prefix`` (a folder-like prefix ending in ``/``), in no particular order."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a key that is gone is not an error."""

    def check(self) -> None:
        """Raise the error a first use would meet, or return, before a pull, clone or gc starts: a
        directory checks that it exists, S3 asks the server once or twice (a server that is down is
        then reported in seconds, not after the minute of retries each transfer request gets)."""
        return None

    def close(self) -> None:
        """Release the connections this transport holds (push, pull and gc close it when done: a
        process that syncs many times must not keep a pool of sockets per sync until the garbage
        collector finds it)."""
        return None


class RemoteMissing(RemoteError):
    """A key read from a remote is not there (removed between a listing and the read)."""

    headline = "missing on remote"


def open_transport(url: str, endpoint_url: Optional[str] = None, cache_dir: Optional[Path] = None) -> Transport:
    """The transport of ``url``: ``s3://BUCKET/PREFIX`` or a directory path (absolute, or ``file://``)."""
    if url.startswith("s3://"):
        from cafstore.remote.s3transport import S3Transport

        return S3Transport(url, endpoint_url, cache_dir)
    if "://" in url and not url.startswith("file://"):
        raise RemoteError(
            f"The remote URL {url!r} is of no known form: write s3://BUCKET/PREFIX for an S3 bucket, or the path "
            "of a directory (a shared drive) for a directory remote."
        )
    from cafstore.remote.dirtransport import DirTransport

    return DirTransport(Path(url[len("file://") :] if url.startswith("file://") else url))


def normalize_url(url: str) -> str:
    """What ``remote add`` records: an S3 URL as given (without a trailing slash), a directory made absolute."""
    if url.startswith("s3://"):
        from cafstore.store.backends.s3config import parse_url

        bucket, prefix = parse_url(url)  # a StoreError naming the form if there is no bucket
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if "://" in url and not url.startswith("file://"):
        open_transport(url)  # raises the message naming the forms
    path = url[len("file://") :] if url.startswith("file://") else url
    return os.path.abspath(os.path.expanduser(path))
