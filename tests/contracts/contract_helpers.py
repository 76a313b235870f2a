"""Helpers of the contract suites (fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from cafstore.store import StoreConfig
from cafstore.store.backends import BlobBackend, backend_class

# Small thresholds so that every storage path (inline, file, chunked) runs on little data.
INLINE = 256
CONFIG = StoreConfig(inline_threshold=INLINE, durable=False)


def build_backend(name: str, root: Path, config: StoreConfig = CONFIG) -> BlobBackend:
    """The backend ``name`` for a store at ``root``, as the store's settings would build it."""
    root.mkdir(parents=True, exist_ok=True)
    return backend_class(name).from_settings(root, config, {})
