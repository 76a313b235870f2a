"""``cafstore push``: send runs to a remote -- the objects it lacks first, the refs last.

1. One listing of the remote (state.py); the runs already there with the
   same tasks need no objects at all (a second push moves nothing but a
   merged tag or pin).
2. The objects the other runs reach (closure.py), minus what the remote
   holds: small ones in packs, large ones alone, in parallel; each object's
   blake3 is checked as it is read from the local store.
3. Only when every upload has finished, each run's ref, by compare-and-swap
   (refcas.py), so a ref is never visible before the objects it reaches.

What counts as "held by the remote": objects in packs and loose objects that
some run ref names, which gc never removes; and young ones no ref names yet
(another push in progress, or an interrupted one), within half of gc's
grace period, so a push that reuses one finishes long before gc may take it.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from cafstore import schema
from cafstore.exception import CafstoreError, RemoteError
from cafstore.remote import config, packs, refcas
from cafstore.remote.closure import closure, roots_of
from cafstore.remote.report import Meter, Progress, TransferReport
from cafstore.remote.runs import build_doc, identity_of, local_tasks, store_id, sync_local, tracking_base
from cafstore.remote.state import LOOSE_PREFIX, RemoteCache, RemoteState, ref_base, scan, young
from cafstore.remote.transport import Transport
from cafstore.store.objectid import ObjectId, hash_bytes

DEFAULT_GRACE = 3600.0  # gc --remote's default; reuse of unreferenced objects stays within half of it
JOBS = 8


@dataclass
class Plan:
    flow: str
    run_id: int
    identity: tuple
    doc: dict
    remote: Any  # state.RunRef or None
    objects: dict = field(default_factory=dict)  # closure: oid -> (encoding, size)

    @property
    def label(self) -> str:
        return f"{self.flow}/{self.run_id}"


def select_local(store: Any, specs: Iterable[str]) -> tuple[list, list]:
    """([(flow, run id, meta)], [[run, why skipped]]): the runs named (``Flow`` or ``Flow/N``), else
    every run of the user's namespace (``user:<name>``). Deleted and running runs do not travel."""
    chosen: list = []
    for spec in specs or ():
        flow, _, number = spec.strip("/").partition("/")
        if not flow or (number and not number.isdigit()):
            raise RemoteError(f"{spec!r} names no run: write Flow or Flow/N (a local run number), e.g. HelloFlow/3.")
        if number:
            meta = store.get_ref(schema.run_ref(flow, int(number)))
            if not isinstance(meta, dict) or meta.get("deleted"):
                raise RemoteError(f"There is no run {flow}/{number} in the store at {store.path}.")
            chosen.append((flow, int(number), meta))
        else:
            found = [
                (flow, m["run_id"], m) for _, m in store.list_refs(schema.runs_prefix(flow)) if isinstance(m, dict)
            ]
            if not found:
                raise RemoteError(f"There is no flow {flow!r} with runs in the store at {store.path}.")
            chosen.extend(found)
    if not specs:
        mine = f"user:{schema.current_user()}"
        for name, meta in store.list_refs(schema.RUNS_PREFIX):
            if (
                isinstance(meta, dict)
                and mine in meta.get("system_tags", [])
                and schema.ref_problem(name, meta) is None
            ):
                chosen.append((meta["flow"], meta["run_id"], meta))
    runs, skipped = [], []
    for flow, run_id, meta in chosen:
        if meta.get("deleted"):
            skipped.append([f"{flow}/{run_id}", "deleted (cafstore rm)"])
        elif meta.get("status") == schema.RUNNING:
            skipped.append([f"{flow}/{run_id}", "still running, or crashed: only finished runs travel"])
        else:
            runs.append((flow, run_id, meta))
    return runs, skipped


def held(state: RemoteState, cache: RemoteCache, grace: float) -> dict:
    """{ObjectId: pack id, or None for a loose object} of what the remote holds and gc will keep."""
    now, window = time.time(), grace / 2
    named_packs: set = set()
    named_loose: set = set()
    docs = _parallel(lambda run: _doc_or_none(cache, run.key), list(state.runs.values()))
    for doc in docs:
        if doc is not None:
            named_packs.update(p for p in doc.get("packs", []) if isinstance(p, str))
            named_loose.update(str(e[0]) for e in doc.get("loose", []) if isinstance(e, list) and e)
    out: dict = {}
    usable = [
        p for p, idx in state.indexes.items() if p in state.packs and (p in named_packs or young(idx, window, now))
    ]
    for pack_id, entries in zip(usable, _parallel(lambda p: _index_or_empty(cache, p), usable)):
        for entry in entries:
            out.setdefault(entry.oid, pack_id)
    for oid, item in state.loose.items():
        if str(oid) in named_loose or young(item, window, now):
            out[oid] = None
    return out


def _doc_or_none(cache: RemoteCache, key: str) -> Optional[dict]:
    try:
        return cache.doc(key)
    except CafstoreError:  # damaged or vanished: its packs are not relied on (they are sent again)
        return None


def _index_or_empty(cache: RemoteCache, pack_id: str) -> list:
    try:
        return cache.index(pack_id)
    except CafstoreError:
        return []


def _parallel(fn: Any, items: list, jobs: int = JOBS) -> list:
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items))


