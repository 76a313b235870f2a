"""Which runs gc may drop, and the run-level verbs around it: pin, unpin, rm, undelete.

gc itself only knows refs and objects; *runs* are the unit users think in, so
retention decides which run refs to drop before marking (the refs are
cafstore.schema's: ``runs/<Flow>/<run:010d>``, ``tasks/<Flow>/<run:010d>/...``,
``pins/<Flow>/<run:010d>``). The rules, in order:

- never a run still in progress: status ``running`` and its scheduler alive
  (``schema.scheduler_alive``: a run started on another host is assumed
  alive, we cannot check); a ``running`` run whose scheduler is gone (pid
  dead, a zombie, or reused by a younger process) crashed, and counts as
  finished-failed;
- never a pinned run, nor the origin of a run in progress (a resume reads it);
- a run marked deleted (``cafstore rm``) is dropped;
- otherwise, only when ``--keep-last`` or ``--older-than`` is given: a run is
  dropped when it is outside the last N of its flow *and* older than the
  duration (either option alone is the whole condition), unless it carries a
  user tag (``--include-tagged`` lifts that).

Dropping re-checks these rules inside the write transaction that deletes the
refs, so a run pinned or undeleted meanwhile survives.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any, Optional

from cafstore import schema
from cafstore.exception import CafstoreError, DamagedRef, MaintenanceArgumentError, NotFound
from cafstore.schema import pin_ref, run_ref
from cafstore.schema import tasks_prefix as task_prefix  # gc.py names a run's task refs through retention
from cafstore.store import records

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclasses.dataclass(frozen=True)
class Policy:
    """What the user asked gc to drop besides runs marked deleted."""

    keep_last: Optional[int] = None
    older_than: Optional[float] = None  # seconds
    flow: Optional[str] = None
    include_tagged: bool = False


@dataclasses.dataclass(frozen=True)
class Drop:
    flow: str
    run_id: int
    reason: str

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"


def parse_pathspec(text: str) -> tuple[str, int]:
    """``Flow/N`` -> (flow, N), with a message users can act on."""
    flow, _, run = text.strip().strip("/").partition("/")
    if not flow or not run.isdigit():
        raise MaintenanceArgumentError(f"{text!r} is not a run: write it as FlowName/RunNumber, e.g. HelloFlow/3.")
    return flow, int(run)


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` (a bare number is seconds) -> seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise MaintenanceArgumentError(f"{text!r} is not a duration: use a number with s, m, h, d or w, e.g. 30d.")
    return float(match.group(1)) * _UNITS[match.group(2)]


def is_running(meta: Any) -> bool:
    """Status 'running' and the scheduler still alive (a scheduler gone means the run crashed)."""
    if not isinstance(meta, dict) or meta.get("status") != schema.RUNNING:
        return False
    return schema.scheduler_alive(meta)


def _age_reference(meta: dict) -> float:
    for key in ("finished", "created"):
        value = meta.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return 0.0


def _protection(meta: dict, pinned: bool, is_origin: bool) -> Optional[str]:
    if is_running(meta):
        return "still running"
    if pinned:
        return "pinned"
    if is_origin:
        return "origin of a run in progress"
    return None


def _raw_refs(store: Any, prefix: str, problems: list) -> list:
    """(name, value) under ``prefix``; a value that does not decode becomes a problem, not a crash."""
    out = []
    start = prefix.encode()
    for key, raw in store.scan("refs", start):
        name = key.decode("utf-8", "replace")
        try:
            out.append((name, records.decode(raw)))
        except (CafstoreError, ValueError) as exc:
            problems.append(f"ref {name!r} cannot be decoded: {exc}")
    return out


def plan(store: Any, policy: Policy, now: Optional[float] = None, problems: Optional[list] = None) -> tuple[list, list]:
    """(runs to drop, notes on runs kept that the user may have expected to go).

    Run and pin refs that cannot be decoded are appended to ``problems``:
    gc must not guess whether such a run is pinned or running.
    """
    now = time.time() if now is None else now
    problems = [] if problems is None else problems
    parsed = [(schema.parse_run_ref(name), meta) for name, meta in _raw_refs(store, schema.RUNS_PREFIX, problems)]
    runs = [(key, meta if isinstance(meta, dict) else {}) for key, meta in parsed if key]
    pins = {schema.parse_pin_ref(name) for name, _ in _raw_refs(store, schema.PINS_PREFIX, problems)}
    origins = set()
    for (flow, _), meta in runs:
        if is_running(meta):
            for field in ("origin_run_id", "resumed_from"):
                if isinstance(meta.get(field), int):
                    origins.add((flow, meta[field]))
    drops, notes = [], []
    position: dict = {}
    for (flow, run_id), meta in sorted(runs, key=lambda item: (item[0][0], -item[0][1])):
        if policy.flow is not None and flow != policy.flow:
            continue
        deleted = bool(meta.get("deleted"))
        rank = position[flow] = position.get(flow, -1) + (0 if deleted else 1)
        reason = drop_reason(meta, rank, policy, now)
        if reason is None:
            continue
        protected = _protection(meta, (flow, run_id) in pins, (flow, run_id) in origins)
        if protected:
            notes.append(f"kept {flow}/{run_id} ({protected}) although {reason}")
            continue
        drops.append(Drop(flow, run_id, reason))
    return drops, notes


def drop_reason(meta: dict, rank: int, policy: Policy, now: float) -> Optional[str]:
    """Why retention would drop a run at position ``rank`` (0 = newest) of its flow, or None."""
    if meta.get("deleted"):
        return "marked deleted"
    if policy.keep_last is None and policy.older_than is None:
        return None
    if meta.get("user_tags") and not policy.include_tagged:
        return None
    if policy.keep_last is not None and rank < policy.keep_last:
        return None
    if policy.older_than is not None and now - _age_reference(meta) < policy.older_than:
        return None
    parts = []
    if policy.keep_last is not None:
        parts.append(f"not among the last {policy.keep_last}")
    if policy.older_than is not None:
        parts.append(f"older than {policy.older_than / 86400:.3g} days")
    return " and ".join(parts)


def drop_run(store: Any, drop: Drop) -> bool:
    """Delete a run's ref and task refs in one transaction, if it is still droppable."""
    name = run_ref(drop.flow, drop.run_id)

    def body(txn: Any) -> bool:
        meta = txn.get_ref(name)
        if meta is None:
            return False
        meta = meta if isinstance(meta, dict) else {}
        if txn.get_ref(pin_ref(drop.flow, drop.run_id)) is not None or is_running(meta):
            return False
        if drop.reason == "marked deleted" and not meta.get("deleted"):
            return False  # undeleted meanwhile
        for task_name, _ in list(txn.list_refs(task_prefix(drop.flow, drop.run_id))):
            txn.delete_ref(task_name)
        txn.delete_ref(name)
        return True

    return store.atomically(body)


