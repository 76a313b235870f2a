"""``fsck --repair`` and the question every corruption report must answer: which runs lost data?

fsck only reads. Repair does the few things that are safe to do without a
human: remove temp files of dead writers, drop index entries whose bytes are
gone, and move corrupt objects aside into ``quarantine/`` so that storing the
same content again (re-running the step) heals the store instead of
deduplicating against the bad copy. It never invents data, and the only refs
it deletes are task refs that belong to no run (``strays.py``): the runs
that lost data are *listed*, and the user decides (`cafstore rm Flow/N`, or
re-run / resume them).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable

from cafstore import schema
from cafstore.exception import CafstoreError
from cafstore.maintenance import strays
from cafstore.store import freshen, records
from cafstore.store.index import LOCATION_FILE, LOCATION_INLINE
from cafstore.store.objectid import ObjectId

QUARANTINE = "quarantine"


@dataclasses.dataclass
class RepairReport:
    removed_temp: list = dataclasses.field(default_factory=list)
    removed_entries: list = dataclasses.field(default_factory=list)  # ids whose bytes were gone
    quarantined: list = dataclasses.field(default_factory=list)  # ids of corrupt objects moved aside
    lost_runs: dict = dataclasses.field(default_factory=dict)  # "Flow/N" -> [damaged object ids]
    removed_refs: list = dataclasses.field(default_factory=list)  # task refs that belonged to no run

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _run_of(ref_name: str) -> "str | None":
    """``runs/F/0000000003`` or ``tasks/F/0000000003/...`` -> ``F/3``."""
    parsed = schema.parse_run_ref(ref_name) or schema.parse_task_ref(ref_name)
    return None if parsed is None else f"{parsed[0]}/{parsed[1]}"


def runs_using(store: Any, oids: Iterable = (), include_missing: bool = False) -> dict:
    """{"Flow/N": [object ids]} for every run whose run ref or task records reach one of ``oids``.

    Walks tasks/ and runs/ refs -> records -> artifacts and chunk lists, each
    object once (a memo of which targets it reaches), so naming the runs hit
    by a corrupt object costs one pass over the runs' records. With
    ``include_missing``, any object that is referenced but not indexed counts
    as a target too (how repair finds runs that lost data).
    """
    targets = {ObjectId(o).digest for o in oids}
    index = store.index
    memo: dict = {}
    out: dict = {}
    with index.read() as txn:

        def reach(root: bytes) -> frozenset:
            stack = [(root, False)]
            while stack:
                digest, expanded = stack.pop()
                if digest in memo:
                    continue
                meta = index.object_meta(txn, digest)
                if meta is None:
                    memo[digest] = frozenset([digest]) if include_missing or digest in targets else frozenset()
                    continue
                try:
                    kids = [c.digest for c in freshen.children(index, txn, ObjectId(digest), meta)]
                except (CafstoreError, ValueError):
                    kids = []
                if not expanded:
                    stack.append((digest, True))
                    stack.extend((k, False) for k in kids if k not in memo)
                    continue
                found = {digest} & targets
                for kid in kids:
                    found |= memo.get(kid, frozenset())
                memo[digest] = frozenset(found)
            return memo[root]

        for prefix in (schema.RUNS_PREFIX, schema.TASKS_PREFIX):
            for name, value in store.iter_refs(prefix):
                run = _run_of(name)
                if run is None:
                    continue
                hits: set = set()
                for oid in records.referenced_ids(value):
                    hits |= reach(oid.digest)
                if hits:
                    out.setdefault(run, set()).update(hits)
    return {run: sorted(ObjectId(d) for d in hits) for run, hits in sorted(out.items())}


def repair(store: Any, grace: float = 3600.0, report: Any = None) -> RepairReport:
    """Fix what can be fixed safely (see the module docstring); ``report``: a fresh FsckReport, if any."""
    fsck_report = report if report is not None else store.fsck()
    out = RepairReport()
    for temp in store.blobs.stray_temp_files(older_than=grace):
        try:
            os.unlink(temp)
            out.removed_temp.append(temp.name)
        except FileNotFoundError:
            continue
    vanished = [st.oid for st in store.iter_objects() if st.location == "file" and not store.blobs.exists(st.oid)]
    for oid in vanished:
        if _drop_entry(store, oid, lambda meta, data, oid=oid: not store.blobs.exists(oid)):
            out.removed_entries.append(oid)
    for oid in sorted(set(fsck_report.bad_objects) - set(vanished)):
        oid = ObjectId(oid)
        index = store.index
        with index.read() as txn:
            meta = index.object_meta(txn, oid.digest)
            data = index.inline_bytes(txn, oid.digest)
        if meta is None:
            continue
        _quarantine(store, oid, meta, data)
        if _drop_entry(store, oid, lambda meta, data: True):
            out.quarantined.append(oid)
    out.removed_refs = strays.remove(store, strays.find(store))
    damaged = set(out.quarantined) | set(out.removed_entries)
    out.lost_runs = {run: [str(o) for o in ids] for run, ids in runs_using(store, damaged, True).items()}
    return out


def _drop_entry(store: Any, oid: ObjectId, still_bad: Any) -> bool:
    index = store.index

    def body(txn: Any) -> bool:
        meta = index.object_meta(txn, oid.digest)
        if meta is None:
            return False
        if not still_bad(meta, index.inline_bytes(txn, oid.digest)):
            return False
        return index.delete_object(txn, oid.digest)

    return index.retrying(body)


def _quarantine(store: Any, oid: ObjectId, meta: tuple, data: "bytes | None") -> None:
    """Keep a corrupt object's bytes for a human to inspect, out of the store's way."""
    target = store.path / QUARANTINE
    target.mkdir(exist_ok=True)
    if meta[0] == LOCATION_FILE:
        store.blobs.quarantine(oid, target / str(oid))
    elif data is not None:
        suffix = ".inline" if meta[0] == LOCATION_INLINE else ".chunklist"
        (target / f"{oid}{suffix}").write_bytes(data)
