"""Flow-level reliability (issue 8 section 4): kill -9, concurrency, a full disk, corruption.

Every test runs real flow processes against one store and then checks the
store the way a user would: ``fsck`` must pass, the client must tell the
truth about each run, and every artifact of every finished task must read
back. Trial counts are small in CI and large under ``pytest --stress``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cafstore.exception import CorruptObject, StorageFull
from cafstore.maintenance import gc
from cafstore.maintenance.repair import runs_using
from cafstore.store import Store, StoreConfig

FLOW = Path(__file__).with_name("flows") / "reliable_flow.py"


def _flow(store: Path, *args: str, env: "dict | None" = None) -> subprocess.Popen:
    """The flow as a user starts it, in its own process group. Its tasks are in groups of their own,
    and die with the flow process all the same (``test_a_killed_run_resumes`` and
    ``test_killed_runs.py`` check that)."""
    return subprocess.Popen(
        [sys.executable, str(FLOW), "--store", str(store), "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def _client(store: Path, monkeypatch):
    monkeypatch.setenv("CAFSTORE_HOME", str(store))
    import cafstore

    cafstore.namespace(None)
    return cafstore


def _check_runs(store_path: Path, monkeypatch) -> dict:
    """fsck passes; each run's status is truthful; every finished task's artifacts load. Returns statuses."""
    store = Store(store_path)
    report = store.fsck()
    assert report.ok, report.problems[:5]
    client = _client(store_path, monkeypatch)
    statuses = {}
    try:
        runs = list(client.Flow("ReliableFlow").runs())
    except client.CafstoreError:
        return statuses  # killed before the first run was registered
    for run in runs:
        statuses[run.pathspec] = run.status
        if run.successful:
            data = run["join"].task.data
            assert data.total == 10 * sum(range(int(data.width)))
        else:
            assert not run.finished or run.status == "failed"
        for step in run:
            for task in step:
                for artifact in task.artifacts:
                    artifact.data  # noqa: B018 - loading is the check
    store.close()
    return statuses


def test_sigkill_at_random_moments_leaves_a_consistent_store(any_store_path, monkeypatch, stress_trials):
    store = any_store_path
    s3 = (store / "store.json").exists()
    started = time.time()
    first = _flow(store)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
    duration = time.time() - started
    rng = random.Random(30)
    trials = stress_trials(ci=3 if s3 else 30, full=200)  # blobs in SeaweedFS: fewer kills in CI
    for _ in range(trials):
        proc = _flow(store)
        time.sleep(rng.uniform(0, duration))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    statuses = _check_runs(store, monkeypatch)
    assert statuses.get("ReliableFlow/1") == "succeeded"
    assert set(statuses.values()) <= {"succeeded", "failed", "crashed"}
    assert "crashed" in statuses.values(), "some kills should have landed mid-run"
    s = Store(store)
    report = gc.collect(s, grace=0)  # crashed runs are finished-failed for retention; nothing runs now
    assert s.fsck().ok and not s.fsck().notes, s.fsck().notes[:5]
    assert report.scanned > 0


def test_a_killed_run_resumes(any_store_path):
    """Killed while its work tasks sleep: they die with it (nothing of them is committed, even after
    their sleep would have ended), and the resume reuses the start task and runs the rest."""
    store = any_store_path
    proc = _flow(store, "--pause", "1")
    deadline = time.monotonic() + 60
    while not _ok_records(store, 1):  # the start task has committed: the work tasks are starting
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    time.sleep(1)  # had the work tasks survived, they would commit now
    finished = _ok_records(store, 1)
    assert len(finished) == 1, "tasks of the killed run went on and committed"
    resumed = subprocess.run(
        [sys.executable, str(FLOW), "--store", str(store), "resume"], capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # Every task the killed run finished is reused by hash, not run again.
    assert finished <= _ok_records(store, 2), resumed.stdout
    assert resumed.stdout.count("; not run again.") == len(finished), resumed.stdout


def _ok_records(store_path: Path, run_id: int) -> set:
    """Ids of the successful task records the run's task refs point at."""
    from cafstore import schema

    if not (store_path / "index").exists():
        return set()
    store = Store(store_path)
    try:
        refs = store.list_refs(schema.tasks_prefix("ReliableFlow", run_id))
        return {str(oid) for _, oid in refs if store.get_record(oid)["status"] == schema.TASK_OK}
    finally:
        store.close()


