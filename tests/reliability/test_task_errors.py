"""A foreach split whose artifacts cannot be stored fails with the real error (issue 12, item 5).

Before the fix the split task lost its own error: it looked up the foreach
list's id in an artifact map it had just discarded, failed with a
``KeyError`` inside cafstore, and the user saw an internal error (or "task
died ... out of memory") instead of the artifact that could not be stored.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FLOW = Path(__file__).with_name("flows") / "unstorable_split_flow.py"


def test_an_unstorable_artifact_in_a_foreach_split_is_reported_as_in_a_linear_step(tmp_path, run_cli):
    store = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, str(FLOW), "--store", str(store), "run"], capture_output=True, text=True, timeout=120
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "cannot store artifact in step 'start'" in out, out
    assert "'guard'" in out and "_thread.lock" in out, out
    for wrong in ("KeyError", "internal error", "out of memory", "Traceback (most recent call last)"):
        assert wrong not in out, out
    logs = run_cli("--store", store, "logs", "UnstorableSplitFlow/1/start/1")
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert "start ran before storing its artifacts" in logs.stdout
    stderr = run_cli("--store", store, "logs", "UnstorableSplitFlow/1/start/1", "--stderr")
    assert "guard" in stderr.stdout + stderr.stderr, stderr
    fsck = run_cli("--store", store, "fsck")
    assert fsck.returncode == 0, fsck.stdout


def test_a_full_disk_in_a_foreach_split_is_reported_as_in_a_linear_step(tmp_path, run_cli):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=6m tmpfs {mount} 2>/dev/null") != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        store = mount / "store"
        proc = subprocess.run(
            [sys.executable, str(FLOW), "--store", str(store), "run", "--big", str(8 << 20)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out
        assert "store is full in step 'start'" in out, out
        for wrong in ("KeyError", "internal error", "out of memory"):
            assert wrong not in out, out
        fsck = run_cli("--store", store, "fsck")
        assert fsck.returncode == 0, fsck.stdout
    finally:
        os.system(f"umount {mount}")
