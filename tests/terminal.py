"""Running a command on a pseudo-terminal, as a user at a terminal would (progress bars draw only there)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path


def run_on_a_terminal(args: list, cwd: Path, env: dict, timeout: float = 120) -> str:
    """Run ``args`` with stdout and stderr on a pseudo-terminal; everything it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    poller = select.poll()  # not select(): in a long test session the descriptor may be above 1023
    poller.register(master, select.POLLIN)
    try:
        while time.monotonic() < deadline:
            if poller.poll(500):
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return b"".join(chunks).decode("utf-8", "replace")