def _small_bytes(store: Any, oid: ObjectId) -> bytes:
    data = store.get_bytes(oid)  # verified: a corrupt local object is never sent
    if hash_bytes(data) != oid:
        raise RemoteError(f"Object {oid} changed while being read; nothing was pushed for it.")
    return data


def upload(store: Any, transport: Transport, missing: dict, meter: Meter, report: TransferReport, jobs: int) -> dict:
    """Send ``missing`` ({oid: (encoding, size)}); {oid: pack id or None (loose)} of where each went."""
    where: dict = {}
    small = sorted((oid, size) for oid, (_, size) in missing.items() if size < packs.LOOSE_MIN)
    large = [oid for oid, (_, size) in missing.items() if size >= packs.LOOSE_MIN]

    def send_pack(group: list) -> tuple:
        pack_id, body, index = packs.build((oid, missing[oid][0], _small_bytes(store, oid)) for oid in group)
        transport.put(packs.pack_key(pack_id), body)
        transport.put(packs.index_key(pack_id), index)  # after the pack: an index names a whole pack
        meter.add(sum(missing[oid][1] for oid in group))
        return pack_id, group

    def send_loose(oid: ObjectId) -> ObjectId:
        view = store.open(oid, verify=True)
        try:
            transport.put_large(f"{LOOSE_PREFIX}{oid}", view)
        finally:
            view.release()
        meter.add(missing[oid][1])
        return oid

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pack_jobs = [pool.submit(send_pack, group) for group in packs.batches(small)]
        loose_jobs = [pool.submit(send_loose, oid) for oid in large]
        for pack_job in pack_jobs:
            pack_id, group = pack_job.result()
            where.update((oid, pack_id) for oid in group)
            report.requests += 2
        for job in loose_jobs:
            where[job.result()] = None
            report.requests += 1
    report.objects_sent += len(missing)
    report.bytes_sent += sum(size for _, size in missing.values())
    return where


def push(
    store: Any,
    name: str,
    specs: Iterable[str] = (),
    progress: Progress = None,
    jobs: int = JOBS,
    grace: float = DEFAULT_GRACE,
) -> TransferReport:
    """Push the runs ``specs`` names (default: the user's) to remote ``name``; what was done."""
    started = time.time()
    report = TransferReport(remote=name)
    with contextlib.closing(config.transport_of(store, name)) as transport:
        own = store_id(store)
        cache = RemoteCache(store, transport)
        runs, report.skipped = select_local(store, list(specs))
        state = scan(transport)
        plans = []
        for flow, run_id, meta in runs:
            identity = identity_of(own, flow, run_id, meta)
            tasks = local_tasks(store, flow, run_id)
            pinned = store.get_raw_ref(schema.pin_ref(flow, run_id)) is not None
            plan = Plan(
                flow, run_id, identity, build_doc(store, own, identity, meta, tasks, pinned), state.runs.get(identity)
            )
            theirs = None if plan.remote is None else _doc_or_none(cache, plan.remote.key)
            if theirs is None or theirs.get("tasks") != tasks:
                try:
                    plan.objects = closure(store, roots_of(meta, tasks), plan.label)
                except RemoteError as exc:  # this run lost data: refused, the others go on
                    report.fail(plan.label, exc)
                    continue
            plans.append(plan)
        sending = [p for p in plans if p.objects]
        if sending:
            have = held(state, cache, grace)
            wanted: dict = {}
            for plan in sending:
                wanted.update(plan.objects)
            missing = {oid: info for oid, info in wanted.items() if oid not in have}
            report.objects_skipped = len(wanted) - len(missing)
            report.bytes_skipped = sum(size for oid, (_, size) in wanted.items() if oid in have)
            meter = Meter(sum(size for _, size in missing.values()), progress)
            have.update(upload(store, transport, missing, meter, report, jobs))
            for plan in sending:
                plan.doc["packs"] = sorted({have[oid] for oid in plan.objects if have[oid] is not None})
                plan.doc["loose"] = sorted(
                    [[oid, enc, size] for oid, (enc, size) in plan.objects.items() if have[oid] is None],
                    key=lambda e: str(e[0]),
                )
        for plan in plans:  # refs last: every object they reach is on the remote by now
            try:
                _write_ref(store, transport, cache, name, plan, report)
            except RemoteError as exc:
                report.fail(plan.label, exc)
        report.seconds = time.time() - started
        report.check()
        return report


def _write_ref(
    store: Any, transport: Transport, cache: RemoteCache, name: str, plan: Plan, report: TransferReport
) -> None:
    base = tracking_base(store, name, plan.identity)
    outcome: dict = {}

    def change(theirs: Optional[dict]) -> Optional[dict]:
        new = refcas.merged(theirs, plan.doc, base)
        if theirs is not None and refcas.same(new, theirs):
            outcome["kind"] = "unchanged"
            return None
        outcome["kind"] = "sent" if theirs is None else "updated"
        return new

    doc = refcas.update(transport, cache, ref_base(*plan.identity), plan.identity, plan.remote, change)
    if doc is None:
        raise RemoteError(f"The run ref of {plan.label} vanished from the remote {transport.url} while pushing it.")
    kinds = {"sent": report.runs_sent, "updated": report.runs_updated, "unchanged": report.runs_unchanged}
    kinds[outcome["kind"]].append(plan.label)
    sync_local(
        store,
        name,
        plan.flow,
        plan.run_id,
        plan.identity,
        doc["run"].get("user_tags", []),
        bool(doc.get("pinned")),
        doc,
    )
