"""Blob backends: where large objects' bytes live, chosen by name.

``BACKENDS`` is the registry: a name, as written in a store's settings
(``store.json``, see ``cafstore/store/settings.py``), mapped to its
``BlobBackend`` subclass or to a ``"module:Class"`` string that is imported
only when a store uses it (so a backend with a heavy client library costs
nothing to stores that don't). A new backend is one module in this package
plus one entry here; ``open_backend`` builds it for every process that opens
the store, and the contract suite (tests/contracts) picks it up from this dict.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping, Union

from cafstore.exception import StoreError
from cafstore.store.backends.base import BlobBackend
from cafstore.store.backends.local import LocalBlobBackend
from cafstore.store.backends.memory import MemoryBlobBackend

DEFAULT_BACKEND = "local"
BACKENDS: dict[str, Union[str, type[BlobBackend]]] = {
    "local": LocalBlobBackend,
    "memory": MemoryBlobBackend,
    "s3": "cafstore.store.backends.s3:S3BlobBackend",
}


def backend_class(name: str) -> type[BlobBackend]:
    """The class registered as ``name``; a StoreError naming the known ones otherwise."""
    entry = BACKENDS.get(name)
    if entry is None:
        raise StoreError(f"Unknown blob backend {name!r}: this cafstore knows {', '.join(sorted(BACKENDS))}.")
    if isinstance(entry, str):
        module, _, attribute = entry.partition(":")
        try:
            entry = getattr(importlib.import_module(module), attribute)
        except ImportError as exc:
            raise StoreError(
                f"The {name!r} blob backend needs a package that is not installed ({exc.name or exc}); "
                f"install the extra that provides it, e.g. pip install 'cafstore[{name}]'."
            ) from exc
        BACKENDS[name] = entry  # resolved once per process
    return entry


def shared_backend_class(name: str) -> type[BlobBackend]:
    """The class registered as ``name``, if a store's settings may choose it.

    Only shared backends qualify: a per-process one (memory) would give each
    task process its own empty blobs, so it must be passed to
    ``Store(path, blobs=...)`` explicitly instead.
    """
    cls = backend_class(name)
    if not cls.shared:
        raise StoreError(
            f"The {name!r} blob backend lives inside one process, so a store's settings cannot "
            f"choose it (task processes would not see its blobs); pass it explicitly: "
            f"Store(path, blobs={cls.__name__}())."
        )
    return cls


def open_backend(root: Path, name: str, options: Mapping[str, Any], config: Any) -> BlobBackend:
    """The blob backend a store's settings choose, built the same way in every process that opens it."""
    return shared_backend_class(name).from_settings(Path(root), config, dict(options))


__all__ = [
    "BACKENDS",
    "BlobBackend",
    "DEFAULT_BACKEND",
    "LocalBlobBackend",
    "MemoryBlobBackend",
    "backend_class",
    "open_backend",
    "shared_backend_class",
]
