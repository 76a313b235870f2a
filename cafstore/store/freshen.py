"""Keeping reused objects young, so gc's grace period protects them too.

gc never sweeps an object created within its grace period. A writer that
stores bytes which already exist writes nothing (that is the dedup), so
without help an *old* unreachable object could be swept between the moment a
writer found it present and the moment the writer's record or ref starts to
reference it. Like Git freshening a loose object's mtime, a dedup hit on an
object older than ``StoreConfig.freshen_after`` rewrites its created time --
together with everything it reaches (chunks of a chunk list, referents of a
record) -- in one write transaction that also re-checks the object is still
there. gc re-reads created times inside its sweep transactions, so either the
writer's bump commits first (gc keeps the object) or gc's delete does (the
writer sees the object missing and writes it again).

Hits on young objects (the common case: parameters and inherited artifacts
inside one run) cost one read, nothing more.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from cafstore.exception import CafstoreError
from cafstore.store import records
from cafstore.store.index import ENCODING_RECORD, LOCATION_CHUNKED, Index
from cafstore.store.objectid import ObjectId


def children(index: Index, txn: Any, oid: ObjectId, meta: tuple) -> Iterator[ObjectId]:
    """Objects that ``oid`` refers to: a record's ObjectIds, a chunked object's chunks.

    This is the one edge function of the object graph; gc marks along it and
    fsck checks it. Raises (CafstoreError, ValueError) when the payload cannot
    be read or decoded.
    """
    location, encoding = meta[0], meta[1]
    if location != LOCATION_CHUNKED and encoding != ENCODING_RECORD:
        return iter(())
    payload = index.inline_bytes(txn, oid.digest)
    if payload is None:
        raise ValueError(f"the {'chunk list' if location == LOCATION_CHUNKED else 'record'} bytes are missing")
    return records.referenced_ids(records.decode_record(payload))


def known(store: Any, txn: Any, oid: ObjectId) -> bool:
    """Whether ``oid`` is stored; freshens it (and what it reaches) if it is old.

    ``txn``: the caller's write transaction, or None to use short ones.
    """
    index = store.index
    if txn is not None:
        meta = index.object_meta(txn, oid.digest)
        if meta is not None and _stale(store, meta):
            freshen(index, txn, oid, time.time(), store.config.freshen_after)
        return meta is not None
    with index.read() as read_txn:
        meta = index.object_meta(read_txn, oid.digest)
    if meta is None:
        return False
    if not _stale(store, meta):
        return True
    now = time.time()
    # Re-checked inside the write transaction: gc may have swept it since the read.
    return index.retrying(lambda t: freshen(index, t, oid, now, store.config.freshen_after))


def freshen(index: Index, txn: Any, oid: ObjectId, now: float, min_age: float) -> bool:
    """Set ``created = now`` on ``oid`` and everything it reaches that is older than ``min_age``.

    Returns False if ``oid`` is not indexed (any more). Referents that are
    missing or undecodable are left to fsck: freshening protects, it does not judge.
    """
    stack, seen, present = [oid], set(), None
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        meta = index.object_meta(txn, current.digest)
        if present is None:
            present = meta is not None
        if meta is None:
            continue
        if now - meta[3] > min_age:
            index.put_meta(txn, current.digest, (meta[0], meta[1], meta[2], now))
        try:
            stack.extend(children(index, txn, current, meta))
        except (CafstoreError, ValueError):
            continue  # an unreadable payload: fsck reports it, gc refuses to run on it
    return bool(present)


def _stale(store: Any, meta: tuple) -> bool:
    return time.time() - meta[3] > store.config.freshen_after
