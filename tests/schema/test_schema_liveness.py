"""Run liveness (cafstore.schema.scheduler_alive): is the scheduler of a ``running`` run still at work?

The client shows a run whose scheduler is gone as ``crashed``, and gc may
drop it; both ask this one function, so they always agree. Each case uses a
real process: this one (alive), one that exited and was reaped (dead), one
that exited and was not (a zombie), and one born after the run was created
(its pid would have been reused).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from cafstore import schema
from cafstore.client import Run, use_store
from cafstore.maintenance import retention
from cafstore.store import Store, StoreConfig

needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")


def running(pid, created=None, host=None) -> dict:
    """A run ref's value as the runner writes it while the run is in progress (the fields liveness reads)."""
    return {
        "flow": "F",
        "run_id": 1,
        "status": "running",
        "pid": pid,
        "host": host or socket.gethostname(),
        "created": time.time() if created is None else created,
        "user": "anne",
        "user_tags": [],
        "system_tags": ["user:anne"],
        "finished": None,
        "deleted": None,
    }


def wait_for_state(pid: int, state: str, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while schema.process_facts(pid)[0] != state:
        assert time.time() < deadline, f"process {pid} never reached state {state!r}"
        time.sleep(0.01)


def test_a_live_scheduler_is_alive():
    assert schema.scheduler_alive(running(os.getpid()))


def test_a_dead_scheduler_is_not():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not schema.scheduler_alive(running(proc.pid, created=time.time() - 60))


@needs_proc
def test_a_zombie_scheduler_is_not():
    """Exited but not reaped: the pid still answers kill(0), yet nothing runs."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        created = time.time()
        wait_for_state(proc.pid, "Z")
        os.kill(proc.pid, 0)  # the trap: the pid still "exists"
        assert not schema.scheduler_alive(running(proc.pid, created=created - 5))
    finally:
        proc.wait()


@needs_proc
def test_a_reused_pid_is_not():
    """A live process born after the run was created cannot be its scheduler: the pid was reused."""
    created = time.time() - 60
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wait_for_state(proc.pid, "S")
        assert not schema.scheduler_alive(running(proc.pid, created=created))
        assert schema.scheduler_alive(running(proc.pid, created=time.time()))  # created after it started: alive
    finally:
        proc.kill()
        proc.wait()


def test_what_cannot_be_checked_counts_as_alive():
    """gc must never rob a run in flight: another host's run, or one without a usable pid, is alive."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert schema.scheduler_alive(running(proc.pid, host="some-other-machine"))
    for pid in (None, 0, -1, "1234", True, 2**80):
        assert schema.scheduler_alive(running(pid)), pid


def test_someone_elses_process_is_judged_by_its_age_too():
    """pid 1 exists whoever we are (kill(0) may be refused): alive for a run created after it started."""
    assert schema.scheduler_alive(running(1))


@needs_proc
def test_the_client_and_gc_agree(tmp_path):
    """Run.status and retention (gc) ask the same question: a zombie scheduler's run is crashed to both."""
    store = Store(tmp_path / "store", StoreConfig(durable=False))
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for_state(zombie.pid, "Z")
        cases = {1: running(os.getpid()), 2: running(zombie.pid, created=time.time() - 5)}
        for run_id, meta in cases.items():
            store.set_ref(schema.run_ref("F", run_id), dict(meta, run_id=run_id))
        store.set_ref(schema.flow_ref("F"), {"name": "F", "created": time.time()})
        use_store(store)
        try:
            statuses = {run_id: Run(f"F/{run_id}", _namespace_check=False).status for run_id in cases}
        finally:
            use_store(None)
        assert statuses == {1: "running", 2: "crashed"}
        assert [retention.is_running(store.get_ref(schema.run_ref("F", r))) for r in cases] == [True, False]
    finally:
        zombie.wait()


def test_the_user_comes_from_one_lookup(monkeypatch):
    for name in ("CAFSTORE_USER", "USER", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USERNAME", "third")
    assert schema.current_user() == "third"
    monkeypatch.setenv("USER", "second")
    assert schema.current_user() == "second"
    monkeypatch.setenv("CAFSTORE_USER", "first")
    assert schema.current_user() == "first"
    from cafstore.client import current_user

    assert current_user() == "first"  # the client's is the same lookup


def test_the_host_is_this_machine():
    assert schema.hostname() == socket.gethostname()


@needs_proc
def test_the_recorded_start_id_names_this_very_process():
    me = schema.process_start_id(os.getpid())
    assert me is not None and me == schema.process_start_id(os.getpid())
    assert schema.scheduler_alive(dict(running(os.getpid()), pid_start=me))
    # Same pid, another process's start id: the pid was reused by somebody else.
    boot, _, tick = me.rpartition(":")
    assert not schema.scheduler_alive(dict(running(os.getpid()), pid_start=f"{boot}:{int(tick) + 1}"))


@needs_proc
def test_a_wall_clock_set_forward_does_not_kill_a_live_run():
    """With a start id recorded, a run created 'in the future' (as after the clock was set back and
    forth) is still alive: start ticks since boot do not move with the wall clock."""
    meta = dict(running(os.getpid(), created=time.time() - 3600), pid_start=schema.process_start_id(os.getpid()))
    assert schema.scheduler_alive(meta)
    meta["created"] = time.time() + 3600  # the process now looks born long before the run: still it
    assert schema.scheduler_alive(meta)


def test_a_real_run_records_its_schedulers_start_id(tmp_path):
    flow = tmp_path / "tiny.py"
    flow.write_text(
        "from cafstore import FlowSpec, step\n"
        "class TinyFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    TinyFlow()\n"
    )
    store = tmp_path / "store"
    subprocess.run([sys.executable, str(flow), "--store", str(store), "run"], check=True, capture_output=True)
    meta = Store(store).get_ref(schema.run_ref("TinyFlow", 1))
    if os.path.exists("/proc/self/stat"):
        assert isinstance(meta["pid_start"], str) and meta["pid_start"].count(":") >= 1
    else:
        assert meta["pid_start"] is None
