"""Garbage collection: retention, then mark from every ref, then sweep in short batches.

The order of operations is what makes gc safe to run next to live flows and
safe to kill at any moment:

1. **Plan** which run refs retention drops (``retention.py``), and find the
   task refs that belong to no run (``strays.py``); change nothing.
2. **Mark** from every ref except those, plus every object written within the
   grace period (a writer's records that no ref points at yet). Records and
   chunk lists are followed through the ObjectIds they contain. Fail closed:
   a ref or record that cannot be read or decoded, or a reference to an
   object that is not there, means the live set is unknown -- gc raises
   ``GcRefused`` before deleting anything, including run refs.
   Objects reached only from grace-period objects are kept the same way, but
   a missing object below them is a warning: nothing live can hide behind it.
   Old unindexed object files outnumbering the indexed ones (an index older
   than its objects) also make gc refuse.
3. **Drop** the refs that belong to no run, then the planned runs, one short
   transaction each, re-checking the rules inside it; a ref or run that
   became protected meanwhile is marked instead.
4. **Re-scan** the object table and mark from objects that appeared while we
   marked (records whose refs we may have missed).
5. **Checkpoint**: raise the index's generation, snapshot it and write the
   mark outside it (store/identity.py), so a later index loss is caught and
   can be rebuilt from this moment.
6. **Sweep** unmarked objects older than the grace period in batches of short
   write transactions, referrers before what they refer to (so a killed gc
   never leaves a record pointing at a swept object), re-reading each
   object's created time inside the transaction (a writer that reused it has
   freshened it: see ``freshen.py``). Index entries go first, then files;
   then the similarity hints that pointed at swept objects (store/similar.py).
7. Remove orphan blob files and stray temp files older than the grace period.

A gc killed between any two steps leaves at worst unindexed files and temp
files, which fsck reports as notes and the next gc removes.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from typing import Any, Iterable, Optional

import cafstore.progress as progress_bar
from cafstore.exception import CafstoreError, GcRefused
from cafstore.maintenance import retention, strays
from cafstore.store import identity, records, similar
from cafstore.store.index import ENCODING_NAMES, ENCODING_RECORD, LOCATION_CHUNKED, LOCATION_FILE
from cafstore.store.objectid import ObjectId, hash_bytes

DEFAULT_GRACE = 3600.0
UNINDEXED_FLOOR = 64  # unindexed files gc removes without comparing them to the indexed ones


@dataclasses.dataclass
class GcReport:
    dry_run: bool
    grace: float
    dropped_runs: list = dataclasses.field(default_factory=list)  # (Flow/N, reason)
    stray_refs: list = dataclasses.field(default_factory=list)  # names of task refs that belonged to no run
    notes: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    scanned: int = 0
    live: int = 0  # reachable from the refs gc keeps
    recent: int = 0  # not reachable from refs, but kept: within the grace period or reached from such objects
    removed: list = dataclasses.field(default_factory=list)  # (oid, kind, bytes)
    orphan_files: list = dataclasses.field(default_factory=list)  # (name, bytes)
    temp_files: list = dataclasses.field(default_factory=list)  # (name, bytes)
    aborted_uploads: int = 0  # multipart uploads a dead writer left unfinished (remote backends)
    seconds: float = 0.0

    @property
    def freed_bytes(self) -> int:
        return sum(item[-1] for group in (self.removed, self.orphan_files, self.temp_files) for item in group)

    def by_kind(self) -> dict:
        out: dict = {}
        for _, kind, size in self.removed:
            count, total = out.get(kind, (0, 0))
            out[kind] = (count + 1, total + size)
        return out

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "grace": self.grace,
            "scanned": self.scanned,
            "live": self.live,
            "recent": self.recent,
            "dropped_runs": [list(d) for d in self.dropped_runs],
            "stray_refs": list(self.stray_refs),
            "removed_objects": len(self.removed),
            "removed_by_kind": self.by_kind(),
            "orphan_files": len(self.orphan_files),
            "temp_files": len(self.temp_files),
            "aborted_uploads": self.aborted_uploads,
            "freed_bytes": self.freed_bytes,
            "notes": self.notes,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


class Progress:
    """gc's phases (marking, sweeping) on a terminal, one cafstore.progress bar per phase."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Optional[progress_bar.Progress] = None

    def show(self, label: str, done: int, total: int, final: bool = False) -> None:
        if self._bar is None or self._bar.label != f"gc: {label}":
            if self._bar is not None:
                self._bar.close()
            self._bar = progress_bar.progress(f"gc: {label}", total, enabled=self.enabled)
        self._bar.update(done, total)
        if final:
            self._bar.close()


