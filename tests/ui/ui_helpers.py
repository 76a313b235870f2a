"""Helpers of the UI tests (a module of its own: every test folder has a module named conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).resolve().parent / "flows"
CHROMIUM = os.environ.get("CAFSTORE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def cli_env(extra: Dict[str, str] = None) -> Dict[str, str]:
    """This process's environment without the variables that pick a store, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("CAFSTORE_HOME", "CAFSTORE_INLINE_THRESHOLD")}
    env.pop("CAFSTORE_CHUNK_THRESHOLD", None)
    env.update(extra or {})
    return env


def run_flow(store: Path, flow: Path, *args: str, env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, str(flow), *args],
        cwd=str(store.parent),
        env=cli_env({"CAFSTORE_HOME": str(store), **(env or {})}),
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done


def wait_until(check: Any, timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)
