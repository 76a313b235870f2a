"""Before a stored task stands in for a new one: are its data still there, and unchanged?

Resume and ``run --cache`` reuse a task by pointing the new run at its
record, without reading a byte of what it stored. If one of those objects
lost its file or had bytes changed on disk, the new run would "succeed" with
data that are not there. So every object the record holds as *this task's
data* -- its artifacts, stdout and stderr, its code and foreach values, and
the chunks of any of them stored in chunks -- is checked first
(cafstore/store/integrity.py: indexed, present with the right size, and
re-hashed). Its lineage (``parents``, ``previous_attempt``) is not: those are
other tasks, checked when they are reused themselves.

A damaged task is not reused: it runs again. Its damaged objects are set
aside first (to ``quarantine/``, as ``fsck --repair`` would), so that the
re-run stores its results afresh instead of deduplicating against the bad
copy -- which also heals every other run that used the same bytes.
"""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Tuple

from cafstore.exception import CafstoreError
from cafstore.maintenance.repair import set_aside
from cafstore.store import ObjectId
from cafstore.store.integrity import Checker, Damage
from cafstore.store.records import referenced_ids

LINEAGE = ("parents", "previous_attempt")


def task_objects(record: dict) -> Iterator[Tuple[str, ObjectId]]:
    """``(what, object id)`` for every object that is part of a task record's own data."""
    for name, oid in sorted((record.get("artifacts") or {}).items()):
        yield f"artifact {name!r}", ObjectId(oid)
    for field, value in sorted(record.items()):
        if field in LINEAGE or field == "artifacts":
            continue
        for oid in referenced_ids(value):
            yield field, oid


class IntegrityGate:
    """Says whether a stored task may be reused; sets aside what it finds damaged.

    One per run, so an object shared by many reused tasks (a large artifact
    every later step inherits) is hashed once.
    """

    def __init__(self, store: Any, rehash: bool = True) -> None:
        self.store = store
        self.checker = Checker(store, rehash=rehash)

    def damage(self, record: dict) -> Optional[str]:
        """None if the record's data are intact; else one line saying what is damaged (already set aside)."""
        labelled = list(task_objects(record))
        found: List[Damage] = self.checker.all_damage(oid for _, oid in labelled)
        if not found:
            return None
        bad = [oid for damage in found for oid in damage.bad]
        kept = ""
        try:
            set_aside(self.store, bad)
        except (CafstoreError, OSError) as exc:  # the task still runs; its results may dedup against the bad copy
            kept = f"; could not set the damaged objects aside ({exc}): run `cafstore fsck --repair`"
        self.checker.forget_damage()
        first = found[0]
        what = next(label for label, oid in labelled if oid == first.oid)
        more = f", and {len(found) - 1} more damaged object(s)" if len(found) > 1 else ""
        return f"{what}, {first.describe()}{more}{kept}"
