"""Runs written into a real store exactly as docs/datamodel.md says the runner writes them.

The suite prefers real runs of real flows (see conftest.py); these writers
cover states a real run cannot be caught in on demand (a crashed
scheduler, a run still in flight, thousands of runs, a deleted run).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from cafstore.store import Store

STAMP = "2024-01-02T03:04:05.678901Z "
FLOWS = Path(__file__).parent / "flows"
_CLIENT_ENV = ("CAFSTORE_USER", "CAFSTORE_NAMESPACE")


def log_bytes(text: str) -> bytes:
    return b"".join(STAMP.encode() + line.encode() + b"\n" for line in text.splitlines())


def write_run(
    store: Store,
    flow: str,
    *,
    user: str = "anne",
    artifacts: Optional[Dict[str, Any]] = None,
    steps: Sequence[str] = ("start", "end"),
    status: str = "succeeded",
    user_tags: Sequence[str] = (),
    extra_system_tags: Sequence[str] = (),
    pid: Optional[int] = None,
    created: Optional[float] = None,
    origin_run_id: Optional[int] = None,
    failed_step: Optional[str] = None,
    source: Optional[str] = None,
) -> int:
    """One run of a linear flow, one task per step; returns its run id."""
    created = time.time() if created is None else created
    source = source or f"class {flow}(FlowSpec):\n    pass\n"
    ids = {name: store.put_artifact(value, name) for name, value in (artifacts or {}).items()}
    code = store.put_bytes(source.encode())
    graph = store.put_record(
        {
            "name": flow,
            "file": "flow.py",
            "doc": "",
            "steps": [
                {
                    "name": s,
                    "type": "end" if s == "end" else "linear",
                    "next": [] if i == len(steps) - 1 else [steps[i + 1]],
                }
                for i, s in enumerate(steps)
            ],
        }
    )
    with store.transaction() as txn:
        run_id = txn.next_counter(f"run_id/{flow}")
        if txn.get_ref(f"flows/{flow}") is None:
            txn.set_ref(f"flows/{flow}", {"name": flow, "created": created})
        parents = []
        for number, step in enumerate(steps, 1):
            failed = step == failed_step
            record = {
                "kind": "task",
                "flow": flow,
                "run_id": run_id,
                "step": step,
                "task_id": number,
                "attempt": 0,
                "status": "failed" if failed else "ok",
                "parents": parents,
                "artifacts": ids,
                "new_artifacts": sorted(ids) if number == 1 else [],
                "stdout": txn.put_bytes(log_bytes(f"{step} says hello\nsecond line of {step}")),
                "stderr": txn.put_bytes(log_bytes(f"{step} warning" if step == "start" else "")),
                "code": code,
                "started": created + number,
                "finished": created + number + 0.5,
                "exception": {"type": "ValueError", "message": "boom", "traceback": "Traceback...\nValueError: boom"}
                if failed
                else None,
                "foreach_stack": [],
                "num_splits": None,
                "env": {
                    "python_version": "3.11.7",
                    "platform": "linux",
                    "hostname": "h",
                    "pid": 1,
                    "cafstore_version": "0.1.0",
                    "user": user,
                },
                "cache_key": None,
                "previous_attempt": None,
            }
            oid = txn.put_record(record)
            txn.set_ref(f"tasks/{flow}/{run_id:010d}/{step}/{number:010d}", oid)
            parents = [oid]
            if failed:
                break
        txn.set_ref(
            f"runs/{flow}/{run_id:010d}",
            {
                "flow": flow,
                "run_id": run_id,
                "status": status,
                "user": user,
                "user_tags": sorted(set(user_tags)),
                "system_tags": sorted({f"user:{user}", "runtime:dev", *extra_system_tags}),
                "parameters": {},
                "created": created,
                "finished": None if status == "running" else created + len(steps) + 1,
                "origin_run_id": origin_run_id,
                "resumed_from": origin_run_id,
                "code": code,
                "code_path": "flow.py",
                "graph": graph,
                "pid": os.getpid() if pid is None else pid,
                "host": socket.gethostname(),
                "deleted": None,
            },
        )
    return run_id


def dead_pid() -> int:
    """A pid that is not running (a scheduler that crashed)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def flow_env(store_path, user: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CAFSTORE_HOME", *_CLIENT_ENV)}
    env.update(CAFSTORE_HOME=str(store_path), CAFSTORE_USER=user, **extra)
    return env


def run_flow(flow_file, store_path, user: str, *args: str, check: bool = True, **extra):
    """``python FLOW ARGS`` as ``user`` against ``store_path``; returns the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, str(flow_file), *args],
        env=flow_env(store_path, user, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(Path(store_path).parent),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{flow_file} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
