"""Several processes on one store at once: nothing lost, nothing torn."""

from __future__ import annotations

import multiprocessing
import os
import traceback

import pytest

from cafstore.store import Store, StoreConfig, hash_bytes

WORKERS = 4
ROUNDS = 40
# fsync adds nothing to what these tests check (interleavings), only minutes of disk waits:
# crash safety, which needs it, is test_crash.py's subject.
CONFIG = StoreConfig(inline_threshold=256, durable=False)


def shared_blob(k: int) -> bytes:
    """Written by every worker: the same objects race to be created."""
    return (b"shared-%d-" % k) * (1 + (k % 3) * 40)  # some inline, some files


def own_blob(worker: int, k: int) -> bytes:
    return (b"w%d-k%d-" % (worker, k)) * (1 + (k % 2) * 60)


def work(path: str, worker: int, results) -> None:
    """One writer: objects, records, refs, counters and a read-modify-write, interleaved."""
    try:
        store = Store(path, CONFIG)
        runs = []
        for k in range(ROUNDS):
            shared = store.put_bytes(shared_blob(k))
            own = store.put_bytes(own_blob(worker, k))
            art = store.put_artifact({"worker": worker, "k": k, "payload": list(range(k))})
            record = store.put_record({"k": k, "inputs": [shared, own], "artifact": art})
            run = store.next_counter("runs/Flow")
            runs.append(run)
            with store.transaction() as txn:
                txn.set_ref(f"runs/Flow/{run}", {"record": record, "worker": worker})
                txn.set_ref(f"latest/{worker}", run)
            store.set_ref(f"shared/{k}", {"by": worker, "object": shared})
            store.update_ref("hits", lambda old: old + 1, default=0)
            store.update_ref(f"per-worker/{worker}", lambda old, k=k: old + [k], default=[])
        results.put((worker, runs, None))
    except BaseException:  # reported to the parent, which fails the test with it
        results.put((worker, [], traceback.format_exc()))


def run_workers(method: str, path: str) -> dict:
    ctx = multiprocessing.get_context(method)
    results = ctx.Queue()
    procs = [ctx.Process(target=work, args=(path, i, results)) for i in range(WORKERS)]
    for proc in procs:
        proc.start()
    outcome = {}
    for _ in procs:
        worker, runs, error = results.get(timeout=120)
        assert error is None, f"worker {worker} failed:\n{error}"
        outcome[worker] = runs
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return outcome


def check_store(path: str, outcome: dict) -> None:
    store = Store(path, CONFIG)
    every_run = sorted(run for runs in outcome.values() for run in runs)
    assert every_run == list(range(1, WORKERS * ROUNDS + 1))  # contiguous, no duplicates
    for worker, runs in outcome.items():
        assert runs == sorted(runs)  # each worker's ids increase
        assert store.get_ref(f"latest/{worker}") == runs[-1]
        assert store.get_ref(f"per-worker/{worker}") == list(range(ROUNDS))
    assert store.get_ref("hits") == WORKERS * ROUNDS
    assert store.next_counter("runs/Flow") == WORKERS * ROUNDS + 1
    refs = dict(store.list_refs("runs/Flow/"))
    assert len(refs) == WORKERS * ROUNDS
    for run in every_run:
        value = refs[f"runs/Flow/{run}"]
        record = store.get_record(value["record"])
        k, worker = record["k"], value["worker"]
        assert store.get_bytes(record["inputs"][0], verify=True) == shared_blob(k)
        assert store.get_bytes(record["inputs"][1], verify=True) == own_blob(worker, k)
        assert store.get_artifact(record["artifact"], verify=True) == {
            "worker": worker,
            "k": k,
            "payload": list(range(k)),
        }
    for k in range(ROUNDS):
        shared = store.get_ref(f"shared/{k}")
        assert shared["by"] in outcome and shared["object"] == hash_bytes(shared_blob(k))
    # Each shared object exists once; nothing was left half-written.
    report = store.fsck()
    assert report.ok, report.problems
    assert report.notes == []
    assert list((store.path / "tmp").iterdir()) == []


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_four_writers_lose_nothing(tmp_path, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    path = str(tmp_path / "store")
    if method == "fork":
        # The parent has the store open when it forks: children must not reuse its handle.
        parent = Store(path, CONFIG)
        parent.set_ref("opened-by-parent", True)
    outcome = run_workers(method, path)
    check_store(path, outcome)


def _child_uses_inherited_store(store: Store, conn) -> None:
    try:
        parent_env = store._index_handle.env if store._index_handle is not None else None
        oid = store.put_bytes(b"from the child" * 100)
        store.set_ref("child", {"object": oid, "seen": store.get_ref("parent")})
        conn.send((None, store.index.env is not parent_env, os.getpid()))
    except BaseException:
        conn.send((traceback.format_exc(), False, os.getpid()))


def test_store_used_in_parent_then_in_forked_child(tmp_path):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    store = Store(tmp_path / "store", CONFIG)
    store.set_ref("parent", "hello")
    before = store.put_bytes(b"from the parent" * 100)
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    # Fork while the parent holds the handle and even an open read snapshot.
    scan = store.iter_refs()
    assert next(scan) == ("parent", "hello")
    child = ctx.Process(target=_child_uses_inherited_store, args=(store, theirs))
    child.start()
    error, reopened, child_pid = ours.recv()
    child.join(timeout=60)
    assert error is None, error
    assert child.exitcode == 0 and child_pid != os.getpid()
    assert reopened, "the child used the parent's LMDB environment"
    assert list(scan) == []  # the parent's snapshot is intact and still ends where it did
    # The parent's handle still works and sees the child's writes.
    child_ref = store.get_ref("child")
    assert child_ref["seen"] == "hello"
    assert store.get_bytes(child_ref["object"]) == b"from the child" * 100
    assert store.get_bytes(before) == b"from the parent" * 100
    assert store.fsck().ok


def test_os_fork_child_writes_and_exits(tmp_path):
    """A bare os.fork() (as the runner does), child exits with os._exit."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    store = Store(tmp_path / "store", CONFIG)
    store.set_ref("n", 0)
    pids = []
    for i in range(3):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                store.update_ref("n", lambda old: old + 1)
                store.put_bytes(b"child %d " % i * 100)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert store.get_ref("n") == 3
    for i in range(3):
        assert store.exists(hash_bytes(b"child %d " % i * 100))
    assert store.fsck().ok
