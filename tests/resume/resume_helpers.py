"""Running the resume and cache test flows as a user would, and reading what they left behind.

Each test copies the flow files it needs from ``flows/`` into its own ``tmp_path`` (so it can
edit their code the way a user fixes a bug) and runs them as subprocesses --
``python FLOW COMMAND ...`` with ``CAFSTORE_HOME`` pointing at a store of its own. Outputs are
read from the scheduler's log lines: ``[F/2/a/3] Task is starting.`` for every task process
started, ``[F/2/a/3] Reused F/1/a/3 (...)`` for every task taken from an earlier run.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Counter, Dict, Optional

FLOWS = Path(__file__).parent / "flows"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

_STARTED = re.compile(r"\[\w+/\d+/(\w+)/\d+\] Task is starting")
_REUSED = re.compile(r"\[\w+/\d+/(\w+)/\d+\] Reused (\w+/\d+/\w+/\d+) \(([^)]*)\)")


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Our environment without anything that picks a store, a namespace or runner limits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_") and k not in ("FAIL_AT",)}
    env.update(extra or {})
    return env


class FlowCopy:
    """A private copy of a test flow file, run against ``store`` (a directory in tmp_path)."""

    def __init__(self, source: Path, workdir: Path, store: Path, user: str = "tester") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.path = workdir / source.name
        shutil.copyfile(source, self.path)
        self.store, self.user = store, user

    def __call__(
        self, *args: str, user: Optional[str] = None, env: Optional[Dict[str, str]] = None, timeout: float = 120
    ) -> "subprocess.CompletedProcess[str]":
        environ = clean_env({"CAFSTORE_HOME": str(self.store), "CAFSTORE_USER": user or self.user, **(env or {})})
        return subprocess.run(
            [sys.executable, str(self.path), *args],
            cwd=str(self.path.parent),
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cafstore(
        self, *args: str, user: Optional[str] = None, env: Optional[Dict[str, str]] = None, timeout: float = 120
    ) -> "subprocess.CompletedProcess[str]":
        """The global ``cafstore`` command, on the same store."""
        environ = clean_env({"CAFSTORE_HOME": str(self.store), "CAFSTORE_USER": user or self.user, **(env or {})})
        return subprocess.run(
            [sys.executable, "-m", "cafstore.cli.main", *args],
            cwd=str(self.path.parent),
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def edit(self, old: str, new: str) -> None:
        """Change the flow's code, as a user fixing it would (``old`` must occur exactly once)."""
        text = self.path.read_text()
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {self.path.name}"
        self.path.write_text(text.replace(old, new))


def started(out: str) -> Counter[str]:
    """How many task processes were started, by step."""
    return collections.Counter(_STARTED.findall(out))


def reused(out: str) -> Counter[str]:
    """How many tasks were reused instead of run, by step."""
    return collections.Counter(step for step, _origin, _source in _REUSED.findall(out))


def reused_from(out: str) -> Dict[str, set]:
    """For each reused step: the set of ``(origin task pathspec, source)`` the log names."""
    found: Dict[str, set] = collections.defaultdict(set)
    for step, origin, source in _REUSED.findall(out):
        found[step].add((origin, source))
    return found


def both(proc: "subprocess.CompletedProcess[str]") -> str:
    return f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def read_store(path: Path):
    from cafstore.store import Store

    return Store(path)


def run_meta(store_path: Path, flow: str, run_id: int) -> dict:
    store = read_store(store_path)
    try:
        return store.get_ref(f"runs/{flow}/{run_id:010d}")
    finally:
        store.close()


def task_refs(store_path: Path, flow: str, run_id: int) -> Dict[str, str]:
    """``step/task_id`` -> record id (hex) of every task ref of the run."""
    store = read_store(store_path)
    try:
        prefix = f"tasks/{flow}/{run_id:010d}/"
        return {name[len(prefix) :]: str(oid) for name, oid in store.list_refs(prefix)}
    finally:
        store.close()


def store_bytes(path: Path) -> Dict[str, int]:
    """Disk use of the store, as ``du`` counts it (allocated blocks): total and the LMDB index."""
    total = index = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            used = st.st_blocks * 512
            total += used
            if name.endswith(".mdb"):
                index += used
    return {"total": total, "index": index}
