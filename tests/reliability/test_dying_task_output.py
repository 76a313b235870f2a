"""A task that dies keeps what it printed (issue 12, item 10).

Three ways to die without reporting: ``os._exit`` with text still in
Python's buffers, a segfault, and a step that swallows its ``@timeout`` and
is killed by the executor. What each printed before dying, flushed or not,
must be in ``cafstore logs``, in ``Task.stdout`` / ``Task.stderr``, and on
the terminal the run was started from; a segfault leaves its C-level
traceback (faulthandler) on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FLOW = Path(__file__).with_name("flows") / "dying_flow.py"

EXPECTED = {
    "exits": (["exits: a whole line", "exits: no newline, never flushed"], ["exits: on stderr, no newline"]),
    "crashes": (["crashes: before the segfault", "crashes: unflushed"], ["Segmentation fault", "in crashes"]),
    "hangs": (["hangs: before the timeout", "hangs: unflushed (timeout swallowed)"], []),
}


@pytest.fixture(scope="module")
def died(tmp_path_factory):
    """One run of the flow (its three branches die at once); the store and what the terminal showed."""
    store = tmp_path_factory.mktemp("dying") / "store"
    proc = subprocess.run(
        [sys.executable, str(FLOW), "--store", str(store), "run", "--max-workers", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CAFSTORE_RUN_KILL_GRACE": "0.5"},  # the hung task is killed 1.5 s in
    )
    assert proc.returncode == 1 and "Workflow starting" in proc.stdout, proc.stdout + proc.stderr
    return store, proc.stdout + proc.stderr


@pytest.mark.parametrize("step", sorted(EXPECTED))
def test_a_dead_tasks_output_is_stored_and_shown(died, run_cli, monkeypatch, step):
    store, terminal = died
    out_lines, err_lines = EXPECTED[step]
    stdout = run_cli("--store", store, "logs", f"DyingFlow/1/{step}", "--stdout")
    stderr = run_cli("--store", store, "logs", f"DyingFlow/1/{step}", "--stderr")
    assert stdout.returncode == 0 and stderr.returncode == 0, stdout.stderr + stderr.stderr
    for line in out_lines:
        assert line in stdout.stdout, (line, stdout.stdout)
        assert any(line in shown and f"DyingFlow/1/{step}/" in shown for shown in terminal.splitlines()), terminal
    for line in err_lines:
        assert line in stderr.stdout + stderr.stderr, (line, stderr.stdout + stderr.stderr)

    monkeypatch.setenv("CAFSTORE_HOME", str(store))
    import cafstore

    cafstore.namespace(None)
    task = cafstore.Run("DyingFlow/1")[step].task
    assert all(line in task.stdout for line in out_lines), task.stdout
    assert all(line in task.stderr for line in err_lines), task.stderr
    assert not task.successful


def test_the_run_fails_naming_how_each_task_died(died):
    _, terminal = died
    assert "exited with code 3" in terminal, terminal
    assert "SIGSEGV" in terminal, terminal
    assert "ran past its @timeout" in terminal, terminal


def test_recovery_echoes_exactly_what_the_task_had_not(capfd):
    """The journal as a task leaves it when it dies between keeping a chunk and echoing its lines."""
    from cafstore.runner.execution import logs

    channels = logs.Channels.open()
    channels.started()
    try:
        capture = logs.Capture("F/1/s/1 (pid 9)", echo=True, channels=channels)
        capture._journal_write(logs._JOURNAL_FRAME.pack(1, 1.0, 7) + b"echoed\n")
        capture._journal_write(logs._JOURNAL_FRAME.pack(logs._ECHOED, 1.0, 0))
        capture._journal_write(logs._JOURNAL_FRAME.pack(1, 2.0, 12) + b"kept only\npa")
        out, err = logs.recover(channels, "F/1/s/1 (pid 9)")
    finally:
        channels.close()
    assert logs.strip_stamps(out) == b"echoed\nkept only\npa\n" and err == b""
    shown = capfd.readouterr().out
    assert "] kept only" in shown and "] pa" in shown and "echoed" not in shown, shown
