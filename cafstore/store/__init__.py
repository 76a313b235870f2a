"""The content-addressed store: objects, records and refs (see docs/store.md)."""

from cafstore.store.backends import BlobBackend, LocalBlobBackend, MemoryBlobBackend
from cafstore.store.config import StoreConfig
from cafstore.store.fsck import FsckReport
from cafstore.store.objectid import ObjectId, hash_bytes
from cafstore.store.refs import MISSING, Transaction
from cafstore.store.store import ObjectStat, Store

__all__ = [
    "BlobBackend",
    "FsckReport",
    "LocalBlobBackend",
    "MISSING",
    "MemoryBlobBackend",
    "ObjectId",
    "ObjectStat",
    "Store",
    "StoreConfig",
    "Transaction",
    "hash_bytes",
]
