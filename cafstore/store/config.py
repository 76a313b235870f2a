"""Tunables of a store, in one object instead of module globals."""

from __future__ import annotations

import dataclasses
import os


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
    """

    inline_threshold: int = 32 * 1024
    initial_map_size: int = 1 << 30
    max_readers: int = 1024
    durable: bool = True  # fsync files and LMDB commits; tests of crash safety need it on
    copy_chunk: int = 4 << 20  # bytes per read/write when streaming files

    @classmethod
    def from_env(cls) -> "StoreConfig":
        """Defaults, with ``CAFSTORE_INLINE_THRESHOLD`` for experiments and benchmarks."""
        kwargs = {}
        threshold = os.environ.get("CAFSTORE_INLINE_THRESHOLD")
        if threshold:
            kwargs["inline_threshold"] = int(threshold)
        return cls(**kwargs)
