"""The content-addressed store: objects, records and refs (see docs/store.md)."""

from cafstore.store.blobs import BlobBackend, LocalBlobBackend
from cafstore.store.config import StoreConfig
from cafstore.store.fsck import FsckReport
from cafstore.store.objectid import ObjectId, hash_bytes
from cafstore.store.store import MISSING, ObjectStat, Store, Transaction

__all__ = ["BlobBackend", "FsckReport", "LocalBlobBackend", "MISSING", "ObjectId", "ObjectStat", "Store",
           "StoreConfig", "Transaction", "hash_bytes"]
