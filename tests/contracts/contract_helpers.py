"""Helpers of the contract suites (fixtures are in conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from cafstore.store import StoreConfig
from cafstore.store.backends import BlobBackend, backend_class

# Small thresholds so that every storage path (inline, file, chunked) runs on little data.
INLINE = 256
CONFIG = StoreConfig(inline_threshold=INLINE, durable=False)


def build_backend(name: str, root: Path, config: StoreConfig = CONFIG, options: Optional[dict] = None) -> BlobBackend:
    """The backend ``name`` for a store at ``root``, as the store's settings would build it
    (``options``: the backend's own, e.g. a bucket and prefix for S3)."""
    root.mkdir(parents=True, exist_ok=True)
    return backend_class(name).from_settings(root, config, options or {})


def rot(blobs: BlobBackend, oid, data: bytes) -> None:
    """Replace the stored bytes of ``oid`` with ``data`` (bit rot). Through the backend's own put where
    it overwrites; for S3, whose put never overwrites, by a raw PUT behind the store's back."""
    if type(blobs).__name__ == "S3BlobBackend":
        client, bucket, key = blobs.client, blobs.bucket, blobs.key(oid)  # type: ignore[attr-defined]
        client.put_object(Bucket=bucket, Key=key, Body=data)
        # An overwrite may be served from the server's own cache for a moment: wait until it is not.
        deadline = time.monotonic() + 10
        while client.get_object(Bucket=bucket, Key=key)["Body"].read() != data and time.monotonic() < deadline:
            time.sleep(0.05)
        blobs.cache.discard(oid)  # type: ignore[attr-defined]
    else:
        blobs.put_pieces(oid, [data], len(data))
