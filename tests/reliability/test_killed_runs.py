"""A killed run takes its tasks with it, and nothing commits into a run that is over (issue 12, item 2).

Each task is the leader of its own process group (so one ``killpg`` stops a
task and what its step started), which used to mean that a ``kill -9`` of
the flow process left every task running: they went on committing into the
crashed run, and after ``cafstore rm`` and ``gc`` wrote task refs for a run
that no longer existed, which gc then kept for ever. These tests kill real
flow processes and look at the processes and the store afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from cafstore import schema
from cafstore.schema import process_facts
from cafstore.store import Store

FLOW = Path(__file__).with_name("flows") / "orphan_flow.py"


def _start(store: Path, pids: Path, *args: str) -> subprocess.Popen:
    pids.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(FLOW), "--store", str(store), "run", "--pids", str(pids), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_for_pids(pids: Path, count: int, proc: subprocess.Popen) -> List[int]:
    """The pids of the work tasks and of the processes they started, once all ``count`` tasks run."""
    deadline = time.monotonic() + 60
    while len(list(pids.glob("[0-9]*"))) < count:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the work tasks never started"
        time.sleep(0.02)
    return [int(pid) for path in pids.glob("[0-9]*") for pid in path.read_text().split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return process_facts(pid)[0] not in ("Z", "X", "")  # an unreaped zombie is dead


def _wait_dead(pids: List[int], seconds: float) -> List[int]:
    """Pids still alive after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    alive = [pid for pid in pids if _alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [pid for pid in alive if _alive(pid)]
    return alive


def _kill(pids: List[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _task_refs(store: Path, run_id: int) -> list:
    s = Store(store)
    try:
        return [name for name, _ in s.list_refs(schema.tasks_prefix("OrphanFlow", run_id))]
    finally:
        s.close()


@pytest.mark.parametrize("how", ["process", "group"])
def test_killing_the_flow_kills_its_tasks_and_what_they_started(tmp_path, run_cli, how):
    store, pids = tmp_path / "store", tmp_path / "pids"
    proc = _start(store, pids, "--width", "3", "--pause", "30")
    victims = _wait_for_pids(pids, 3, proc)
    before = _task_refs(store, 1)
    (os.kill if how == "process" else os.killpg)(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    survivors = _wait_dead(victims, 5)
    _kill(survivors)  # do not leave them running if the test fails
    assert survivors == [], f"processes of the killed run still running: {survivors}"
    assert _task_refs(store, 1) == before  # no work task committed after the kill
    fsck = run_cli("--store", store, "fsck")
    assert fsck.returncode == 0 and "belongs to no run" not in fsck.stdout, fsck.stdout
    # the documented clean-up leaves nothing of the run behind
    assert run_cli("--store", store, "rm", "-y", "OrphanFlow/1").returncode == 0
    gc = run_cli("--store", store, "gc", "--grace", "0")
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert _task_refs(store, 1) == []


def test_a_task_that_outlives_its_scheduler_commits_nothing(tmp_path, run_cli):
    """A step that ignores the hang-up signal survives the kill; its commit must still be refused."""
    store, pids = tmp_path / "store", tmp_path / "pids"
    proc = _start(store, pids, "--width", "2", "--pause", "1.5", "--stubborn", "1")
    victims = _wait_for_pids(pids, 2, proc)
    tasks = [int((pids / name).read_text().split()[0]) for name in ("0", "1")]
    before = _task_refs(store, 1)
    os.kill(proc.pid, signal.SIGKILL)
    try:
        assert _wait_dead(tasks, 30) == [], "the stubborn tasks should end once their step returns"
    finally:
        _kill(victims)
    out, _ = proc.communicate(timeout=60)  # the tasks held the output pipe until they ended
    assert _task_refs(store, 1) == before, "a task committed into a run whose scheduler was dead"
    assert "work 0 finished its step" in out and "work 1 finished its step" in out, out
    assert "Nothing of this task was committed" in out and "the run's scheduler is gone" in out, out
    fsck = run_cli("--store", store, "fsck")
    assert fsck.returncode == 0, fsck.stdout


def _finished_run(store: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(FLOW), "--store", str(store), "run", "--width", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_refs_that_belong_to_no_run_are_reported_and_removed(tmp_path, run_cli):
    """Task refs whose run ref is gone (what orphaned tasks of older versions left): fsck notes them,
    ``fsck --repair`` and gc remove them, and gc then frees what only they kept."""
    store = tmp_path / "store"
    for _ in range(2):
        _finished_run(store)
    s = Store(store)
    for run_id in (1, 2):  # as if gc had dropped the runs while their tasks were still committing
        assert s.delete_ref(schema.run_ref("OrphanFlow", run_id))
    strays = [name for run_id in (1, 2) for name, _ in s.list_refs(schema.tasks_prefix("OrphanFlow", run_id))]
    assert len(strays) == 2 * 5
    s.close()

    fsck = run_cli("--store", store, "fsck")
    assert fsck.returncode == 0, fsck.stdout
    for name in strays:
        assert f"note: ref {name!r} belongs to no run" in fsck.stdout, fsck.stdout

    # fsck --repair removes them all
    repair = run_cli("--store", store, "fsck", "--repair")
    assert repair.returncode == 0, repair.stdout
    assert all(f"repair: removed ref {name}" in repair.stdout for name in strays), repair.stdout
    assert "belongs to no run" not in run_cli("--store", store, "fsck").stdout
    assert _task_refs(store, 1) == [] and _task_refs(store, 2) == []


def test_gc_removes_refs_that_belong_to_no_run_and_what_only_they_kept(tmp_path, run_cli):
    store = tmp_path / "store"
    _finished_run(store)
    s = Store(store)
    objects_before = sum(1 for _ in s.iter_objects())
    assert s.delete_ref(schema.run_ref("OrphanFlow", 1))
    strays = [name for name, _ in s.list_refs(schema.tasks_prefix("OrphanFlow", 1))]
    s.close()
    dry = run_cli("--store", store, "gc", "--grace", "0", "--dry-run")
    assert all(f"would remove ref {name} (it belongs to no run)" in dry.stdout for name in strays), dry.stdout
    assert _task_refs(store, 1) == strays
    gc = run_cli("--store", store, "gc", "--grace", "0")
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert all(f"remove ref {name} (it belongs to no run)" in gc.stdout for name in strays), gc.stdout
    assert _task_refs(store, 1) == []
    s = Store(store)
    left = sum(1 for _ in s.iter_objects())
    report = s.fsck()
    s.close()
    assert report.ok and not report.notes, report.problems + report.notes
    assert left < objects_before / 2, (left, objects_before)  # the records and artifacts went too


_SCHEDULER_WITHOUT_KERNEL_SIGNAL = """
import os, subprocess, sys, time
from cafstore.runner.execution.executors import lifeline

pipe = lifeline.Pipe()
pid = os.fork()
if pid == 0:  # the task, as child.prepare_process sets it up, but told not to use the kernel's signal
    os.setpgid(0, 0)
    lifeline.bind_to(os.getppid(), pipe.ends, kernel=False)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(os.getpid(), child.pid, flush=True)
    time.sleep(60)
    os._exit(0)
time.sleep(60)
"""


def test_without_the_kernel_signal_a_task_dies_when_its_schedulers_pipe_closes():
    """The portable fallback (platforms without PR_SET_PDEATHSIG): the task watches a pipe whose only
    write end its scheduler holds, and kills its process group when the pipe reaches end-of-file."""
    scheduler = subprocess.Popen(
        [sys.executable, "-c", _SCHEDULER_WITHOUT_KERNEL_SIGNAL], stdout=subprocess.PIPE, text=True
    )
    try:
        victims = [int(pid) for pid in scheduler.stdout.readline().split()]
        assert len(victims) == 2 and all(_alive(pid) for pid in victims)
        time.sleep(0.2)
        assert all(_alive(pid) for pid in victims), "the task must live as long as its scheduler"
        scheduler.kill()
        scheduler.wait(timeout=30)
        survivors = _wait_dead(victims, 5)
        _kill(survivors)
        assert survivors == [], f"still running after their scheduler died: {survivors}"
    finally:
        scheduler.kill()
        scheduler.wait(timeout=30)


def test_a_run_removed_while_it_runs_takes_no_more_tasks(tmp_path, run_cli):
    store, pids = tmp_path / "store", tmp_path / "pids"
    proc = _start(store, pids, "--width", "2", "--pause", "1")
    _wait_for_pids(pids, 2, proc)
    before = _task_refs(store, 1)
    removed = run_cli("--store", store, "rm", "-y", "OrphanFlow/1")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "the run was removed (`cafstore rm`)" in out and "Nothing of this task was committed" in out, out
    assert _task_refs(store, 1) == before  # the work tasks finished their steps but committed nothing


@pytest.mark.parametrize(
    "meta, closed",
    [
        (None, "no longer exists"),
        ({"status": "running", "deleted": 1.0, "pid": os.getppid()}, "removed"),
        ({"status": "succeeded", "deleted": None, "pid": os.getppid()}, "already ended (succeeded)"),
        ({"status": "running", "deleted": None, "pid": 2**22 + 12345, "pid_start": "x:1"}, "scheduler is gone"),
        ({"status": "running", "deleted": None, "pid": os.getppid()}, None),
        ({"status": "running", "deleted": None, "pid": os.getpid(), "host": "elsewhere"}, None),
    ],
)
def test_which_runs_take_tasks(meta, closed):
    """The rule a task's commit applies (inside its transaction) to its run's ref."""
    reason = schema.closed_to_tasks(meta)
    assert (reason is None) if closed is None else (closed in (reason or "")), reason
