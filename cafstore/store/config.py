"""Tunables of a store, in one object instead of module globals."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Optional, TypedDict


class _EnvOverrides(TypedDict, total=False):
    """The fields ``StoreConfig.from_env`` may take from the environment."""

    inline_threshold: int
    chunk_threshold: int
    chunk_similar_only: bool


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    """Knobs a store is opened with.

    ``inline_threshold``: objects up to this many bytes live inside LMDB, larger
    ones are files under ``objects/``. Measured on the reference machine
    (see docs/store.md): below ~32 KiB one LMDB put beats a file create + fsync +
    rename by 10-50x; above it LMDB overflow pages only copy bytes around.

    ``initial_map_size``: LMDB's address-space reservation. It is virtual memory
    only (the file grows as used), and the store doubles it on demand, so a
    user with free disk never sees MapFullError.

    ``blob_backend`` / ``blob_options``: where large objects' bytes live (a
    name in ``cafstore.store.backends.BACKENDS`` and that backend's options).
    Persisted with the store (``store.json``) when the store is created, so
    every process that later opens ``Store(path)`` -- task processes, spawned
    children, CLI commands -- builds the same backend. None (the default)
    means "whatever the store says", and local for a new store; naming a
    backend that differs from the store's is an error. Only backends every
    process can reach can be chosen here (local now, S3 later): the memory
    backend is per-process, so it is only usable as
    ``Store(path, blobs=MemoryBlobBackend())``.
    """

    inline_threshold: int = 32 * 1024
    initial_map_size: int = 1 << 30
    max_readers: int = 1024
    durable: bool = True  # fsync files and LMDB commits; tests of crash safety need it on
    # A second fsync per commit (LMDB's meta page) only guards the *last* transaction
    # against an OS crash or power loss; a killed process loses nothing without it.
    # Measured: 2.6 ms vs 7 ms per commit under load, and every task commits once.
    metasync: bool = False
    copy_chunk: int = 4 << 20  # bytes per read/write when streaming files
    # Chunk-level dedup (cafstore/store/chunks.py, similar.py, docs/maintenance.md): a value of at
    # least chunk_threshold bytes is cut into content-defined chunks averaging chunk_size bytes
    # when it resembles a value already stored (a sampled sketch of its content, looked up in
    # the index), and the stored one is re-chunked too; unique values stay whole, at full
    # speed (a chunked put runs at ~0.5x and a chunked read must copy where a whole object is
    # a zero-copy map). 0 turns chunking off; chunk_similar_only=False chunks every large value.
    # freshen_after: a reused object older than this gets a new created time, so gc's grace
    # period protects it (keep it well below gc's --grace).
    chunk_threshold: int = 4 << 20
    chunk_similar_only: bool = True
    chunk_size: int = 1 << 20
    freshen_after: float = 300.0
    blob_backend: Optional[str] = None
    blob_options: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    @classmethod
    def from_env(cls) -> "StoreConfig":
        """Defaults, with ``CAFSTORE_INLINE_THRESHOLD`` / ``CAFSTORE_CHUNK_THRESHOLD`` (0: chunking off) and
        ``CAFSTORE_CHUNK_ALL=1`` (chunk every large value, similar or not) for experiments and benchmarks."""
        kwargs: _EnvOverrides = {}
        threshold = os.environ.get("CAFSTORE_INLINE_THRESHOLD")
        if threshold:
            kwargs["inline_threshold"] = int(threshold)
        chunking = os.environ.get("CAFSTORE_CHUNK_THRESHOLD")
        if chunking:
            kwargs["chunk_threshold"] = int(chunking)
        if os.environ.get("CAFSTORE_CHUNK_ALL") == "1":
            kwargs["chunk_similar_only"] = False
        return cls(**kwargs)
