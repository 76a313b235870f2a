"""What a failing run does: traceback headed by pathspec, siblings finish, nothing new starts, exit 1."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from helpers import FLOWS, Stored, env_for, fsck_ok, run_flow


def test_step_exception(tmp_path):
    store = tmp_path / "store"
    done = run_flow("failing.py", store=store)
    assert done.returncode == 1
    err = done.stderr
    assert "Step 'bad' failed (task FailingFlow/1/bad/2" in err
    assert "Traceback (most recent call last)" in err and "in divide" in err and "ZeroDivisionError" in err
    assert "cafstore" not in err.split("Traceback", 1)[1].split("ZeroDivisionError")[0]  # user frames only
    assert "Run FailingFlow/1 failed." in err
    assert "slow finished" in done.stdout and "end ran" not in done.stdout  # running task finished, join never started
    view = Stored(store)
    assert view.run("FailingFlow")["status"] == "failed"
    assert view.task("FailingFlow", "bad")["status"] == "failed"
    assert view.data(view.task("FailingFlow", "slow"))["slow_done"] is True
    assert not view.tasks("FailingFlow", step="join")
    view.close()
    assert fsck_ok(store)


def test_killed_task_is_a_clear_failure(tmp_path):
    store = tmp_path / "store"
    done = run_flow("failing.py", store=store, env={"KIND": "kill"})
    assert done.returncode == 1
    assert "killed by signal 9 (SIGKILL)" in done.stderr and "FailingFlow/1/bad/2" in done.stderr
    view = Stored(store)
    record = view.task("FailingFlow", "bad")
    assert record["status"] == "failed" and "SIGKILL" in record["exception"]["message"]
    view.close()
    assert fsck_ok(store)


def test_dead_task_is_retried(tmp_path):
    store = tmp_path / "store"
    done = run_flow("failing.py", store=store, env={"KIND": "exit", "RETRIES": "1"})
    assert done.returncode == 1
    assert "Task failed (attempt 1 of 2)" in done.stdout and "exited with code 3" in done.stderr


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_every_task(tmp_path):
    store = tmp_path / "store"
    marker = "61.5"  # an unusual `sleep` argument: how this test finds the processes the tasks started
    proc = subprocess.Popen(
        [
            sys.executable,
            str(FLOWS / "sleepers.py"),
            "--store",
            str(store),
            "run",
            "--seconds",
            "60",
            "--max-workers",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for({"SPAWN_CHILD": marker}),
        # As a terminal starts a foreground job: with SIGINT at its default. A shell without job control
        # starts background jobs (such as a CI script run with `&`) with SIGINT ignored, every process
        # below inherits that, and Python then installs no KeyboardInterrupt handler at all.
        preexec_fn=_sigint_default,
    )

    def sleepers():
        found = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout.split()
        return [int(pid) for pid in found]

    deadline = time.time() + 60
    while time.time() < deadline and len(sleepers()) < 2:  # both tasks are running
        time.sleep(0.1)
    assert len(sleepers()) == 2
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    pids = [int(line.split()[-1]) for line in out.splitlines() if "napping" in line]
    assert len(pids) == 2
    time.sleep(0.2)
    assert not sleepers()  # the whole process group of each task was stopped
    for pid in pids:
        assert subprocess.run(["ps", "-p", str(pid)], capture_output=True).returncode != 0
    view = Stored(store)
    assert view.run("SleepFlow")["status"] == "failed"
    assert not view.tasks("SleepFlow", step="nap")
    view.close()
    assert fsck_ok(store)


def test_max_workers_is_honoured(tmp_path):
    def timed(workers):
        start = time.time()
        done = run_flow(
            "sleepers.py",
            "--n",
            "4",
            "--seconds",
            "1",
            "--max-workers",
            str(workers),
            store=tmp_path / f"store{workers}",
        )
        assert done.returncode == 0, done.stderr
        return time.time() - start

    two, four = timed(2), timed(4)
    assert two >= 2.0  # 4 one-second tasks, 2 at a time: at least 2 s
    assert four < two - 0.5  # all 4 at once is clearly faster


def test_foreach_wider_than_allowed_fails_before_children(tmp_path):
    store = tmp_path / "store"
    done = run_flow("sleepers.py", "--n", "5", "--seconds", "0", "--max-num-splits", "4", store=store)
    assert done.returncode == 1
    assert "splits into 5 tasks" in done.stderr and "--max-num-splits 5" in done.stderr
    assert "CAFSTORE_RUN_MAX_NUM_SPLITS=5" in done.stderr
    view = Stored(store)
    assert not view.tasks("SleepFlow", step="nap")
    view.close()
    done = run_flow("sleepers.py", "--n", "5", "--seconds", "0", store=store, env={"CAFSTORE_RUN_MAX_NUM_SPLITS": "4"})
    assert done.returncode == 1 and "limit of 4" in done.stderr
