"""An S3 remote: ``s3://BUCKET/PREFIX``, with the S3 blob backend's client settings and error mapping.

The client (botocore's "standard" retries with backoff, timeouts, pool size)
and the translation of botocore failures into store errors with their fix
are the S3 backend's (cafstore/store/backends/s3config.py, s3errors.py): a remote
and a store's blobs in the same bucket fail, retry and explain the same way.
The endpoint is the ``--endpoint-url`` recorded by ``remote add``, else
``AWS_ENDPOINT_URL``, else AWS; credentials come from the standard AWS chain.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypeVar

from cafstore.exception import ObjectNotFound, RemoteError, RemoteUnreachable
from cafstore.remote.transport import Listed, RemoteMissing, Transport
from cafstore.store.objectid import ObjectId, new_hasher

T = TypeVar("T")
MULTIPART_THRESHOLD = 64 << 20
PART_SIZE = 16 << 20
CONCURRENCY = 8


class _ViewReader(io.RawIOBase):
    """A seekable file over a memoryview, so boto3 streams a mapped object without copying it whole."""

    def __init__(self, view: memoryview) -> None:
        self._view, self._pos = view, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._view.nbytes - self._pos)
        buffer[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._view.nbytes}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


class _HashingWriter:
    """A write-only, not seekable file: boto3 then writes the parts of a download in order."""

    def __init__(self, out: Any, hasher: Any) -> None:
        self._out, self._hasher = out, hasher

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        return self._out.write(data)


class S3Transport(Transport):
    def __init__(self, url: str, endpoint_url: Optional[str], cache_dir: Optional[Path]) -> None:
        import importlib.util

        from cafstore.store.backends.s3config import parse_url

        if importlib.util.find_spec("boto3") is None:
            raise RemoteError(
                f"The remote {url} is in S3, which needs boto3 (not installed here): pip install 'cafstore[s3]'."
            )

        self.url = url
        self.bucket, self.prefix = parse_url(url)
        self.endpoint_url = endpoint_url
        del cache_dir  # nothing of an S3 remote is cached on disk beyond what RemoteCache keeps
        self._session: Any = None  # one boto3 session: check()'s client costs ~10 ms from it, a new one ~0.1-0.7 s
        self._client: Any = None
        self._lock = threading.Lock()

    def _new_client(self, attempts: int) -> Any:
        """A client as the S3 blob backend makes its own (retries, timeouts, pool size: s3config)."""
        import boto3

        from cafstore.store.backends import s3config

        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session()
            return s3config.new_client(self.endpoint_url, None, CONCURRENCY, attempts, self._session)

    @property
    def client(self) -> Any:
        if self._client is None:
            from cafstore.store.backends import s3config

            client = self._new_client(s3config.RETRY_ATTEMPTS)
            with self._lock:
                if self._client is None:
                    self._client = client
        return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def check(self) -> None:
        """A server that is down is reported in seconds: this probe tries twice, where a transfer's
        requests retry with backoff for about a minute (a server that stops mid-transfer may come back,
        and the transfer then goes on)."""
        quick = self._new_client(2)
        try:
            self._call(
                "list the remote",
                lambda: quick.list_objects_v2(Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1),
            )
        finally:
            quick.close()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        import botocore.exceptions as bex
        from s3transfer.exceptions import RetriesExceededError

        from cafstore.store.backends.s3errors import translate

        endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "AWS"
        try:
            return fn()
        except RetriesExceededError as exc:  # boto3's download gave up: every try lost the connection
            raise self._unreachable(action, endpoint, exc.last_exception) from exc
        except (  # a server that is down, or stopped in the middle of a request (after botocore's retries)
            bex.EndpointConnectionError,
            bex.ConnectTimeoutError,
            bex.ConnectionClosedError,
            bex.ReadTimeoutError,
            bex.IncompleteReadError,
            bex.ResponseStreamingError,
        ) as exc:
            raise self._unreachable(action, endpoint, exc) from exc
        except (bex.BotoCoreError, bex.ClientError) as exc:
            error = translate(exc, action, self.url, endpoint)
            if isinstance(error, ObjectNotFound):
                raise RemoteMissing(f"Could not {action}: it is missing from the remote {self.url}.") from exc
            raise error from exc

    def _unreachable(self, action: str, endpoint: str, exc: BaseException) -> RemoteUnreachable:
        remote = f"{self.name} ({self.url})" if self.name else self.url
        return RemoteUnreachable(
            f"Could not {action}: the server of the remote {remote} at {endpoint} cannot be reached or stopped "
            f"answering ({exc}). Check that it is running and that the endpoint is right (the --endpoint-url "
            "given to `cafstore remote add`, else AWS_ENDPOINT_URL). What was transferred whole is kept and "
            "nothing half-transferred was stored: run the command again once the server answers to complete it."
        )

    def put_if_absent(self, key: str, data: bytes) -> bool:
        import botocore.exceptions as bex

        from cafstore.store.backends.s3errors import error_code, http_status

        def put() -> bool:
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
            except bex.ClientError as exc:
                if http_status(exc) == 412 or error_code(exc) == "PreconditionFailed":
                    return False
                raise
            return True

        return self._call(f"write {key}", put)

    def put(self, key: str, data: "bytes | memoryview") -> None:
        body = data if isinstance(data, bytes) else bytes(data)
        self._call(f"write {key}", lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body))

    def put_large(self, key: str, view: memoryview) -> None:
        if view.nbytes < MULTIPART_THRESHOLD:
            self.put(key, view)
            return
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE, max_concurrency=CONCURRENCY
        )
        self._call(
            f"write {key}",
            lambda: self.client.upload_fileobj(_ViewReader(view), self.bucket, self._key(key), Config=config),
        )

    def get(self, key: str) -> bytes:
        return self._call(
            f"read {key}", lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        )

    def download_hashed(self, key: str, destination: Path, size: int) -> ObjectId:
        """boto3's parallel ranged download, its parts handed over in order to a writer that hashes
        each one as it writes it: the hash overlaps the download instead of following it (measured
        as fast as a plain ``download_file``; hashing afterwards cost a second pass)."""
        from boto3.s3.transfer import TransferConfig

        hasher = new_hasher(size)
        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_SIZE, max_concurrency=CONCURRENCY
        )
        with open(destination, "wb") as out:
            writer = _HashingWriter(out, hasher)
            self._call(
                f"read {key}",
                lambda: self.client.download_fileobj(self.bucket, self._key(key), writer, Config=config),
            )
        return ObjectId(hasher.digest())

    def list(self, prefix: str) -> Iterator[Listed]:
        full = self._key(prefix)
        cut = len(self._key(""))

        def pages() -> list:
            return list(self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full))

        for page in self._call(f"list {prefix or 'the remote'}", pages):
            for item in page.get("Contents", ()):
                yield Listed(item["Key"][cut:], int(item["Size"]), item["LastModified"].timestamp())

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(key)))
