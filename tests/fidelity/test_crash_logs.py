"""A task whose process dies keeps what it printed, and its stderr log says what killed it."""

from __future__ import annotations

import pytest
from shapes import render_flow

HEADER = "import ctypes, os, signal\n"
CRASHES = {
    "segfault": ("ctypes.string_at(0)", "segmentation fault"),
    "sigkill": ("os.kill(os.getpid(), signal.SIGKILL)", "killed by signal 9 (SIGKILL)"),
    "exit": ("os._exit(3)", "exited with status 3"),
}


@pytest.mark.parametrize(
    "kind, shape", [(kind, "linear") for kind in CRASHES] + [("segfault", "foreach"), ("segfault", "branch")]
)
def test_a_crashed_task_keeps_its_output_and_says_why_it_died(lab, kind, shape):
    code, words = CRASHES[kind]
    role = {"linear": "end", "foreach": "inner", "branch": "join"}[shape]
    body = f'print("Crash and burn!")\nprint("to stderr", file=__import__("sys").stderr)\n{code}'
    done = lab.run(render_flow(shape, {role: body}, header=HEADER), ok=False)
    assert done.returncode == 1
    run = lab.latest()
    assert not run.successful
    failed = [task for step in run for task in step if not task.successful]
    assert failed
    for task in failed:
        assert "Crash and burn!" in task.stdout
        assert "to stderr" in task.stderr and words in task.stderr