def run_refs(store: Any, flow: str, run_id: int) -> list:
    """The refs that make up one run: its run ref and its task refs (what dropping it deletes)."""
    out = [(run_ref(flow, run_id), store.get_ref(run_ref(flow, run_id)))]
    return [item for item in out if item[1] is not None] + store.list_refs(task_prefix(flow, run_id))


# -- user verbs --------------------------------------------------------------------------------
def _require_run(store: Any, flow: str, run_id: int) -> dict:
    name = run_ref(flow, run_id)
    raw = store.get_raw_ref(name)
    if raw is None:
        raise NotFound(f"No run {flow}/{run_id} in the store at {store.path}.")
    meta, problem = schema.read_ref(name, raw)
    if not isinstance(meta, dict):  # a dict with other damage can still be marked deleted or pinned
        raise DamagedRef(
            f"The ref {name!r} of run {flow}/{run_id} is damaged ({problem}), so it cannot be changed. "
            "`cafstore fsck --repair` moves it aside (to damaged/), keeping its bytes.",
            name,
        )
    return meta


def pin(store: Any, flow: str, run_id: int) -> bool:
    """Make a run a gc root; False if it was pinned already."""
    _require_run(store, flow, run_id)
    name = pin_ref(flow, run_id)
    if store.get_ref(name) is not None:
        return False
    store.set_ref(name, {"pinned_at": time.time(), "by": schema.current_user()})
    return True


def unpin(store: Any, flow: str, run_id: int) -> bool:
    return store.delete_ref(pin_ref(flow, run_id))


def set_deleted(store: Any, flow: str, run_id: int, deleted: bool) -> bool:
    """rm (``deleted=True``) / undelete: one read-modify-write of the run ref; False if unchanged."""
    _require_run(store, flow, run_id)
    changed = []

    def change(meta: Any) -> Any:
        if meta is None:
            raise NotFound(f"Run {flow}/{run_id} was removed meanwhile (by gc?).")
        was = bool(meta.get("deleted"))
        changed.append(was != deleted)
        return {**meta, "deleted": time.time() if deleted else None} if was != deleted else meta

    store.update_ref(run_ref(flow, run_id), change)
    return changed[-1]
