"""Parallel transfers of one large object in parts: ranged GETs hashed in order, multipart PUTs.

Why not boto3's transfer manager: a download through it lands in a file
that must then be read back to be hashed (the object is named by its
blake3 hash, and nothing unverified may enter the read cache), and an
upload from memory through it first needs a file. Here a download writes
each part at its offset in one preallocated file while the calling thread
hashes the parts in order from a map of that same file as they complete:
the bytes are hashed once, from the very pages later handed to readers,
with no extra copy. An upload sends parts straight from the caller's buffers
(or the file) and writes the cache copy at the same time.

Part size and concurrency come from the backend's options (measured with
benchmarks/s3_transfer.py, docs/storage.md). Errors in a part's request are
retried by botocore's retry mode; an error while streaming a part's body
(connection reset, short read) re-requests that part a few times here, as
botocore cannot retry a body it has already handed over.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import itertools
import mmap
import os
import socket
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from cafstore.exception import StorageFull, StoreError
from cafstore.progress import Progress, for_object
from cafstore.store.backends.s3errors import error_code, http_status
from cafstore.store.objectid import ObjectId, new_hasher

# How many times one part's body is requested again after its stream broke.
PART_ATTEMPTS = 5
MAX_PARTS = 10_000
MIN_PART = 5 << 20
_READ_BLOCK = 1 << 20


def _stream_errors() -> tuple:
    """What breaks a part's body mid-stream (worth asking for the part again), as botocore and urllib3 name it."""
    import botocore.exceptions as bex
    import urllib3.exceptions as uex

    return (
        socket.timeout,
        ConnectionError,
        bex.IncompleteReadError,
        bex.ReadTimeoutError,
        bex.ResponseStreamingError,
        bex.ConnectionClosedError,
        uex.ProtocolError,
        uex.ReadTimeoutError,
    )


def _pwrite_all(fd: int, data: "bytes | memoryview", offset: int) -> None:
    view = memoryview(data)
    while view.nbytes:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _disk_full(exc: OSError, path: Path) -> Optional[StorageFull]:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull.disk_full(f"keep a local copy in {path.parent}", os.strerror(exc.errno))
    return None


def _preallocate(fd: int, size: int, path: Path) -> None:
    """Reserve ``size`` bytes for ``fd`` now, so a full disk says so before any byte travels."""
    try:
        if size:
            os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        raise (_disk_full(exc, path) or exc) from exc


def _content_total(response: dict) -> int:
    """The object's whole size from a ranged GET's ``Content-Range: bytes a-b/TOTAL`` (or its length
    when the server ignored the range and sent the whole object)."""
    content_range = response.get("ContentRange") or ""
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    return int(response["ContentLength"])


def download_hashed(client: Any, bucket: str, key: str, temp: Path, part_size: int, concurrency: int,
                    label: str = "") -> ObjectId:  # fmt: skip
    """Download ``bucket/key`` into the new file ``temp``; the id its bytes hash to (as written in the file).

    The first request asks for the first part and learns the size from its
    Content-Range; the other parts are requested in parallel. The file is
    fully allocated first, so a full disk fails here with ``StorageFull``
    rather than later. A large object shows a progress bar called ``label``
    (on a terminal, once the download has lasted a while: ``for_object``).
    """
    import botocore.exceptions as bex

    try:
        first = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{part_size - 1}")
    except bex.ClientError as exc:  # an empty object has no byte 0: "416 range not satisfiable"
        if http_status(exc) != 416 and error_code(exc) != "InvalidRange":
            raise
        first = client.get_object(Bucket=bucket, Key=key)
    total = _content_total(first)
    first_length = int(first["ContentLength"])
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _preallocate(fd, total, temp)
        bar = for_object(label, total) if label else None
        try:
            return _fetch_and_hash(
                client, bucket, key, fd, temp, first["Body"], first_length, total, part_size, concurrency, bar
            )
        finally:
            if bar is not None:
                bar.close()
    finally:
        os.close(fd)