class _Marker:
    """The mark phase: a set of live digests grown along records and chunk lists."""

    def __init__(self, store: Any, objects: dict) -> None:
        self.store, self.objects = store, objects
        self.marked: set = set()
        self.problems: list = []
        self.warnings: list = []

    def mark(
        self, roots: Iterable[tuple[bytes, str]], progress: Optional[Progress] = None, strict: bool = True
    ) -> None:
        """Mark ``roots`` and all they reach. ``strict=False`` for objects kept only by the grace
        period: a missing object below them is a warning, not a reason to refuse (see ``collect``)."""
        stack = list(roots)
        index = self.store.index
        with index.read() as txn:
            while stack:
                digest, holder = stack.pop()
                if digest in self.marked:
                    continue
                meta = self.objects.get(digest)
                if meta is None:
                    meta = index.object_meta(txn, digest)  # written after our scan?
                    if meta is None:
                        message = f"{holder} refers to missing object {digest.hex()}"
                        # A lost chunk cannot hide live objects (chunks refer to nothing); nor can an
                        # object that only grace-period objects refer to (their writers freshened
                        # everything old they reused, so it is all recent too: freshen.py).
                        lenient = not strict or holder.startswith("chunk list")
                        (self.warnings if lenient else self.problems).append(message)
                        continue
                    self.objects[digest] = meta
                self.marked.add(digest)
                if progress and len(self.marked) % 1024 == 0:
                    progress.show("marking", len(self.marked), len(self.objects))
                if meta[0] == LOCATION_CHUNKED or meta[1] == ENCODING_RECORD:
                    stack.extend(self._children(txn, digest, meta))

    def _children(self, txn: Any, digest: bytes, meta: tuple) -> list:
        oid = ObjectId(digest)
        what = "chunk list of object" if meta[0] == LOCATION_CHUNKED else "record"
        try:
            if meta[0] == LOCATION_FILE:
                payload = self.store.blobs.get(oid)
            else:
                payload = self.store.index.inline_bytes(txn, digest)
            if payload is None:
                raise ValueError("its bytes are missing")
            if meta[0] != LOCATION_CHUNKED and hash_bytes(payload) != oid:
                raise ValueError("its bytes no longer hash to its id (corrupt)")
            value = records.decode_record(payload)
        except (CafstoreError, ValueError, OSError) as exc:
            self.problems.append(f"{what} {oid} cannot be read: {exc}")
            return []
        holder = f"{what} {oid}"
        return [(child.digest, holder) for child in records.referenced_ids(value)]


def _load_objects(store: Any) -> dict:
    index = store.index
    with index.read() as txn:
        return dict(index.iter_objects(txn))


def _ref_roots(store: Any, excluded: set, problems: list) -> list:
    """(digest, holder) for every ObjectId in every ref not being dropped."""
    roots: list[tuple[bytes, str]] = []
    index = store.index
    with index.read() as txn:
        for key, raw in index.iter_raw_refs(txn):
            name = key.decode("utf-8", "replace")
            if name.startswith(tuple(excluded)):
                continue
            try:
                value = records.decode(raw)
                roots.extend((oid.digest, f"ref {name!r}") for oid in records.referenced_ids(value))
            except (CafstoreError, ValueError) as exc:
                problems.append(f"ref {name!r} cannot be decoded: {exc}")
    return roots


def _excluded_refs(drops: list) -> set:
    out = set()
    for drop in drops:
        out.add(retention.run_ref(drop.flow, drop.run_id))
        out.add(retention.task_prefix(drop.flow, drop.run_id))
    return out


