"""Two users, each with a store in a temp dir, and the commands they type (in subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from cafstore import schema
from cafstore.store import Store, records

FLOWS = Path(__file__).parent / "flows"
EXAMPLES = Path(__file__).parent.parent.parent / "examples"
_USER_ENV = ("CAFSTORE_USER", "METAFLOW_USER", "USERNAME", "CAFSTORE_HOME")


def env_of(user: str, extra: Optional[dict] = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _USER_ENV}
    env["USER"] = user
    env.update(extra or {})
    return env


def cafstore(store: Path, user: str, *args: str, timeout: float = 120) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store), *map(str, args)],
        capture_output=True,
        text=True,
        env=env_of(user),
        timeout=timeout,
    )


def flow(store: Path, user: str, file: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    done = subprocess.run(
        [sys.executable, str(file), "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=env_of(user),
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def ok(done: "subprocess.CompletedProcess[str]") -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def remote_problems(root: Path) -> list:
    """Every way a directory remote breaks "a ref never names an object the remote lacks": for each run
    ref version, each pack and loose object it names must be there, and each of the run's objects must
    be in one of them (checked by walking its records)."""
    from cafstore.remote import packs as packs_mod
    from cafstore.store.objectid import ObjectId

    problems = []
    for ref in sorted((root / "refs").rglob("*")) if (root / "refs").exists() else []:
        if not ref.is_file():
            continue
        doc = records.decode(ref.read_bytes())
        held: dict = {}
        for pack_id in doc.get("packs", []):
            pack, idx = root / packs_mod.pack_key(pack_id), root / packs_mod.index_key(pack_id)
            if not (pack.exists() and idx.exists()):
                problems.append(f"{ref}: pack {pack_id} missing")
                continue
            body = pack.read_bytes()
            for entry in packs_mod.read_index(pack_id, idx.read_bytes()):
                held[entry.oid] = (entry.encoding, body[entry.offset : entry.offset + entry.size])
        for oid, _enc, _size in doc.get("loose", []):
            if not (root / "objects" / str(oid)).exists():
                problems.append(f"{ref}: loose {oid} missing")
            held[ObjectId(oid)] = (0, None)
        stack = list(records.referenced_ids(doc["run"])) + list(doc["tasks"].values())
        seen: set = set()
        while stack:
            oid = stack.pop()
            if oid in seen:
                continue
            seen.add(oid)
            if oid not in held:
                problems.append(f"{ref}: object {oid} on no pack or loose key")
                continue
            encoding, data = held[oid]
            if encoding == 2:
                stack.extend(records.referenced_ids(records.decode_record(data)))
    return problems


def runs_of(store_path: Path) -> dict:
    """{"Flow/N": run metadata} of a store, read directly."""
    store = Store(store_path)
    try:
        return {f"{m['flow']}/{m['run_id']}": m for _, m in store.list_refs(schema.RUNS_PREFIX)}
    finally:
        store.close()


def client_artifacts(run: Any) -> dict:
    """{step/task: ({artifact: value}, last line of its stdout)} of a run, read through the client."""
    out = {}
    for step in run:
        for task in step:
            out[task.pathspec.split("/", 2)[2]] = (
                {a.id: a.data for a in task},
                task.stdout.splitlines()[-1:] if task.stdout else [],
            )
    return out


def fsck_ok(path: Path) -> None:
    """``fsck`` of the store at ``path`` passes (the store closed again after)."""
    store = Store(path)
    try:
        report = store.fsck()
        assert report.ok, report.problems
    finally:
        store.close()
