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

from cafstore.maintenance import strays
from cafstore.schema import runs_using
from cafstore.store.index import LOCATION_FILE, LOCATION_INLINE
from cafstore.store.objectid import ObjectId

__all__ = ["QUARANTINE", "RepairReport", "repair", "runs_using"]  # runs_using: where callers have always found it

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


def repair(store: Any, grace: float = 3600.0, report: Any = None) -> RepairReport:
    """Fix what can be fixed safely (see the module docstring); ``report``: a fresh FsckReport, if any."""
    store.check_writable()  # before the first file is moved: a read-only store says so, in one line
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
    out.quarantined = set_aside(store, sorted(set(fsck_report.bad_objects) - set(vanished)))
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


def set_aside(store: Any, oids: Iterable) -> list:
    """Move damaged objects out of the way, as ``fsck --repair`` does, for a caller that found them.

    A task run again because its stored data was damaged (runner/reuse)
    must not deduplicate against the bad copy: its corrupt bytes go to
    ``quarantine/`` and its index entry is dropped, so storing the same
    content again heals every run that uses it. Returns the ids set aside.
    """
    done = []
    for oid in map(ObjectId, oids):
        index = store.index
        with index.read() as txn:
            meta = index.object_meta(txn, oid.digest)
            data = index.inline_bytes(txn, oid.digest)
        if meta is None:
            continue
        _quarantine(store, oid, meta, data)
        if _drop_entry(store, oid, lambda meta, data: True):
            done.append(oid)
    return done
