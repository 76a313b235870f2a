"""Resume and ``run --cache`` never reuse a task whose stored data are missing or corrupt (issue 12, item 3).

Each test runs the real flow (``flows/reuse_flow.py``: start stores a large
artifact, the same bytes every run), damages one object's file on disk the
way a disk, a user or a stray script would (deleted, truncated, one byte
flipped), and reuses the run. The damaged task must run again, say why in
one line, and leave a store in which fsck passes and the new run's data read
back verified -- a task run again must store its bytes afresh, not
deduplicate against the damaged copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cafstore import schema
from cafstore.store import ObjectId, Store, chunks

FLOW = Path(__file__).with_name("flows") / "reuse_flow.py"
SIZE = 300_000
_STARTED = re.compile(r"\[ReuseFlow/\d+/(\w+)/\d+\] Task is starting")
_REUSED = re.compile(r"\[ReuseFlow/\d+/(\w+)/\d+\] Reused ")


def _flow(store: Path, *args: str, env: "dict | None" = None) -> "subprocess.CompletedProcess[str]":
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    environ.update({"CAFSTORE_USER": "tester", **(env or {})})
    return subprocess.run(
        [sys.executable, str(FLOW), "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def _started(out: str) -> Counter:
    return Counter(_STARTED.findall(out))


def _reused(out: str) -> Counter:
    return Counter(_REUSED.findall(out))


def _record(store: Store, run_id: int, step: str) -> dict:
    [(_, record_id)] = store.list_refs(schema.tasks_prefix("ReuseFlow", run_id, step))
    return store.get_record(record_id)


def _file_of(store: Store, oid: ObjectId) -> Path:
    """The blob file holding ``oid``, or for a chunked object the file of one of its chunks."""
    listed = chunks.chunk_ids(store, oid)
    if listed is None:
        return store.blobs.path(oid)
    return next(store.blobs.path(c) for c, _ in listed if store.blobs.path(c).exists())


def _damage(path: Path, how: str) -> None:
    os.chmod(path, 0o644)  # blobs are read-only files; a damaging hand need not care
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        os.truncate(path, path.stat().st_size // 2)
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))


def _check_healed(store_path: Path, run_id: int, expected: bytes, lost: str = "") -> None:
    """fsck (the CLI, as a user runs it) passes, or names only the run ``lost`` as having lost
    data; the run's artifact reads back verified."""
    fsck = subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store_path), "fsck"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    named = re.findall(r"run (\S+) lost data", fsck.stdout)
    assert named == ([lost] if lost else []) and fsck.returncode == (1 if lost else 0), fsck.stdout + fsck.stderr
    store = Store(store_path)
    for step in ("start", "middle"):
        oid = _record(store, run_id, step)["artifacts"]["blob"]
        assert store.get_artifact(oid, verify=True) == expected
    store.close()


def _blob_bytes(size: int = SIZE) -> bytes:
    import random

    return random.Random(7).randbytes(size)


@pytest.mark.parametrize("how", ["delete", "truncate", "flip"])
def test_run_cache_runs_a_task_again_when_its_artifact_file_is_damaged(tmp_path, how):
    store_path = tmp_path / "store"
    first = _flow(store_path, "run", "--cache")
    assert first.returncode == 0, first.stdout + first.stderr
    store = Store(store_path)
    oid = _record(store, 1, "start")["artifacts"]["blob"]
    _damage(_file_of(store, oid), how)

    second = _flow(store_path, "run", "--cache")
    out = second.stdout
    assert second.returncode == 0, out + second.stderr
    assert (
        f"[ReuseFlow/2/start/1] Not reusing ReuseFlow/1/start/1: its stored data are damaged "
        f"(artifact 'blob', object {oid.short}: " in out
    ), out
    assert _started(out) == {"start": 1}, out
    # start stored the very same bytes again, so the steps after it still hit the cache
    assert _reused(out) == {"middle": 1, "end": 1}, out
    _check_healed(store_path, 2, _blob_bytes())
    _check_healed(store_path, 1, _blob_bytes())  # the same bytes heal the first run too
    quarantined = sorted(p.name for p in (store_path / "quarantine").glob("*")) if how != "delete" else []
    assert quarantined == ([] if how == "delete" else [str(oid)])  # the damaged bytes are kept aside


def test_resume_of_a_run_with_a_corrupt_artifact_runs_its_task_and_everything_after_it(tmp_path):
    """The issue's reproduction: one byte of the artifact's file flipped, then ``resume``."""
    store_path = tmp_path / "store"
    first = _flow(store_path, "run", env={"FAIL_AT": "end"})
    assert first.returncode == 1, first.stdout + first.stderr
    store = Store(store_path)
    oid = _record(store, 1, "start")["artifacts"]["blob"]
    _damage(_file_of(store, oid), "flip")

    resumed = _flow(store_path, "resume")
    out = resumed.stdout
    assert resumed.returncode == 0, out + resumed.stderr
    assert "[ReuseFlow/2/start/1] Not reusing ReuseFlow/1/start/1: its stored data are damaged" in out, out
    assert "its bytes are corrupt" in out, out
    # middle's own data are intact, but its input was recomputed: it runs too, as after any re-run upstream
    assert _started(out) == {"start": 1, "middle": 1, "end": 1} and not _reused(out), out
    _check_healed(store_path, 2, _blob_bytes())


def test_a_damaged_log_reruns_only_its_task(tmp_path):
    """stdout is part of a task's data: middle runs again, start (intact) is still reused."""
    store_path = tmp_path / "store"
    chatter = {"CHATTER": "50000"}  # middle's stdout is over the inline threshold: a file of its own
    first = _flow(store_path, "run", env={"FAIL_AT": "end", **chatter})
    assert first.returncode == 1, first.stdout + first.stderr
    store = Store(store_path)
    log = _record(store, 1, "middle")["stdout"]
    assert store.stat(log).location == "file"
    _damage(_file_of(store, log), "delete")

    resumed = _flow(store_path, "resume", env=chatter)
    out = resumed.stdout
    assert resumed.returncode == 0, out + resumed.stderr
    assert f"Not reusing ReuseFlow/1/middle/2: its stored data are damaged (stdout, object {log.short}: " in out
    assert _reused(out) == {"start": 1} and _started(out) == {"middle": 1, "end": 1}, out
    # a log holds timestamps, so the new one is other bytes: the first run's log stays lost (and fsck says so)
    _check_healed(store_path, 2, _blob_bytes(), lost="ReuseFlow/1")


def test_a_missing_chunk_of_a_chunked_artifact_makes_its_task_run_again(tmp_path):
    store_path = tmp_path / "store"
    size = 3_000_000
    chunked = {"CAFSTORE_CHUNK_THRESHOLD": "1000000", "CAFSTORE_CHUNK_ALL": "1"}
    first = _flow(store_path, "run", "--size", str(size), env={"FAIL_AT": "end", **chunked})
    assert first.returncode == 1, first.stdout + first.stderr
    store = Store(store_path)
    oid = _record(store, 1, "start")["artifacts"]["blob"]
    assert store.stat(oid).location == "chunked"
    chunk = _file_of(store, oid)
    chunk.unlink()

    resumed = _flow(store_path, "resume", env=chunked)
    out = resumed.stdout
    assert resumed.returncode == 0, out + resumed.stderr
    assert f"(artifact 'blob', object {oid.short} (its chunk {chunk.parent.name + chunk.name[:10]}): " in out, out
    assert _started(out) == {"start": 1, "middle": 1, "end": 1}, out
    _check_healed(store_path, 2, _blob_bytes(size))
