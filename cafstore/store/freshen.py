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
from cafstore.store.index import ENCODING_RECORD, LOCATION_CHUNKED, pack_meta, unpack_meta
from cafstore.store.objectid import ObjectId


def children(txn: Any, tables: dict, oid: ObjectId, meta: tuple) -> Iterator[ObjectId]:
    """Objects that ``oid`` refers to: a record's ObjectIds, a chunked object's chunks.

    This is the one edge function of the object graph; gc marks along it and
    fsck checks it. Raises (CafstoreError, ValueError) when the payload cannot
    be read or decoded.
    """
    location, encoding = meta[0], meta[1]
    if location != LOCATION_CHUNKED and encoding != ENCODING_RECORD:
        return iter(())
    payload = txn.get(oid.digest, db=tables["inline"])
    if payload is None:
        raise ValueError(f"the {'chunk list' if location == LOCATION_CHUNKED else 'record'} bytes are missing")
    return records.referenced_ids(records.decode_record(payload))


def known(store: Any, txn: Any, oid: ObjectId) -> bool:
    """Whether ``oid`` is stored; freshens it (and what it reaches) if it is old.

    ``txn``: the caller's write transaction, or None to use short ones.
    """
    tables = store._index.tables
    if txn is not None:
        raw = txn.get(oid.digest, db=tables["objects"])
        if raw is not None and _stale(store, raw):
            freshen(txn, tables, oid, time.time(), store.config.freshen_after)
        return raw is not None
    with store._index.read() as read_txn:
        raw = read_txn.get(oid.digest, db=tables["objects"])
    if raw is None:
        return False
    if not _stale(store, raw):
        return True
    now = time.time()
    # Re-checked inside the write transaction: gc may have swept it since the read.
    return store._index.retrying(lambda t: freshen(t, tables, oid, now, store.config.freshen_after))


def freshen(txn: Any, tables: dict, oid: ObjectId, now: float, min_age: float) -> bool:
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
        raw = txn.get(current.digest, db=tables["objects"])
        if present is None:
            present = raw is not None
        if raw is None:
            continue
        meta = unpack_meta(raw)
        if now - meta[3] > min_age:
            txn.put(current.digest, pack_meta(meta[0], meta[1], meta[2], now), db=tables["objects"])
        try:
            stack.extend(children(txn, tables, current, meta))
        except (CafstoreError, ValueError):
            continue  # an unreadable payload: fsck reports it, gc refuses to run on it
    return bool(present)


def _stale(store: Any, raw: bytes) -> bool:
    return time.time() - unpack_meta(raw)[3] > store.config.freshen_after
