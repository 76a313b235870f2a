"""Issue 12 item 1: an emptied, removed, replaced or rolled-back index never makes gc delete objects.

Each test builds a real store with the reliability flow (large artifacts are
object files), damages its index on disk the way it happens to users
(truncation, ``rm -r index``, a copy of another store's index, a restored
backup), and then drives the real ``cafstore`` command: fsck must call the
index lost and exit 1, gc must refuse and leave every object file in place,
and ``fsck --repair`` must bring back what lived outside the index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest
from store_damage import cli

from cafstore.store import Store

FLOW = Path(__file__).with_name("flows") / "reliable_flow.py"


def _flow(store: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(FLOW), "--store", str(store), "run", "--pause", "0", "--width", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _object_files(store: Path) -> dict:
    return {p.name: p.stat().st_size for p in (store / "objects").rglob("*") if p.is_file()}


def _copy_index(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "data.mdb", target / "data.mdb")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """Run 1, a backup of the index, gc (which snapshots the index), run 2: built once, copied per test."""
    base = tmp_path_factory.mktemp("two-runs")
    store = base / "store"
    _flow(store)
    _copy_index(store / "index", base / "backup")
    assert cli(store, "gc").returncode == 0
    _flow(store)
    return base


def _other_stores_index(tmp_path: Path, store: Path) -> None:
    other = Store(tmp_path / "other")  # a store of its own, with its own id
    other.put_bytes(b"another store")
    other.close()
    _copy_index(tmp_path / "other" / "index", store / "index")


DAMAGE = {
    "truncated to 0 bytes": lambda tmp, store, backup: os.truncate(store / "index" / "data.mdb", 0),
    "index/ removed": lambda tmp, store, backup: shutil.rmtree(store / "index"),
    "replaced by another store's": lambda tmp, store, backup: _other_stores_index(tmp, store),
    "rolled back to a copy older than the last gc": lambda tmp, store, backup: _copy_index(backup, store / "index"),
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_lost_index_is_reported_gc_refuses_and_repair_rebuilds_it(tmp_path, monkeypatch, two_runs, how):
    shutil.copytree(two_runs, tmp_path / "copy")
    store, backup = tmp_path / "copy" / "store", tmp_path / "copy" / "backup"
    files = _object_files(store)
    assert len(files) >= 4  # two runs x two 200 KB artifacts
    DAMAGE[how](tmp_path, store, backup)

    fsck = cli(store, "fsck")
    assert fsck.returncode == 1 and "index lost" in fsck.stdout, fsck.stdout
    gc = cli(store, "gc", "--grace", "0")
    assert gc.returncode == 1 and "index lost" in gc.stderr, gc.stdout + gc.stderr
    assert _object_files(store) == files  # gc deleted nothing
    log = cli(store, "log")  # every command refuses the lost index with the same paragraph
    assert log.returncode == 1 and "fsck --repair" in log.stderr

    repair = cli(store, "fsck", "--repair")
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert "restored gc's snapshot" in repair.stdout and "not recoverable" in repair.stdout, repair.stdout
    assert "lost-found/" in repair.stdout
    assert cli(store, "fsck").returncode == 0
    assert cli(store, "gc", "--grace", "0").returncode == 0
    assert _object_files(store) == files  # re-indexed files are kept by the lost-found ref

    # Run 1 was in gc's snapshot: it is back, and its large artifacts read verified.
    monkeypatch.setenv("CAFSTORE_HOME", str(store))
    import cafstore

    cafstore.namespace(None)
    run = cafstore.Run("ReliableFlow/1")
    assert run.successful and sorted(len(t.data.blob) for t in run["work"]) == [200_000, 200_000]
    # Run 2's records lived only in the lost index; its large values are under lost-found.
    s = Store(store)
    (name, value), *_ = s.list_refs("lost-found/")
    listed = s.get_record(value["record"])["objects"]
    assert len(listed) == value["objects"] >= 2
    assert all(s.get_bytes(oid, verify=True) for oid in listed)
    s.close()


def test_an_index_emptied_without_any_gc_snapshot_is_rebuilt_from_the_files(tmp_path):
    store = tmp_path / "store"
    _flow(store)
    files = _object_files(store)
    os.truncate(store / "index" / "data.mdb", 0)
    assert cli(store, "gc", "--grace", "0").returncode == 1
    repair = cli(store, "fsck", "--repair")
    assert repair.returncode == 0 and "no snapshot" in repair.stdout, repair.stdout
    assert f"re-indexed {len(files)} object files" in repair.stdout
    assert cli(store, "gc", "--grace", "0").returncode == 0
    assert _object_files(store) == files
    assert any(p.name.startswith("index.lost-") for p in store.iterdir())  # moved aside, never deleted


def _make_legacy(store: Path) -> None:
    """What a store made before ids looks like: no id in store.json, none in the index, no mark."""
    settings = json.loads((store / "store.json").read_text())
    del settings["id"]
    (store / "store.json").write_text(json.dumps(settings))
    for name in ("index-mark.json", "index-snapshot.mdb"):
        (store / name).unlink(missing_ok=True)
    env = lmdb.open(str(store / "index"), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"meta", txn=txn), delete=True)
    env.close()


def test_a_store_from_before_ids_is_adopted_and_keeps_working(tmp_path):
    store = tmp_path / "store"
    _flow(store)
    _make_legacy(store)
    assert cli(store, "fsck").returncode == 0
    adopted = json.loads((store / "store.json").read_text())
    assert adopted["blobs"]["backend"] == "local" and len(adopted["id"]) == 32
    _flow(store)
    assert cli(store, "gc").returncode == 0
    assert json.loads((store / "store.json").read_text())["id"] == adopted["id"]


def test_an_emptied_index_of_a_store_from_before_ids_is_still_caught(tmp_path):
    store = tmp_path / "store"
    _flow(store)
    _make_legacy(store)
    files = _object_files(store)
    os.truncate(store / "index" / "data.mdb", 0)
    fsck = cli(store, "fsck")
    assert fsck.returncode == 1 and "index lost" in fsck.stdout
    assert cli(store, "gc", "--grace", "0").returncode == 1
    assert _object_files(store) == files


def test_gc_refuses_when_unindexed_files_outnumber_indexed_ones(tmp_path):
    """A rolled-back index the generation cannot see (copied after the last gc): the ratio rule."""
    path = tmp_path / "store"
    s = Store(path)
    for i in range(4):
        s.set_ref(f"keep/{i}", {"blob": s.put_bytes(os.urandom(40_000))})
    s.close()
    assert cli(path, "gc").returncode == 0
    backup = tmp_path / "backup"
    _copy_index(path / "index", backup)
    s = Store(path)
    for i in range(70):
        s.set_ref(f"later/{i}", {"blob": s.put_bytes(os.urandom(40_000))})
    s.close()
    _copy_index(backup, path / "index")
    past = time.time() - 7200
    for file in (path / "objects").rglob("*"):
        if file.is_file():
            os.utime(file, (past, past))
    files = _object_files(path)
    gc = cli(path, "gc")
    assert gc.returncode == 1 and "70 object files older than the grace period are not in the index" in gc.stderr
    assert _object_files(path) == files
    forced = cli(path, "gc", "--delete-unindexed")
    assert forced.returncode == 0 and "70 orphan files" in forced.stdout, forced.stdout
    assert len(_object_files(path)) == 4


def test_a_gc_killed_mid_snapshot_leaves_a_temp_file_the_next_gc_removes(tmp_path):
    path = tmp_path / "store"
    Store(path).set_ref("keep/x", {"v": 1})
    stale, fresh = path / ".index-snapshot.mdb.999-dead", path / ".index-snapshot.mdb.998-live"
    stale.write_bytes(b"half a snapshot")
    fresh.write_bytes(b"a concurrent gc's")
    past = time.time() - 7200
    os.utime(stale, (past, past))
    assert cli(path, "gc").returncode == 0
    assert not stale.exists() and fresh.exists()
    assert (path / "index-snapshot.mdb").stat().st_size > 0


def test_a_store_from_before_settings_with_its_index_removed_is_a_lost_store_not_no_store(tmp_path):
    store = tmp_path / "store"
    _flow(store)
    files = _object_files(store)
    for name in ("store.json", "index-mark.json", "index-snapshot.mdb"):
        (store / name).unlink(missing_ok=True)
    shutil.rmtree(store / "index")  # only objects/ is left, as in a store made before store.json
    fsck = cli(store, "fsck")
    assert fsck.returncode == 1 and "index lost" in fsck.stdout, fsck.stdout + fsck.stderr
    assert cli(store, "gc", "--grace", "0").returncode == 1
    assert _object_files(store) == files
    repair = cli(store, "fsck", "--repair")
    assert repair.returncode == 0 and f"re-indexed {len(files)} object files" in repair.stdout, repair.stdout


_OPEN = "import sys; from cafstore.store import Store; s = Store(sys.argv[1]); s.put_bytes(sys.argv[2].encode() * 9000)"


def test_processes_adopting_a_store_from_before_ids_at_once_agree_on_one_id(tmp_path):
    store = tmp_path / "store"
    _flow(store)
    _make_legacy(store)
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN, str(store), str(i)]) for i in range(4)]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    store_id = json.loads((store / "store.json").read_text())["id"]
    env = lmdb.open(str(store / "index"), max_dbs=16, readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"store-id", db=env.open_db(b"meta", txn=txn, create=False)) == store_id.encode()
    env.close()
    assert cli(store, "fsck").returncode == 0
