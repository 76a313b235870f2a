"""Fixtures for the fidelity suite: write a flow, run it as a user would, read it back.

``lab`` runs ``python flow.py COMMAND ...`` in a subprocess against a store in
``tmp_path`` (``CAFSTORE_HOME``), as user ``tester``, and reads results back
through the public client in this process, pinned to that store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from cafstore.client import connection, namespaces

_CLEARED_PREFIXES = ("CAFSTORE_", "METAFLOW_")


class FlowLab:
    """One temporary directory holding a store and the flow files run against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store_path = root / "store"
        self.flow_path = root / "flow.py"

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_PREFIXES)}
        env.update({"CAFSTORE_HOME": str(self.store_path), "CAFSTORE_USER": "tester"})
        env.update(extra or {})
        return env

    def write(self, source: str, name: str = "flow.py") -> Path:
        path = self.root / name
        path.write_text(source)
        return path

    def cli(
        self,
        *args: str,
        flow: Optional[Path] = None,
        env: Optional[Dict[str, str]] = None,
        timeout: float = 120,
    ) -> "subprocess.CompletedProcess[str]":
        """``python FLOW ARGS`` (the flow's own command line)."""
        path = flow or self.flow_path
        return subprocess.run(
            [sys.executable, str(path), *args],
            cwd=str(self.root),
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run(
        self, source: Optional[str] = None, *args: str, ok: bool = True, **kw: Any
    ) -> "subprocess.CompletedProcess[str]":
        """Write ``source`` (if given) as flow.py and ``run`` it; by default insist that it succeeds."""
        if source is not None:
            self.write(source)
        proc = self.cli("run", *args, **kw)
        if ok:
            assert proc.returncode == 0, f"flow failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        return proc

    def latest(self, flow_name: str = "FidelityFlow") -> Any:
        """The newest run of ``flow_name``, through the client, in the global namespace."""
        from cafstore import Flow, namespace

        namespace(None)
        return Flow(flow_name).latest_run


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CAFSTORE_USER", "tester")
    monkeypatch.setenv("CAFSTORE_HOME", str(tmp_path / "store"))
    namespaces._current = namespaces.UNSET
    connection.use_store(None)
    yield FlowLab(tmp_path)
    connection.use_store(None)
    namespaces._current = namespaces.UNSET