def test_four_flows_and_a_reader_at_once_lose_nothing(tmp_path, monkeypatch):
    store = tmp_path / "store"
    warm = _flow(store, "--width", "1")  # creates the store and the flow before the crowd arrives
    assert warm.wait(120) == 0
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(store)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    flows = [_flow(store, "--width", "6") for _ in range(4)]
    for proc in flows:
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out
    reader.send_signal(signal.SIGTERM)
    out, _ = reader.communicate(timeout=30)
    assert "reads" in out and "Traceback" not in out, out
    statuses = _check_runs(store, monkeypatch)
    assert sorted(statuses.values()) == ["succeeded"] * 5
    client = _client(store, monkeypatch)
    for run in client.Flow("ReliableFlow").runs():
        if run.id != "1":
            assert len(list(run["work"])) == 6


_READER = """
import signal, sys, os
os.environ["CAFSTORE_HOME"] = sys.argv[1]
import cafstore
cafstore.namespace(None)
reads = 0
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
while not stop:
    for run in cafstore.Flow("ReliableFlow").runs():
        for step in run:
            for task in step:
                for artifact in task.artifacts:
                    artifact.data
                    reads += 1
print("reads", reads)
"""


def test_a_corrupt_artifact_names_itself_and_its_runs(tmp_path, monkeypatch):
    store_path = tmp_path / "store"
    proc = _flow(store_path, "--width", "2")
    assert proc.wait(120) == 0
    client = _client(store_path, monkeypatch)
    task = next(iter(client.Run("ReliableFlow/1")["work"]))
    store = Store(store_path)
    oid = next(st.oid for st in store.iter_objects() if st.location in ("file", "chunked") and st.size > 100_000)
    victim = store.blobs.path(oid)
    if not victim.exists():  # chunked: corrupt one of its chunk files
        from cafstore.store import chunks

        victim = next(store.blobs.path(c) for c, _ in chunks.chunk_ids(store, oid) if store.blobs.path(c).exists())
    os.chmod(victim, 0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(CorruptObject) as info:
        store.get_artifact(oid, verify=True)
    assert info.value.oid == oid and str(oid) in str(info.value)
    assert list(runs_using(store, [oid])) == ["ReliableFlow/1"]
    fsck = subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store_path), "fsck"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fsck.returncode == 1 and "run ReliableFlow/1 lost data" in fsck.stdout, fsck.stdout
    assert task.pathspec.split("/")[:3] == ["ReliableFlow", "1", "work"]


def test_a_full_disk_fails_the_run_clearly_and_the_store_stays_consistent(tmp_path, monkeypatch):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=6m tmpfs {mount} 2>/dev/null") != 0:
        pytest.skip("cannot mount a small tmpfs here (tests/maintenance injects ENOSPC instead)")
    try:
        store = mount / "store"
        ok = _flow(store, "--width", "1", "--big", "1000")
        assert ok.wait(120) == 0, ok.stdout.read()
        full = _flow(store, "--width", "4", "--big", str(2_000_000))
        out, _ = full.communicate(timeout=180)
        assert full.returncode != 0
        assert "full" in out.lower(), out[-2000:]
        assert "Traceback (most recent call last)" not in out or "StorageFull" in out
        s = Store(store, config=StoreConfig(durable=False))
        assert s.fsck().ok, s.fsck().problems[:5]
        client = _client(store, monkeypatch)
        assert client.Run("ReliableFlow/1").successful
        assert not client.Run("ReliableFlow/2").successful
        gc.collect(s, grace=0)  # gc frees the failed run's leftovers on a full disk
        assert s.fsck().ok
        s.close()
    finally:
        os.system(f"umount {mount}")
    assert StorageFull.headline == "store is full"
