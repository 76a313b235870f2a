"""Tunables of a store, in one object instead of module globals."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Optional, TypedDict


class _EnvOverrides(TypedDict, total=False):
    """The fields ``StoreConfig.from_env`` may take from the environment."""

    inline_threshold: int
    chunk_threshold: int


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
    # Chunk-level dedup (cafstore/store/chunks.py, docs/maintenance.md): values of at least
    # chunk_threshold bytes are cut into content-defined chunks averaging chunk_size bytes.
    # Off (0) by default: measured, chunked puts run at ~0.4-0.6x and warm reads at ~0.1x of
    # the whole-object path (a chunked read must copy; a whole object is a zero-copy mmap), so
    # `cafstore dedup` re-chunks similar objects offline instead. 4 MiB turns it on for puts.
    # freshen_after: a reused object older than this gets a new created time, so gc's grace
    # period protects it (keep it well below gc's --grace).
    chunk_threshold: int = 0
    chunk_size: int = 1 << 20
    freshen_after: float = 300.0
    blob_backend: Optional[str] = None
    blob_options: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    @classmethod
    def from_env(cls) -> "StoreConfig":
        """Defaults, with ``CAFSTORE_INLINE_THRESHOLD`` / ``CAFSTORE_CHUNK_THRESHOLD`` for experiments and benchmarks."""
        kwargs: _EnvOverrides = {}
        threshold = os.environ.get("CAFSTORE_INLINE_THRESHOLD")
        if threshold:
            kwargs["inline_threshold"] = int(threshold)
        chunking = os.environ.get("CAFSTORE_CHUNK_THRESHOLD")
        if chunking:
            kwargs["chunk_threshold"] = int(chunking)
        return cls(**kwargs)
