"""Damaged refs: found by ``fsck``, moved aside by ``fsck --repair``, never a reason to stop.

A ref is damaged when its value does not decode, or when one of cafstore's
refs does not fit the data model (``cafstore.schema.ref_problem``: a run ref
describing another run, an unknown status, a task ref whose value is not a
record id) or points at the wrong thing (a task ref at something other than
a task record of its flow and step). Refs outside cafstore's prefixes belong
to someone else and are judged only on decoding.

Repair moves each damaged ref to ``damaged/<name>`` -- with a damaged run
ref, the run's task and pin refs go along, so nothing is left pointing at a
run that no longer lists. The value there keeps the original bytes (as text,
or base64 when they are not UTF-8), what was wrong, when it was moved, and
every object id found in the bytes that the store holds: gc keeps those
reachable, so moving a ref aside never lets gc delete what it named (fail
closed). The client and gc's retention never look under ``damaged/``; a
user who can repair the value by hand can put it back with the store API.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import time
from typing import Any, List, Optional

from cafstore import schema
from cafstore.exception import CafstoreError
from cafstore.store import ObjectId, hash_bytes

_HEX_ID = re.compile(rb"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class BadRef:
    name: str
    problem: str
    raw: bytes

    @property
    def run(self) -> Optional[str]:
        return schema.run_of_ref(self.name)

    def line(self) -> str:
        return f"ref {self.name!r} is damaged: {self.problem}" + (f" (run {self.run})" if self.run else "")


def find(store: Any) -> List[BadRef]:
    """Every damaged ref of the store (one pass over the refs; task refs also read their record)."""
    out = []
    for name, raw in store.iter_raw_refs(""):
        if name.startswith(schema.DAMAGED_PREFIX):
            continue
        value, problem = schema.read_ref(name, raw)
        if problem is None and name.startswith(schema.TASKS_PREFIX):
            problem = _task_target(store, name, value)
        if problem is not None:
            out.append(BadRef(name, problem, bytes(raw)))
    return out


def _task_target(store: Any, name: str, oid: ObjectId) -> Optional[str]:
    """Why a task ref's record is not a task of its flow and step; None if it is, or if it is
    missing or unreadable (lost data, which fsck and repair report as such)."""
    try:
        if store.stat(oid).encoding != "record":
            return f"it points at object {oid.short}, which is not a record"
        record = store.get_record(oid)
    except (CafstoreError, ValueError):
        return None
    flow, _run, step, _task = schema.parse_task_ref(name) or ("", 0, "", 0)
    if not isinstance(record, dict) or record.get("kind") != "task":
        return f"it points at record {oid.short}, which is not a task record"
    if record.get("flow") != flow or record.get("step") != step:
        return f"it points at a task of {record.get('flow')}/{record.get('step')}, not of {flow}/{step}"
    return None


@dataclasses.dataclass(frozen=True)
class Moved:
    name: str
    to: str
    problem: str
    run: Optional[str]
    followers: int  # task and pin refs of the same run moved with it

    def line(self) -> str:
        run = f"; run {self.run} is affected" if self.run else ""
        along = f" ({self.followers} task/pin ref(s) of the run moved with it)" if self.followers else ""
        return f"moved damaged ref {self.name!r} to {self.to!r} ({self.problem}){run}{along}"


def set_aside(store: Any, bad: List[BadRef]) -> List[Moved]:
    """Move each damaged ref to ``damaged/<name>`` (see the module docstring); what was moved.

    A ref that changed since it was judged is left alone (the next fsck judges it again).
    """
    moved = []
    for item in bad:
        run = schema.parse_run_ref(item.name)
        followers = []
        if run is not None:
            followers = [name for name, _ in store.iter_raw_refs(schema.tasks_prefix(*run))]
            if store.get_raw_ref(schema.pin_ref(*run)) is not None:
                followers.append(schema.pin_ref(*run))

        def body(txn: Any, item: BadRef = item, followers: list = followers) -> Optional[str]:
            if txn.get_raw_ref(item.name) != item.raw:
                return None
            target = _move(txn, item.name, item.raw, item.problem)
            for name in followers:
                raw = txn.get_raw_ref(name)
                if raw is not None:
                    _move(txn, name, raw, f"its run's ref {item.name!r} was damaged")
            return target

        target = store.atomically(body)
        if target is not None:
            moved.append(Moved(item.name, target, item.problem, item.run, len(followers)))
    return moved


def _move(txn: Any, name: str, raw: bytes, problem: str) -> str:
    target = schema.DAMAGED_PREFIX + name
    if len(target.encode("utf-8")) > 450:  # ref names are at most 500 bytes: name it by its hash
        target = schema.DAMAGED_PREFIX + str(hash_bytes(name.encode("utf-8")))
    number = 1
    while txn.get_raw_ref(target) is not None:  # the same name damaged before: keep both
        number += 1
        target = f"{schema.DAMAGED_PREFIX}{name}~{number}"
    try:
        original = {"text": raw.decode("utf-8")}
    except UnicodeDecodeError:
        original = {"base64": base64.b64encode(raw).decode("ascii")}
    found = sorted({ObjectId(m.decode("ascii")) for m in _HEX_ID.findall(raw)})
    txn.set_ref(
        target,
        {
            "ref": name,
            "problem": problem,
            "moved": time.time(),
            "original": original,
            "objects": [oid for oid in found if txn.has_object(oid)],  # gc keeps what it named
        },
    )
    txn.delete_ref(name)
    return target
