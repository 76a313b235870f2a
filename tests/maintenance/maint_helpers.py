"""Helpers for the maintenance tests: stores, runs laid out as docs/datamodel.md says, aging objects.

Runs are written here the way the runner writes them (run ref, task records,
task refs), so gc, dedup and repair are tested without depending on the runner.
"""

from __future__ import annotations

import os
import socket
import time

from cafstore.store import ObjectId, Store, StoreConfig
from cafstore.store.index import pack_meta, unpack_meta


def small_config(**overrides) -> StoreConfig:
    """Fast stores for tests: no fsync, small chunks so small values exercise chunking."""
    values = dict(
        durable=False, chunk_threshold=64 * 1024, chunk_similar_only=False, chunk_size=4096, inline_threshold=1024
    )
    values.update(overrides)
    return StoreConfig(**values)


def age(store: Store, seconds: float = 7200.0, oids=None) -> None:
    """Pretend objects (all by default) and their files were written ``seconds`` ago: grace is time."""
    tables = store.index.tables
    with store.index.write() as txn:
        keys = [o.digest for o in oids] if oids is not None else [k for k, _ in txn.cursor(db=tables["objects"])]
        for key in keys:
            raw = txn.get(key, db=tables["objects"])
            if raw is not None:
                loc, enc, size, created = unpack_meta(raw)
                txn.put(key, pack_meta(loc, enc, size, created - seconds), db=tables["objects"])
                path = store.blobs.path(ObjectId(key))
                if path.exists():  # a blob file is as old as its index entry
                    os.utime(path, (created - seconds, created - seconds))


def make_run(
    store: Store,
    flow: str,
    run_id: int,
    artifacts: dict,
    *,
    status: str = "succeeded",
    user_tags=(),
    pid=None,
    created=None,
    steps=("start", "end"),
    origin=None,
) -> dict:
    """A run with one task per step, each task's record holding ``artifacts`` (name -> value)."""
    created = time.time() if created is None else created
    ids = {name: store.put_artifact(value, name) for name, value in artifacts.items()}
    code = store.put_bytes(f"# flow {flow}\n".encode())
    parents = []
    tasks = {}
    for index, step in enumerate(steps, 1):
        record = {
            "kind": "task",
            "flow": flow,
            "run_id": run_id,
            "step": step,
            "task_id": index,
            "attempt": 0,
            "status": "ok",
            "parents": parents,
            "artifacts": ids,
            "new_artifacts": sorted(ids),
            "stdout": store.put_bytes(f"{flow}/{run_id}/{step} out\n".encode()),
            "stderr": store.put_bytes(b""),
            "code": code,
            "started": created,
            "finished": created + 1,
        }
        rid = store.put_record(record)
        store.set_ref(f"tasks/{flow}/{run_id:010d}/{step}/{index:010d}", rid)
        tasks[step] = rid
        parents = [rid]
    meta = {
        "flow": flow,
        "run_id": run_id,
        "status": status,
        "user": "tester",
        "user_tags": sorted(user_tags),
        "system_tags": ["user:tester"],
        "parameters": {},
        "created": created,
        "finished": None if status == "running" else created + 2,
        "origin_run_id": origin,
        "resumed_from": origin,
        "code": code,
        "code_path": "flow.py",
        "pid": os.getpid() if pid is None else pid,
        "host": socket.gethostname(),
        "deleted": None,
    }
    store.set_ref(f"runs/{flow}/{run_id:010d}", meta)
    return {"artifacts": ids, "tasks": tasks, "code": code}


def dead_pid() -> int:
    """A pid that is not running (a crashed scheduler)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