def _fetch_and_hash(client: Any, bucket: str, key: str, fd: int, temp: Path, first_body: Any, first_length: int,
                    total: int, part_size: int, concurrency: int, bar: Optional[Progress]) -> ObjectId:  # fmt: skip
    retryable = _stream_errors()

    def write_body(body: Any, offset: int, length: int) -> None:
        position = offset
        try:
            for block in iter(lambda: body.read(_READ_BLOCK), b""):
                if position + len(block) > offset + length:
                    raise ConnectionError(f"the server sent more than the {length} bytes asked for")
                _pwrite_all(fd, block, position)
                position += len(block)
        except OSError as exc:
            full = _disk_full(exc, temp)
            if full is not None:
                raise full from exc
            raise
        if position != offset + length:
            raise ConnectionError(f"the server sent {position - offset} of {length} bytes")

    def fetch(offset: int, length: int, body: Any = None) -> None:
        for attempt in range(PART_ATTEMPTS):
            try:
                if body is None:
                    body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")[
                        "Body"
                    ]
                write_body(body, offset, length)
                return
            except retryable:
                if attempt == PART_ATTEMPTS - 1:
                    raise
                body = None

    parts = [(0, first_length)]
    parts += [(offset, min(part_size, total - offset)) for offset in range(first_length, total, part_size)]
    hasher = new_hasher(total)
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(parts))))
    try:
        futures = [pool.submit(fetch, 0, first_length, first_body)]
        futures += [pool.submit(fetch, offset, length) for offset, length in parts[1:]]
        if not total:
            futures[0].result()
            return ObjectId(hasher.digest())
        with mmap.mmap(fd, total, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                # In order, as parts land: the hash reads the pages just written (still in memory).
                for (offset, length), future in zip(parts, futures):
                    future.result()
                    hasher.update(view[offset : offset + length])
                    if bar is not None:
                        bar.update(offset + length)
            finally:
                view.release()
        return ObjectId(hasher.digest())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def part_source(path: Path, size: int, pieces: Optional[list]) -> Iterator[Callable[[int, int], bytes]]:
    """``read_part(offset, length)`` for an upload of ``size`` bytes.

    ``pieces`` None: the bytes are the file ``path``'s, read part by part.
    Otherwise they are the concatenation of ``pieces`` (memoryviews), and
    each part read is also written at its offset in the new file ``path``
    (allocated first, so a full disk fails at once): the local copy is made
    while the parts travel, not before.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if pieces is None:

            def read_part(offset: int, length: int) -> bytes:
                data = os.pread(fd, length, offset)
                if len(data) != length:
                    raise StoreError(f"{path} has {offset + len(data)} bytes, fewer than the {size} being stored.")
                return data

        else:
            _preallocate(fd, size, path)
            starts = list(itertools.accumulate((piece.nbytes for piece in pieces), initial=0))

            def read_part(offset: int, length: int) -> bytes:
                first = bisect.bisect_right(starts, offset) - 1
                slices, position = [], offset
                for index in range(first, len(pieces)):
                    if position >= offset + length:
                        break
                    begin = position - starts[index]
                    take = min(pieces[index].nbytes - begin, offset + length - position)
                    slices.append(pieces[index][begin : begin + take])
                    position += take
                data = b"".join(slices)
                try:
                    _pwrite_all(fd, data, offset)
                except OSError as exc:
                    raise (_disk_full(exc, path) or exc) from exc
                return data

        yield read_part
    finally:
        os.close(fd)


def upload_parts(client: Any, bucket: str, key: str, size: int, read_part: Callable[[int, int], bytes],
                 part_size: int, concurrency: int, label: str = "") -> None:  # fmt: skip
    """A multipart upload of ``size`` bytes, ``read_part(offset, length)`` giving each part's bytes
    (called in the worker threads, so it may also write them somewhere local meanwhile). A progress
    bar called ``label`` counts the parts' bytes as they are sent (drawn from this thread only).

    Aborted if any part fails, so no parts are left to cost storage; a
    writer killed before that leaves an upload that gc aborts later.
    """
    part_size = max(part_size, MIN_PART, -(-size // MAX_PARTS))  # S3's limits: 5 MiB parts, 10,000 of them
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    offsets = list(range(0, size, part_size))

    def send(number: int, offset: int) -> dict:
        body = read_part(offset, min(part_size, size - offset))
        sent = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": sent["ETag"]}

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(offsets)))) as pool:
            futures: list[Future] = [pool.submit(send, n, offset) for n, offset in enumerate(offsets, 1)]
            try:
                done = _collect(futures, part_size, size, for_object(label, size) if label else None)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
    except BaseException:
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def _collect(futures: list, part_size: int, size: int, bar: Optional[Progress]) -> list:
    """The parts' results in part order, waiting for each as it completes (not in order) so that a
    failed part stops the upload at once and a bar (drawn from this thread only) moves as parts land."""
    try:
        sent = 0
        for future in as_completed(futures):
            part = future.result()
            sent += min(part_size, size - (part["PartNumber"] - 1) * part_size)
            if bar is not None:
                bar.update(sent)
        return [future.result() for future in futures]
    finally:
        if bar is not None:
            bar.close()