def _refuse(problems: list, dropped: int = 0) -> GcRefused:
    shown = "\n".join(f"  - {p}" for p in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    done = f"{dropped} run(s) had already been dropped; their objects stay until gc can run. " if dropped else ""
    # The command line prints GcRefused's headline ("gc deleted nothing: ") before this text.
    return GcRefused(
        f"the live set cannot be computed completely, because\n{shown}{more}\n{done}"
        "Run `cafstore fsck --repair` to list the runs that lost data, then `cafstore rm` them "
        "(or restore the missing objects) and run gc again.",
        problems,
    )


def collect(
    store: Any,
    policy: Optional[retention.Policy] = None,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    progress: bool = False,
    batch: int = 500,
    unindexed_ok: bool = False,
) -> GcReport:
    """Run gc on ``store`` (see the module docstring for the steps); returns what it removed.

    ``policy``: which runs retention drops first; none given keeps every run.
    ``unindexed_ok``: delete unindexed object files even when they outnumber the
    indexed ones (``_check_unindexed``); only for a user who knows why they are there.
    """
    policy = policy or retention.Policy()
    started = time.time()
    cutoff = started - grace
    report = GcReport(dry_run=dry_run, grace=grace)
    bar = Progress(progress)
    objects = _load_objects(store)
    marker = _Marker(store, objects)
    drops, report.notes = retention.plan(store, policy, started, marker.problems)
    stray = strays.find(store)
    marker.mark(_ref_roots(store, _excluded_refs(drops) | set(stray), marker.problems), bar)
    reachable = len(marker.marked)
    young = [(d, "an object written within the grace period") for d, m in objects.items() if m[3] >= cutoff]
    marker.mark(young, strict=False)
    if marker.problems:
        raise _refuse(marker.problems)
    if not unindexed_ok:
        _check_unindexed(store, objects, cutoff)
    if not dry_run:
        report.stray_refs = strays.remove(store, stray)
        for name in sorted(set(stray) - set(report.stray_refs)):  # kept after all: what it reaches is live
            value = store.get_ref(name)
            marker.mark([(oid.digest, f"ref {name!r}") for oid in records.referenced_ids(value)])
        for drop in drops:
            if retention.drop_run(store, drop):
                report.dropped_runs.append((drop.pathspec, drop.reason))
                continue
            report.notes.append(f"kept {drop.pathspec}: it changed while gc ran (pinned, undeleted or resumed)")
            refs = retention.run_refs(store, drop.flow, drop.run_id)
            marker.mark(
                [(oid.digest, f"ref {name!r}") for name, value in refs for oid in records.referenced_ids(value)]
            )
        # Objects that appeared while we marked may be records whose refs we did not see.
        for digest, meta in _load_objects(store).items():
            if objects.get(digest) != meta:
                objects[digest] = meta
                if meta[3] >= cutoff:
                    marker.mark([(digest, "an object written while gc ran")], strict=False)
        if marker.problems:
            raise _refuse(marker.problems, len(report.dropped_runs))
    else:
        report.dropped_runs = [(drop.pathspec, drop.reason) for drop in drops]
        report.stray_refs = stray
    report.warnings = marker.warnings
    if not dry_run:
        identity.checkpoint(store, len(objects))  # the mark and snapshot a lost index is rebuilt from
    garbage = [d for d, meta in objects.items() if d not in marker.marked and meta[3] < cutoff]
    report.scanned, report.live = len(objects), reachable
    report.recent = len(objects) - reachable - len(garbage)
    _sweep(store, _referrers_first(store, garbage, objects), objects, cutoff, dry_run, report, bar, batch)
    if not dry_run:  # similarity hints pointing at swept objects (store/similar.py)
        store.index.retrying(lambda txn: similar.prune(store.index, txn))
    _remove_orphans(store, cutoff, grace, dry_run, report)
    report.seconds = time.time() - started
    return report


def _check_unindexed(store: Any, objects: dict, cutoff: float) -> None:
    """Fail closed when old unindexed object files outnumber indexed ones.

    A killed writer leaves a few files the index never named; an index restored
    from an old copy (or swapped for another that identity.py cannot tell from
    this one) leaves every newer file unnamed. gc cannot tell those apart one
    file at a time, so past a floor it counts: more unnamed than named files
    means the index, not the files, is what is wrong.
    """
    unindexed = [oid for oid in store.blobs.iter_ids() if oid.digest not in objects and store.blobs.mtime(oid) < cutoff]
    indexed = sum(1 for meta in objects.values() if meta[0] == LOCATION_FILE)
    if len(unindexed) > max(UNINDEXED_FLOOR, indexed):
        raise GcRefused(
            f"{len(unindexed)} object files older than the grace period are not in the index, which names only "
            f"{indexed}: the index looks older than the objects (restored from a backup, or replaced), and "
            "removing them could delete runs' data. Run `cafstore fsck --repair` to rebuild the index from "
            "the files; if they are leftovers of killed runs you no longer want, `cafstore gc --delete-unindexed` "
            "removes them.",
            [f"{len(unindexed)} unindexed object files"],
        )


def _referrers_first(store: Any, garbage: list, objects: dict) -> list:
    """Garbage in an order where every record or chunk list precedes the objects it refers to."""
    members = set(garbage)
    children: dict = {}
    indegree = dict.fromkeys(garbage, 0)
    index = store.index
    with index.read() as txn:
        for digest in garbage:
            meta = objects[digest]
            if meta[0] != LOCATION_CHUNKED and meta[1] != ENCODING_RECORD:
                continue
            payload = index.inline_bytes(txn, digest)
            try:
                value = records.decode_record(payload) if payload is not None else {}
            except (CafstoreError, ValueError):
                value = {}  # unreadable garbage: it goes early, which is always safe
            kids = [oid.digest for oid in records.referenced_ids(value) if oid.digest in members]
            children[digest] = kids
            for kid in kids:
                indegree[kid] += 1
    ready = collections.deque(d for d in garbage if indegree[d] == 0)
    order = []
    while ready:
        digest = ready.popleft()
        order.append(digest)
        for kid in children.get(digest, ()):
            indegree[kid] -= 1
            if indegree[kid] == 0:
                ready.append(kid)
    return order


def _kind(meta: tuple) -> str:
    encoding = ENCODING_NAMES.get(meta[1], "?")
    return f"chunked {encoding}" if meta[0] == LOCATION_CHUNKED else encoding


def _bytes(meta: tuple) -> int:
    """Bytes an object occupies by itself (a chunked object's bytes are its chunks')."""
    return 0 if meta[0] == LOCATION_CHUNKED else meta[2]


def _sweep(
    store: Any, order: list, objects: dict, cutoff: float, dry_run: bool, report: GcReport, bar: Progress, batch: int
) -> None:
    for start in range(0, len(order), batch):
        group = order[start : start + batch]
        bar.show("sweeping", start, len(order))
        if dry_run:
            report.removed.extend((ObjectId(d).short, _kind(objects[d]), _bytes(objects[d])) for d in group)
            continue
        index = store.index  # per batch: the handle is reopened after a fork

        def body(txn: Any, group: list = group, index: Any = index) -> list:  # run at once, by retrying
            gone = []
            for digest in group:
                meta = index.object_meta(txn, digest)
                if meta is None:
                    continue
                if meta[3] >= cutoff:
                    continue  # a writer reused it after we marked (freshen.py)
                index.delete_object(txn, digest)  # index entries go before the files they name
                gone.append((digest, meta))
            return gone

        for digest, meta in index.retrying(body):
            size = _bytes(meta)
            if meta[0] == LOCATION_FILE:
                size = _remove_blob(store, ObjectId(digest), cutoff)
            report.removed.append((ObjectId(digest).short, _kind(meta), size))
    bar.show("sweeping", len(order), len(order), final=bool(order))


def _remove_blob(store: Any, oid: ObjectId, cutoff: float) -> int:
    """``remove_if_older``; for a backend whose put can reuse a blob without rewriting it (S3), inside
    an index write transaction that first checks the blob is still unindexed. A writer commits its
    entry only after its put, and re-checks the blob after that commit (``BlobBackend.confirm``), so
    either gc sees the entry here, or the writer sees the blob gone and stores it again."""
    if not store.blobs.delete_under_index_lock:
        return int(store.blobs.remove_if_older(oid, cutoff))
    index = store.index

    def body(txn: Any) -> int:
        if index.object_meta(txn, oid.digest) is not None:
            return 0
        return int(store.blobs.remove_if_older(oid, cutoff))

    return int(index.retrying(body))


def _remove_orphans(store: Any, cutoff: float, grace: float, dry_run: bool, report: GcReport) -> None:
    """Blob files no index entry names, and temp files of dead writers, older than the grace period."""
    for oid in store.blobs.iter_ids():
        index = store.index
        with index.read() as txn:
            if index.object_meta(txn, oid.digest) is not None:
                continue
        if store.blobs.mtime(oid) >= cutoff:
            continue
        size = store.blobs.size(oid) or 0
        if not dry_run:
            size = _remove_blob(store, oid, cutoff)
            if not size and store.blobs.exists(oid):
                continue
        report.orphan_files.append((oid.short, size))
    if not dry_run:
        report.aborted_uploads = store.blobs.abort_stale_uploads(older_than=grace)
    for temp in store.blobs.stray_temp_files(older_than=grace):
        try:
            size = temp.stat().st_size
            if not dry_run:
                os.unlink(temp)
        except FileNotFoundError:
            continue
        report.temp_files.append((temp.name, size))
