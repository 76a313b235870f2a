"""Running flows as a user would, and reading what they stored.

Flows run in a subprocess (``python FLOW --store S run ...``) against a
temporary store; results are read back straight from the store's refs and
records (docs/datamodel.md), not through the client.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

FLOWS = Path(__file__).parent / "flows"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_STORE_ENV = (
    "CAFSTORE_HOME",
    "CAFSTORE_INLINE_THRESHOLD",
    "CAFSTORE_CHUNK_THRESHOLD",
    "CAFSTORE_CHUNK_ALL",
    "CAFSTORE_NAMESPACE",
    "CAFSTORE_RUN_MAX_WORKERS",
    "CAFSTORE_RUN_MAX_NUM_SPLITS",
    "CAFSTORE_START_METHOD",
    "CAFSTORE_EXECUTOR",
    "CAFSTORE_PROFILE",
)


def env_for(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _STORE_ENV and not k.startswith("CAFSTORE_RUN_")}
    env["CAFSTORE_USER"] = "tester"
    env.update(extra or {})
    return env


def run_flow(
    flow: "str | Path",
    *args: str,
    store: "str | Path",
    env: Optional[Dict[str, str]] = None,
    cwd: "str | Path | None" = None,
    command: str = "run",
    timeout: float = 90,
    global_args: tuple = (),
) -> "subprocess.CompletedProcess[str]":
    """``python FLOW --store STORE [global_args] COMMAND ARGS``; ``command=''`` for none."""
    path = Path(flow) if os.path.isabs(str(flow)) or os.sep in str(flow) else FLOWS / flow
    argv = (
        [sys.executable, str(path), "--store", str(store), *global_args] + ([command] if command else []) + list(args)
    )
    return subprocess.run(
        argv, cwd=str(cwd or path.parent), env=env_for(env), capture_output=True, text=True, timeout=timeout
    )


def fsck_ok(store: "str | Path") -> bool:
    from cafstore.store import Store

    s = Store(store)
    try:
        report = s.fsck()
        assert report.ok, report.problems
        return True
    finally:
        s.close()


class Stored:
    """What a store holds about runs, read from refs and records."""

    def __init__(self, path: "str | Path") -> None:
        from cafstore.store import Store

        self.store = Store(path)

    def close(self) -> None:
        self.store.close()

    def runs(self, flow: str) -> List[dict]:
        return [meta for _, meta in self.store.list_refs(f"runs/{flow}/")]

    def run(self, flow: str, run_id: Optional[int] = None) -> dict:
        runs = self.runs(flow)
        assert runs, f"no run of {flow}"
        if run_id is None:
            return runs[-1]
        return next(r for r in runs if r["run_id"] == run_id)

    def tasks(self, flow: str, run_id: Optional[int] = None, step: Optional[str] = None) -> List[dict]:
        run_id = self.run(flow, run_id)["run_id"] if run_id is None else run_id
        prefix = f"tasks/{flow}/{run_id:010d}/" + (f"{step}/" if step else "")
        return [self.store.get_record(oid) for _, oid in self.store.list_refs(prefix)]

    def task(self, flow: str, step: str, run_id: Optional[int] = None) -> dict:
        found = self.tasks(flow, run_id, step)
        assert len(found) == 1, f"{len(found)} tasks of step {step}"
        return found[0]

    def data(self, record: dict) -> Dict[str, Any]:
        return {name: self.store.get_artifact(oid) for name, oid in record["artifacts"].items()}

    def log(self, record: dict, stream: str = "stdout") -> str:
        raw = self.store.get_bytes(record[stream])
        return b"".join(line[28:] for line in raw.splitlines(keepends=True)).decode()

    def raw_log(self, record: dict, stream: str = "stdout") -> bytes:
        return self.store.get_bytes(record[stream])
