"""The objects a run reaches in the local store: what a push must make sure the remote holds.

Run ref -> records (task records, the graph) -> artifacts, logs, code, and
further records (parents, earlier attempts) through their ``{"$oid"}``
references. A chunked object travels as its whole bytes (the receiving
store chunks it again by its own settings), so chunks are never visited.
"""

from __future__ import annotations

from typing import Any, Iterable

from cafstore.exception import CafstoreError, RemoteError
from cafstore.store import records
from cafstore.store.index import ENCODING_RECORD, LOCATION_INLINE
from cafstore.store.objectid import ObjectId


def closure(store: Any, roots: Iterable[ObjectId], run: str) -> dict:
    """{ObjectId: (encoding, size)} of every object reachable from ``roots``; a RemoteError naming the
    run and the object if one is missing (a run that lost data is not pushed: fsck/repair first)."""
    index = store.index
    out: dict = {}
    stack = [ObjectId(r) for r in roots]
    with index.read() as txn:
        while stack:
            oid = stack.pop()
            if oid in out:
                continue
            meta = index.object_meta(txn, oid.digest)
            if meta is None:
                raise RemoteError(
                    f"Run {run} cannot be pushed: object {oid} it uses is missing from the local store. "
                    "Run `cafstore fsck` to see what it lost; nothing of the run was pushed."
                )
            location, encoding, size = meta[0], meta[1], meta[2]
            out[oid] = (encoding, size)
            if encoding == ENCODING_RECORD and location == LOCATION_INLINE:
                payload = index.inline_bytes(txn, oid.digest)
                try:
                    stack.extend(records.referenced_ids(records.decode_record(payload or b"")))
                except (CafstoreError, ValueError) as exc:
                    raise RemoteError(f"Run {run} cannot be pushed: its record {oid} is damaged ({exc}).") from exc
    return out


def roots_of(meta: dict, tasks: dict) -> list:
    """The objects a run's refs point at: the run ref's own (code, graph, parameters) and the task records."""
    return list(records.referenced_ids(meta)) + list(tasks.values())
