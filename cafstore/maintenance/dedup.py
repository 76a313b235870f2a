"""``cafstore dedup``: how much sharing saves, and re-chunking objects stored whole.

Three byte counts tell the story (docs/maintenance.md):

- *referenced* bytes: every reference from a ref, record or chunk list counts
  its object's full size -- what a store copying every artifact into every
  task would hold (Metaflow's datastore dedups whole objects too, so compare
  this with care);
- *logical* bytes: each distinct object once, at full size: what whole-object
  dedup alone would store;
- *physical* bytes: what is actually on disk (files) and in the index (inline
  objects, chunk lists).

``logical / physical`` is what chunk-level dedup adds on top of whole-object
dedup. Objects stored whole before chunking existed (or with chunking off)
gain nothing until ``rechunk_all`` converts them.
"""

from __future__ import annotations

import dataclasses
import heapq
from typing import Any, Callable, Optional

from cafstore.exception import CafstoreError
from cafstore.store import chunks, freshen, records
from cafstore.store.index import ENCODING_RECORD, LOCATION_CHUNKED, LOCATION_FILE
from cafstore.store.objectid import ObjectId, hash_bytes


@dataclasses.dataclass
class DedupReport:
    objects: int = 0
    chunked_objects: int = 0
    chunks: int = 0
    referenced_bytes: int = 0
    logical_bytes: int = 0
    physical_bytes: int = 0
    most_shared: list = dataclasses.field(default_factory=list)  # (oid, kind, size, references, bytes saved)
    whole_candidates: list = dataclasses.field(default_factory=list)  # (oid, size): large, stored whole
    rechunked: list = dataclasses.field(default_factory=list)  # (oid, physical bytes before, after)

    @property
    def ratio(self) -> float:
        return self.logical_bytes / self.physical_bytes if self.physical_bytes else 1.0

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["ratio"] = round(self.ratio, 4)
        return out


def analyse(store: Any, top: int = 10, threshold: Optional[int] = None) -> DedupReport:
    """Count bytes and references over the whole index (one read transaction, no directory scan)."""
    if threshold is None:
        threshold = store.config.chunk_threshold or 4 * store.config.chunk_size
    index = store.index
    report = DedupReport()
    refcount: dict = {}
    chunk_refs: dict = {}
    metas: dict = {}
    with index.read() as txn:
        for key, meta in index.iter_objects(txn):
            metas[key] = meta
            report.objects += 1
            if meta[0] == LOCATION_CHUNKED:
                report.chunked_objects += 1
                report.physical_bytes += len(index.inline_bytes(txn, key) or b"")
            else:
                report.physical_bytes += meta[2]
            if meta[0] == LOCATION_CHUNKED or meta[1] == ENCODING_RECORD:
                try:
                    kids = list(freshen.children(index, txn, ObjectId(key), meta))
                except (CafstoreError, ValueError):
                    continue  # fsck reports unreadable records; here they only count as bytes
                target = chunk_refs if meta[0] == LOCATION_CHUNKED else refcount
                for kid in kids:
                    target[kid.digest] = target.get(kid.digest, 0) + 1
        for _, raw in index.iter_raw_refs(txn):
            try:
                for kid in records.referenced_ids(records.decode(raw)):
                    refcount[kid.digest] = refcount.get(kid.digest, 0) + 1
            except (CafstoreError, ValueError):
                continue
    report.chunks = len(chunk_refs)
    for key, meta in metas.items():
        if key in chunk_refs and key not in refcount:
            continue  # a chunk: its bytes are part of the objects that list it
        report.logical_bytes += meta[2]
        if meta[0] == LOCATION_FILE and meta[2] >= threshold and meta[1] != ENCODING_RECORD:
            report.whole_candidates.append((ObjectId(key), meta[2]))
    for key, count in refcount.items():
        meta = metas.get(key)
        if meta is not None:
            report.referenced_bytes += meta[2] * count
    shared = []
    for table, kind in ((refcount, "object"), (chunk_refs, "chunk")):
        for key, count in table.items():
            meta = metas.get(key)
            if meta is not None and count > 1:
                size = meta[2]
                shared.append((size * (count - 1), str(ObjectId(key)), kind, size, count))
    report.most_shared = [
        (oid, kind, size, count, saved) for saved, oid, kind, size, count in heapq.nlargest(top, shared)
    ]
    return report


def sharing(store: Any, candidates: list) -> list:
    """(oid, size, bytes shared) per whole-stored candidate: bytes of its chunks that another
    candidate or an already chunked object also has. Reads each candidate once (cut + hash)."""
    chunker = chunks.Chunker.get(store.config.chunk_size)
    cut: dict = {}
    seen: dict = {}
    for oid, _size in candidates:
        with store.blobs.reading(oid) as view:
            spans = chunker.cut([view])
            cut[oid] = [(hash_bytes(span), span.nbytes) for span in spans]
            del spans
        for cid in {cid for cid, _ in cut[oid]}:
            seen[cid] = seen.get(cid, 0) + 1
    out = []
    index = store.index
    with index.read() as txn:
        for oid, size in candidates:
            shared = sum(n for cid, n in cut[oid] if seen[cid] > 1 or index.object_meta(txn, cid.digest) is not None)
            out.append((oid, size, shared))
    return out


def choose(store: Any, candidates: list, everything: bool = False, min_shared: float = 0.1) -> list:
    """Candidates worth converting: those sharing at least ``min_shared`` of their bytes (or all).

    A chunked object reads slower than a whole one (a copy instead of an mmap),
    so only objects that actually share bytes are converted by default.
    """
    if everything:
        return list(candidates)
    return [(oid, size) for oid, size, shared in sharing(store, candidates) if shared >= min_shared * size]


def rechunk_all(
    store: Any, candidates: list, dry_run: bool = False, on_each: Optional[Callable[[ObjectId, int], None]] = None
) -> list:
    """Convert each (oid, size) stored whole into chunks: [(oid, bytes before, bytes of new chunks)].

    ``dry_run`` converts nothing and reports None as the new bytes.
    """
    done = []
    for oid, size in candidates:
        added = None if dry_run else chunks.rechunk(store, oid)
        if dry_run or added is not None:
            done.append((oid, size, added))
        if on_each:
            on_each(oid, size)
    return done
