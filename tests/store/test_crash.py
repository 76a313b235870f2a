"""Crash safety: a writer killed with SIGKILL at random moments never leaves a broken store.

Each trial starts crash_writer.py on the same store and kills it at a random
moment -- while Python starts, while the store opens, or in the middle of
writing objects, records, refs and counters. Afterwards fsck must pass (notes
about orphan temp files or blobs are allowed: gc removes them) and every ref
must resolve to readable, uncorrupted objects; every ref the writer reported
as committed must be there. ``pytest --stress`` runs 500 trials instead of 20.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cafstore.store import ObjectId, Store
from cafstore.store.records import referenced_ids

WRITER = Path(__file__).with_name("crash_writer.py")
TRIALS_PER_STORE = 25  # a fresh store now and then keeps fsck's re-hashing of everything cheap


def kill_at_random(path: Path, seed: int, rng: random.Random) -> set:
    """Run the writer, SIGKILL it at a random moment; returns the refs it reported committed."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0.0, 0.25))  # during interpreter start-up or the store's opening
        else:
            ready = proc.stdout.readline()
            assert ready == "ready\n", f"writer did not start: {ready!r} {proc.stderr.read()}"
            time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The writer only ever stops by our kill: anything else is a bug it hit.
    assert proc.returncode == -signal.SIGKILL, f"writer exited {proc.returncode}:\n{err}"
    # Only whole lines count: the kill can cut the last report short ("committed " without its number).
    whole = out.split("\n")[:-1]
    return {f"crash/{seed:05d}/{int(line.split()[1]):05d}" for line in whole if line.startswith("committed ")}


def check_after_crash(path: Path, committed: set) -> int:
    store = Store(path)
    report = store.fsck()
    assert report.ok, "\n".join(report.problems)
    refs = dict(store.list_refs("crash/"))
    missing = committed - set(refs)
    assert not missing, f"committed refs lost: {sorted(missing)}"
    for name, value in refs.items():
        record = store.get_record(value["record"])
        assert record["objects"] == value["objects"], name
        for oid in record["objects"]:
            store.get_bytes(oid, verify=True)
        art = store.get_artifact(record["artifact"], verify=True)
        assert (art["seed"], art["i"]) == (record["seed"], record["i"])
        if "meta" in value:
            assert store.get_record(value["meta"])["parent"] == value["record"]
    for name, value in store.list_refs("latest/"):
        for oid in referenced_ids(value):
            assert isinstance(oid, ObjectId) and store.exists(oid), name
    return len(refs)


def test_sigkill_at_random_moments(tmp_path, stress_trials):
    trials = stress_trials(ci=20, full=500)
    rng = random.Random(20240611)
    committed: dict = {}
    total_refs = 0
    for trial in range(trials):
        path = tmp_path / f"store-{trial // TRIALS_PER_STORE}"
        refs = kill_at_random(path, trial, rng)
        committed.setdefault(path, set()).update(refs)
        if path.exists():
            total_refs = check_after_crash(path, committed[path])
    assert total_refs > 0, "the writer never got to commit anything: kill later"


def test_dead_readers_do_not_pin_the_store(tmp_path):
    """Processes killed inside a read snapshot leave no reader slot behind for the next opener."""
    path = tmp_path / "store"
    Store(path).set_ref("a", 1)
    holder = (
        "import sys, time\nfrom cafstore.store import Store\n"
        "scan = Store(sys.argv[1]).iter_refs()\nnext(scan)\nprint('holding', flush=True)\ntime.sleep(60)\n"
    )
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", holder, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "holding\n"
        proc.kill()
        proc.wait()
    probe = (
        "import sys\nfrom cafstore.store import Store\ns = Store(sys.argv[1])\n"
        "s.get_ref('a')\nprint(s.index.env.readers())\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "no active readers" in out.stdout, out.stdout


@pytest.mark.stress
def test_sigkill_stress_on_one_growing_store(tmp_path):
    """Under --stress only: many kills on a single store whose index keeps growing."""
    rng = random.Random(7)
    path = tmp_path / "store"
    committed: set = set()
    for trial in range(100):
        committed |= kill_at_random(path, 10_000 + trial, rng)
        if trial % 10 == 9 and path.exists():
            check_after_crash(path, committed)
