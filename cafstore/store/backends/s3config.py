"""How an S3 blob backend is configured and connected: its options, ``s3://`` URLs, boto3 clients.

Kept apart from the backend's verbs (s3.py) so that what a user writes in
``store.json`` or on the command line, and how a process gets its client,
read as one page. boto3 is imported only when a client is made.
"""

from __future__ import annotations

from typing import Any, Optional

from cafstore.exception import StoreError

# Measured with benchmarks/s3_transfer.py (SeaweedFS on 127.0.0.1, docs/storage.md): on this 2-core
# machine no part size or thread count was clearly faster than another; these stay until a real
# network (larger latency) says otherwise.
DEFAULT_MULTIPART_THRESHOLD = 64 << 20
DEFAULT_PART_SIZE = 16 << 20
DEFAULT_CONCURRENCY = 8
DEFAULT_CACHE_BYTES = 8 << 30
# About a minute of backoff in all: rides out a server restart, fails a dead endpoint in finite time.
RETRY_ATTEMPTS = 10
OPTIONS = {
    "bucket",
    "prefix",
    "endpoint_url",
    "region",
    "cache_bytes",
    "part_size",
    "multipart_threshold",
    "concurrency",
}


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://BUCKET/PREFIX``; a StoreError naming the form otherwise."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise StoreError(f"{url!r} is not an S3 location: write it as s3://BUCKET or s3://BUCKET/PREFIX.")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def options_from_url(url: str, endpoint_url: Optional[str] = None, cache_bytes: Optional[int] = None) -> dict:
    """The options ``store.json`` records for ``cafstore init PATH --blobs s3://BUCKET/PREFIX``."""
    bucket, prefix = parse_url(url)
    options: dict = {"bucket": bucket, "prefix": prefix}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if cache_bytes is not None:
        options["cache_bytes"] = cache_bytes
    return options


def new_client(endpoint_url: Optional[str], region: Optional[str], concurrency: int, attempts: int,
               session: Any = None, **credentials: str) -> Any:  # fmt: skip
    """An S3 client with botocore's "standard" retry mode: exponential backoff with jitter (capped at
    20 s a wait) on throttling, 5xx and connection errors, ``attempts`` tries in all.

    ``session``: a boto3 session to build it from (``warm_session``), else a new one.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=5,
        read_timeout=120,
        max_pool_connections=max(10, concurrency * 2),
    )
    session = session or boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config, **credentials)


def warm_session(endpoint_url: Optional[str], region: Optional[str], concurrency: int) -> Any:
    """A boto3 session with everything a client needs already loaded (the S3 service model, endpoint
    rules, retry settings): built once in a process that forks tasks, it lets each task make its client
    in tens of milliseconds instead of importing boto3 and parsing those files itself (about a second
    on a busy 2-core machine, for every task that moves a large object).

    Makes no request: the throwaway client it builds to load them has placeholder credentials (the
    real ones are resolved by each task's own client, from the standard AWS chain).
    """
    import boto3

    session = boto3.session.Session()
    new_client(
        endpoint_url, region, concurrency, 1, session, aws_access_key_id="unused", aws_secret_access_key="unused"
    )
    return session
