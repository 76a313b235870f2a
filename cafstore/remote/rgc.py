"""``cafstore gc --remote NAME``: sweep what no run ref on the remote reaches.

Live: every pack and loose object named by any version of any run ref
(versions only ever add packs, so the newest names the most). Swept: packs
(index first, then the pack), loose objects, ``tmp/`` files and superseded
ref versions that are older than the grace period and not live. A push in
progress is protected twice: what it uploads is young, and what it reuses is
either named by a ref (never swept) or within half the grace period
(push.py). Fail-closed like the local gc: if any run ref cannot be read or
decoded, nothing is deleted and the refs at fault are named.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from cafstore.exception import CafstoreError, GcRefused
from cafstore.remote import config
from cafstore.remote.state import RemoteCache, scan
from cafstore.remote.transport import Transport

DEFAULT_GRACE = 3600.0


@dataclass
class RemoteGcReport:
    remote: str
    dry_run: bool
    grace: float
    runs: int = 0
    live_packs: int = 0
    live_loose: int = 0
    removed: list = field(default_factory=list)  # keys deleted (or that would be)
    freed_bytes: int = 0
    kept_young: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def collect_remote(store: Any, name: str, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> RemoteGcReport:
    with contextlib.closing(config.transport_of(store, name)) as transport:
        return _collect(store, transport, name, grace, dry_run)


def _collect(store: Any, transport: Transport, name: str, grace: float, dry_run: bool) -> RemoteGcReport:
    transport.check()
    cache = RemoteCache(store, transport)
    report = RemoteGcReport(remote=name, dry_run=dry_run, grace=grace)
    cutoff = time.time() - grace
    state = scan(transport)  # packs and loose objects are listed before the refs that name them
    live_packs: set = set()
    live_loose: set = set()
    problems = []
    for run in state.runs.values():
        for item in run.versions.values():
            try:
                doc = cache.doc(item.key, fresh=True)
                live_packs.update(str(p) for p in doc.get("packs", []))
                live_loose.update(str(e[0]) for e in doc.get("loose", []))
            except (CafstoreError, TypeError, IndexError) as exc:
                if item.key == run.key or not isinstance(exc, CafstoreError):
                    problems.append(f"{item.key}: {exc}")
    if problems:
        raise GcRefused(
            f"gc of the remote {name} deleted nothing: {len(problems)} run ref(s) there cannot be read, so what "
            f"they reach is unknown: {'; '.join(problems[:5])}. Repair or remove them, then run gc again.",
            problems,
        )
    report.runs, report.live_packs, report.live_loose = len(state.runs), len(live_packs), len(live_loose)
    doomed: list = []
    for pack_id in sorted(set(state.packs) | set(state.indexes)):
        if pack_id in live_packs:
            continue
        items = [x for x in (state.indexes.get(pack_id), state.packs.get(pack_id)) if x is not None]
        if all(x.mtime < cutoff for x in items):
            doomed.extend(items)  # the index first: a pack without one is never reused
        else:
            report.kept_young += 1
    for oid, item in state.loose.items():
        if str(oid) not in live_loose:
            if item.mtime < cutoff:
                doomed.append(item)
            else:
                report.kept_young += 1
    for run in state.runs.values():
        doomed.extend(item for v, item in run.versions.items() if v != run.latest and item.mtime < cutoff)
    doomed.extend(item for item in state.other if item.key.startswith("tmp/") and item.mtime < cutoff)
    for item in doomed:
        if not dry_run:
            transport.delete(item.key)
        report.removed.append(item.key)
        report.freed_bytes += item.size
    return report
