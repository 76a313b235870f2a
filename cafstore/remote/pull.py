"""``cafstore pull``: fetch runs from a remote -- every object verified on arrival, refs last.

For each run: its document (one read, cached), then the objects it
reaches that the local store lacks, walked level by level from the run's
refs (records name their children), fetched in parallel (whole packs, or a
loose object streamed to a temp file) and hashed as they arrive. Only when
every object of the run has arrived and hashed to its id is anything
written: the objects, then the run's refs in one transaction. An object
that does not hash to its id stops the run's pull with nothing of it
stored (``RemoteObjectCorrupt`` names the object, where it was read and the run).
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from cafstore import schema
from cafstore.exception import RemoteError, RemoteObjectCorrupt
from cafstore.remote import config, packs, refcas
from cafstore.remote.closure import roots_of
from cafstore.remote.report import Meter, Progress, TransferReport
from cafstore.remote.runs import check_doc, local_meta, local_run_of, local_tasks, store_id, sync_local, tracking_base
from cafstore.remote.state import LOOSE_PREFIX, RemoteCache, RemoteState, scan
from cafstore.remote.transport import Transport
from cafstore.store import records
from cafstore.store.index import ENCODING_RECORD
from cafstore.store.objectid import ObjectId, hash_bytes

JOBS = 8
_INLINE_BATCH = 2000  # small objects stored per index transaction


def select_remote(state: RemoteState, specs: Iterable[str]) -> list:
    """Remote run identities named by ``specs``: ``Flow``, ``Flow/N`` (N: the number the run has in the
    store that ran it; refused if runs of several stores have it) or ``Flow/STORE:N``; none: every run."""
    specs = list(specs)
    if not specs:
        return sorted(state.runs)
    out = []
    for spec in specs:
        flow, _, rest = spec.strip("/").partition("/")
        sid, _, number = rest.rpartition(":")
        if not flow or (rest and not number.isdigit()):
            raise RemoteError(f"{spec!r} names no run: write Flow, Flow/N or Flow/STORE:N, e.g. HelloFlow/3.")
        found = [
            ident
            for ident in sorted(state.runs)
            if ident[0] == flow and (not rest or (ident[2] == int(number) and ident[1].startswith(sid)))
        ]
        if not found:
            raise RemoteError(f"The remote has no run {spec!r}.")
        if rest and len(found) > 1:
            names = ", ".join(f"{f}/{s}:{n}" for f, s, n in found)
            raise RemoteError(f"{spec!r} is ambiguous: runs of several stores have that number ({names}); name one.")
        out.extend(found)
    return sorted(set(out))


class _Fetch:
    """The objects of one run that the local store lacks, fetched and verified, not yet stored."""

    def __init__(self, store: Any, transport: Transport, cache: RemoteCache, doc: dict, label: str) -> None:
        self.store, self.transport, self.cache, self.label = store, transport, cache, label
        self.entries: dict = {}
        for pack_id in doc.get("packs", []):
            for entry in cache.index(str(pack_id)):
                self.entries.setdefault(entry.oid, (str(pack_id), entry))
        self.loose = {ObjectId(e[0]): (int(e[1]), int(e[2])) for e in doc.get("loose", [])}
        self.small: dict = {}  # oid -> (encoding, bytes, or a view into its pack's bytes)
        self.large: dict = {}  # oid -> (encoding, temp path)
        self.packs: dict = {}  # pack id -> bytes

    def corrupt(self, oid: ObjectId, where: str, got: ObjectId) -> RemoteObjectCorrupt:
        return RemoteObjectCorrupt(
            f"Object {oid} of run {self.label} is corrupt on the remote {self.transport.url}: the bytes read from "
            f"{where} hash to {got}. The pull refused it and stored nothing of the run; repair the remote by "
            "pushing the run again from a store that has it intact.",
            str(oid),
            [self.label],
        )

    def walk(self, roots: list, jobs: int, meter: Meter) -> None:
        seen: set = set()
        frontier = list(roots)
        while frontier:
            level = [oid for oid in dict.fromkeys(frontier) if oid not in seen]
            seen.update(level)
            frontier = []
            remote = []
            index = self.store.index
            with index.read() as txn:
                for oid in level:
                    meta = index.object_meta(txn, oid.digest)
                    if meta is None:
                        remote.append(oid)
                    elif meta[1] == ENCODING_RECORD:
                        frontier.extend(
                            records.referenced_ids(records.decode_record(index.inline_bytes(txn, oid.digest) or b""))
                        )
            for oid in remote:
                if oid not in self.entries and oid not in self.loose:
                    raise RemoteError(
                        f"Run {self.label} cannot be pulled: object {oid} it uses is not on the remote "
                        f"{self.transport.url} (the remote lost it). Push the run again from a store that has it."
                    )
            wanted_packs = sorted({self.entries[o][0] for o in remote if o in self.entries} - set(self.packs))
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for pack_id, body in zip(
                    wanted_packs, pool.map(lambda p: self.transport.get(packs.pack_key(p)), wanted_packs)
                ):
                    self.packs[pack_id] = body
                loose = [o for o in remote if o not in self.entries]
                for kids in pool.map(lambda o: self._fetch_loose(o, meter), loose):
                    frontier.extend(kids)
            for oid in remote:
                if oid in self.entries:
                    frontier.extend(self._take_small(oid, meter))

    def _take_small(self, oid: ObjectId, meter: Meter) -> list:
        pack_id, entry = self.entries[oid]
        data = memoryview(self.packs[pack_id])[entry.offset : entry.offset + entry.size]  # a view: no copy
        got = hash_bytes(data)
        if got != oid or len(data) != entry.size:
            raise self.corrupt(oid, packs.pack_key(pack_id), got)
        self.small[oid] = (entry.encoding, data)
        meter.add(entry.size)
        if entry.encoding == ENCODING_RECORD:
            return list(records.referenced_ids(records.decode_record(data)))
        return []

    def _fetch_loose(self, oid: ObjectId, meter: Meter) -> list:
        """Download a loose object, verified; the objects it names if it is a record (a task record
        with thousands of artifacts can outgrow ``packs.LOOSE_MIN``), which is then kept in memory:
        a record is always stored inline, where gc and fsck read what it references."""
        encoding, size = self.loose[oid]
        temp = self.store.blobs.new_temp_path()
        self.large[oid] = (encoding, temp)
        got = self.transport.download_hashed(f"{LOOSE_PREFIX}{oid}", temp, size)
        if got != oid:
            raise self.corrupt(oid, f"{LOOSE_PREFIX}{oid}", got)
        meter.add(size)
        if encoding != ENCODING_RECORD:
            return []
        data = temp.read_bytes()
        del self.large[oid]
        os.unlink(temp)
        self.small[oid] = (encoding, data)
        return list(records.referenced_ids(records.decode_record(data)))

    def discard(self) -> None:
        for _, temp in self.large.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def store_objects(self) -> None:
        """Objects first (the run's refs come after, in ``_commit``)."""
        store = self.store
        inline = [(o, e, d) for o, (e, d) in self.small.items() if len(d) <= store.config.inline_threshold]
        # (records are always inline, whatever their size: put_record's rule, which gc and fsck rely on)
        for start in range(0, len(inline), _INLINE_BATCH):
            batch = inline[start : start + _INLINE_BATCH]
            store.index.retrying(lambda txn, batch=batch: [store.put_inline(txn, bytes(d), e) for _, e, d in batch])
        for encoding, data in self.small.values():
            if encoding == ENCODING_RECORD and len(data) > store.config.inline_threshold:
                store.index.retrying(lambda txn, data=data: store.put_inline(txn, bytes(data), ENCODING_RECORD))
            elif len(data) > store.config.inline_threshold:
                store.put_encoded(None, [data], len(data), encoding)
        for oid, (encoding, temp) in list(self.large.items()):
            store.put_hashed_file(temp, oid, encoding)
            del self.large[oid]


def _commit(store: Any, own: str, name: str, doc: dict, ident: tuple) -> int:
    """Write the pulled run's refs in one transaction; its local number."""
    flow, sid, number = ident
    links = local_meta(store, own, doc, 0)  # resolves resumed_from/origin_run_id outside the transaction
    now = time.time()

    def body(txn: Any) -> int:
        if sid == own:
            local_id = number
        else:
            alias = txn.get_ref(schema.origin_ref(flow, sid, number))
            local_id = alias["run_id"] if isinstance(alias, dict) else txn.next_counter(schema.run_counter(flow))
            txn.set_ref(schema.origin_ref(flow, sid, number), {"run_id": local_id})
        if txn.get_ref(schema.flow_ref(flow)) is None:
            txn.set_ref(schema.flow_ref(flow), {"name": flow, "created": now})
        txn.set_ref(schema.run_ref(flow, local_id), {**links, "run_id": local_id})
        prefix = schema.tasks_prefix(flow, local_id)
        for task, oid in doc["tasks"].items():
            txn.set_ref(prefix + task, oid)
        if doc.get("pinned"):
            txn.set_ref(schema.pin_ref(flow, local_id), {"pinned_at": now, "by": schema.current_user()})
        state = {"user_tags": sorted(doc["run"].get("user_tags", [])), "pinned": bool(doc.get("pinned"))}
        txn.set_ref(schema.remote_tracking_ref(name, flow, sid, number), state)
        return local_id

    return store.atomically(body)


def pull(
    store: Any, name: str, specs: Iterable[str] = (), progress: Progress = None, jobs: int = JOBS
) -> TransferReport:
    """Pull the runs ``specs`` names (default: all) from remote ``name``; what was done."""
    started = time.time()
    report = TransferReport(remote=name)
    with contextlib.closing(config.transport_of(store, name)) as transport:
        transport.check()
        own = store_id(store)
        cache = RemoteCache(store, transport)
        state = scan(transport)
        meter = Meter(0, progress)
        for ident in select_remote(state, specs):
            label = f"{ident[0]}/{ident[1]}:{ident[2]}"
            try:
                _pull_one(store, transport, cache, own, name, state.runs[ident].key, ident, label, jobs, meter, report)
            except RemoteError as exc:  # this run is refused, with nothing of it stored; the others go on
                report.fail(label, exc)
        report.bytes_sent = meter.done
        report.seconds = time.time() - started
        report.check()
        return report


def _pull_one(
    store: Any,
    transport: Transport,
    cache: RemoteCache,
    own: str,
    name: str,
    key: str,
    ident: tuple,
    label: str,
    jobs: int,
    meter: Meter,
    report: TransferReport,
) -> None:
    doc = cache.doc(key)
    check_doc(doc, ident, key)
    local_id = local_run_of(store, own, ident)
    if local_id is None:
        fetch = _Fetch(store, transport, cache, doc, label)
        try:
            fetch.walk(roots_of(doc["run"], doc["tasks"]), jobs, meter)
            fetched = len(fetch.small) + len(fetch.large)
            fetch.store_objects()
        finally:
            fetch.discard()
        local_id = _commit(store, own, name, doc, ident)
        report.objects_sent += fetched
        report.runs_sent.append(f"{ident[0]}/{local_id}")
        return
    if local_tasks(store, ident[0], local_id) != doc["tasks"]:
        raise RemoteError(f"The remote's run {label} has other tasks than the local {ident[0]}/{local_id}; not pulled.")
    meta = store.get_ref(schema.run_ref(ident[0], local_id)) or {}
    has_pin = store.get_raw_ref(schema.pin_ref(ident[0], local_id)) is not None
    tags, pinned = refcas.merge_state(
        tracking_base(store, name, ident),
        meta.get("user_tags", []),
        has_pin,
        doc["run"].get("user_tags", []),
        bool(doc.get("pinned")),
    )
    changed = tags != sorted(meta.get("user_tags", [])) or pinned != has_pin
    sync_local(store, name, ident[0], local_id, ident, tags, pinned, doc)
    (report.runs_updated if changed else report.runs_unchanged).append(f"{ident[0]}/{local_id}")
