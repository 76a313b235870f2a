"""Rebuild a lost index (``cafstore fsck --repair`` when identity.py rejects the index).

What survives an index loss is what lived outside it: object files (named
by their own hash, so each can be verified and re-indexed), gc's last
snapshot of the index (refs, records and inline objects as of that gc), and
the store's id. The rebuild never deletes anything:

1. the rejected index is moved aside (``index.lost-<time>/``), not removed;
2. gc's snapshot, if it is this store's, becomes the new index, which brings
   back every run, tag and record the store had at that gc;
3. every object file the index does not name is re-hashed; a good one is
   indexed again (size, and its encoding read from its header), a corrupt one
   moved to ``quarantine/``;
4. the re-indexed files are listed in one record that a ``lost-found/<time>``
   ref points at, so gc keeps them until the user removes that ref;
5. the index is stamped with the store's id and a generation above every
   mark, and the mark is rewritten, so every command accepts it again;
6. ``repair`` then drops entries whose files are gone and names the runs
   that lost data.

What cannot come back is what only the lost index held: runs, tags and
records written after the snapshot (or ever, without one), and the small
objects stored inline. The report says so.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import uuid
from typing import Any, Optional

from cafstore import schema
from cafstore.exception import CafstoreError, StoreError
from cafstore.maintenance import repair as repair_module
from cafstore.store import identity, settings
from cafstore.store.durable import fsync_path
from cafstore.store.index import ENCODING_ARTIFACT, ENCODING_RAW, LOCATION_FILE
from cafstore.store.objectid import ObjectId, hash_bytes
from cafstore.store.serialize import MAGIC

BATCH = 500


@dataclasses.dataclass
class RebuildReport:
    moved_aside: Optional[str] = None  # directory name the rejected index was moved to
    snapshot: Optional[dict] = None  # {"generation", "time"} of the gc snapshot restored, if any
    recovered: int = 0  # object files re-indexed
    recovered_bytes: int = 0
    quarantined: list = dataclasses.field(default_factory=list)  # corrupt object files moved aside
    lost_found: Optional[str] = None  # the ref that keeps the re-indexed files
    repair: Any = None  # repair.RepairReport of the rebuilt index
    unrecoverable: str = ""

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["repair"] = self.repair.to_dict() if self.repair is not None else None
        return out


def rebuild(store: Any) -> RebuildReport:
    """Replace the store's rejected index with the best one that can be rebuilt (module docstring)."""
    try:
        return _rebuild(store)
    except OSError as exc:
        raise StoreError(
            f"Rebuilding the index of {store.path} failed: {exc}. Nothing was deleted: a rejected index "
            "is under index.lost-*/ and gc's snapshot is index-snapshot.mdb; fix the cause (disk full? "
            "another process recreating index/?) and run `cafstore fsck --repair` again."
        ) from exc


def _rebuild(store: Any) -> RebuildReport:
    out = RebuildReport()
    when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    store.close()  # this process's handle on the rejected index (other processes refuse it anyway)
    index_dir = store.path / "index"
    if index_dir.exists():
        aside = store.path / f"index.lost-{when}-{uuid.uuid4().hex[:6]}"
        os.rename(index_dir, aside)
        fsync_path(store.path, directory=True)
        out.moved_aside = aside.name
    current = settings.read_settings(store.path)
    store_id = (current or {}).get("id") or uuid.uuid4().hex
    mark = identity.read_mark(store.path)
    generation = int(mark.get("generation", 0)) if mark.get("id") == store_id else 0
    generation = max(generation, _restore_snapshot(store, store_id, out)) + 1
    index = store.unverified_index()
    index.retrying(lambda txn: identity.stamp(index, txn, store_id, generation))
    if current is None or current.get("id") is None:
        settings.record_id(store.path, store_id)
    recovered = _reindex_files(store, index, out)
    if recovered:
        record = store.put_record({"rebuilt": time.time(), "objects": recovered})
        out.lost_found = schema.lost_found_ref(when)
        store.set_ref(out.lost_found, {"record": record, "objects": len(recovered), "rebuilt": when})
    with index.read() as txn:
        objects = index.count(txn, "objects")
    identity.write_mark(store.path, store_id, generation, objects, time.time())
    out.repair = repair_module.repair(store)
    which = (
        f"runs, tags and records written after gc's snapshot of {out.snapshot['time']}"
        if out.snapshot
        else "every run, tag and record (there was no gc snapshot to restore)"
    )
    out.unrecoverable = f"{which} lived only in the lost index and cannot be recovered" + (
        f"; their large values are kept under the ref {out.lost_found}" if out.lost_found else ""
    )
    return out


def _restore_snapshot(store: Any, store_id: str, out: RebuildReport) -> int:
    """Copy gc's snapshot into place as the new index if it is this store's; its generation, else 0."""
    snapshot = store.path / identity.SNAPSHOT_FILE
    if not snapshot.exists():
        return 0
    try:
        snap_id, snap_generation = identity.snapshot_facts(snapshot)
    except Exception:  # noqa: BLE001 - an unreadable snapshot is simply not used; the files still are
        return 0
    if snap_id != store_id:
        return 0
    staging = store.path / f"index.rebuild-{os.getpid()}"
    staging.mkdir()
    shutil.copyfile(snapshot, staging / "data.mdb")
    fsync_path(staging / "data.mdb")
    os.rename(staging, store.path / "index")
    fsync_path(store.path, directory=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snapshot.stat().st_mtime))
    out.snapshot = {"generation": snap_generation, "time": stamp}
    return snap_generation


def _reindex_files(store: Any, index: Any, out: RebuildReport) -> list:
    """Index every verified object file the index does not name; quarantine corrupt ones."""
    recovered: list = []
    pending: list = []

    def flush() -> None:
        def body(txn: Any) -> None:
            for digest, meta in pending:
                index.put_meta(txn, digest, meta, overwrite=False)

        index.retrying(body)
        pending.clear()

    for oid in store.blobs.iter_ids():
        with index.read() as txn:
            if index.object_meta(txn, oid.digest) is not None:
                continue
        try:
            view = store.blobs.open(oid)
            good = hash_bytes(view) == oid
            size, head = view.nbytes, bytes(view[: len(MAGIC)])
        except (CafstoreError, OSError) as exc:
            out.quarantined.append(f"{oid} (unreadable: {exc})")
            continue
        if not good:
            target = store.path / repair_module.QUARANTINE
            target.mkdir(exist_ok=True)
            store.blobs.quarantine(oid, target / str(oid))
            out.quarantined.append(str(oid))
            continue
        encoding = ENCODING_ARTIFACT if head == MAGIC else ENCODING_RAW
        pending.append((oid.digest, (LOCATION_FILE, encoding, size, time.time())))
        recovered.append(ObjectId(oid))
        out.recovered += 1
        out.recovered_bytes += size
        if len(pending) >= BATCH:
            flush()
    if pending:
        flush()
    return recovered
