"""A private Metaflow install for side-by-side benchmarks, and clean environments to run it in.

``ensure_metaflow()`` creates ``benchmarks/.venv-metaflow`` once (it is gitignored) with
``metaflow`` and ``numpy`` from PyPI and returns its interpreter. Later calls reuse it. If
the venv cannot be made (no network, pip failure, ...), it returns an ``MetaflowEnv`` whose
``python`` is ``None`` and whose ``reason`` says why, so a benchmark can print
``Metaflow unavailable: <reason>, skipped`` and still time cafstore.

``isolated_env(scratch, tool)`` builds the environment a timed process runs in. Both tools
get the same fresh HOME and user name inside a scratch directory, and no ``METAFLOW_*`` or
``CAFSTORE_*`` variable leaks in from the caller. On top of that:

- Metaflow: ``METAFLOW_HOME`` (its config directory; empty, so no profile or remote
  service is picked up), ``METAFLOW_DEFAULT_DATASTORE=local``,
  ``METAFLOW_DEFAULT_METADATA=local`` and ``METAFLOW_DATASTORE_SYSROOT_LOCAL`` (the
  datastore root; without it Metaflow searches upward from the working directory for a
  ``.metaflow`` folder and creates one in the working directory if none is found).
  Metaflow refuses to run without a user name, which it reads from ``METAFLOW_USER``,
  ``SUDO_USER``, ``USERNAME`` or ``USER``: we set ``USERNAME`` (and ``USER``).
  With these settings a local ``python flow.py run`` opens no network connection.
- cafstore: ``CAFSTORE_HOME`` (the store directory).

The environment variable ``CAFSTORE_BENCH_METAFLOW`` overrides the pip requirement
(default ``metaflow``), e.g. ``CAFSTORE_BENCH_METAFLOW='metaflow==2.19.39'``; changing it
rebuilds the venv.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

HERE = Path(__file__).resolve().parent
VENV_DIR = HERE / ".venv-metaflow"
MARKER = VENV_DIR / "cafstore-bench.json"
BENCH_USER = "cafbench"
INSTALL_TIMEOUT = 900  # seconds for the whole pip install

# Variables kept from the caller's environment: what a process needs to start and find
# its tools, and nothing that configures either workflow tool.
_KEEP = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SYSTEMROOT",
    "PIP_CERT",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
)


@dataclass
class MetaflowEnv:
    python: Optional[str]
    version: Optional[str] = None
    reason: Optional[str] = None

    @property
    def available(self) -> bool:
        return self.python is not None


def _venv_python(root: Path) -> Path:
    if os.name == "nt":
        return root / "Scripts" / "python.exe"
    return root / "bin" / "python"


def _requirement() -> str:
    return os.environ.get("CAFSTORE_BENCH_METAFLOW", "metaflow").strip() or "metaflow"


def _tail(text: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    kept = [ln for ln in kept if not ln.startswith("WARNING: Location")]
    kept = [ln if len(ln) <= 200 else ln[:197] + "..." for ln in kept[-lines:]]
    return " / ".join(kept) if kept else "no output"


def _read_marker() -> Optional[dict]:
    try:
        return json.loads(MARKER.read_text())
    except (OSError, ValueError):
        return None


def ensure_metaflow(log=None) -> MetaflowEnv:
    """Return the benchmark Metaflow interpreter, creating the venv on first use.

    ``log`` (a callable taking a string, default: print to stderr) reports progress
    while the venv is being built; a cached venv is returned silently.
    """
    if log is None:

        def log(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

    requirement = _requirement()
    python = _venv_python(VENV_DIR)
    marker = _read_marker()
    if marker and marker.get("requirement") == requirement and python.exists():
        return MetaflowEnv(python=str(python), version=marker.get("version"))
    with _build_lock():
        marker = _read_marker()  # another process may have built it while we waited
        if marker and marker.get("requirement") == requirement and python.exists():
            return MetaflowEnv(python=str(python), version=marker.get("version"))
        return _build(requirement, python, log)


@contextlib.contextmanager
def _build_lock():
    """Serialise venv builds between benchmark processes (a no-op without fcntl)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock_path = Path(tempfile.gettempdir()) / "cafstore-bench-venv-metaflow.lock"
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(requirement: str, python: Path, log) -> MetaflowEnv:
    log(f"Creating {VENV_DIR.name} with {requirement!r} and numpy from PyPI (once)...")
    if VENV_DIR.exists():
        shutil.rmtree(VENV_DIR, ignore_errors=True)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(str(VENV_DIR))
    except Exception as exc:  # noqa: BLE001 - any failure means "unavailable"
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        return MetaflowEnv(python=None, reason=f"could not create a venv ({exc})")

    cmd = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement, "numpy"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        return MetaflowEnv(python=None, reason=f"pip install {requirement} timed out after {INSTALL_TIMEOUT}s")
    if proc.returncode != 0:
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        return MetaflowEnv(python=None, reason=f"pip install {requirement} failed: {_tail(proc.stderr or proc.stdout)}")

    probe = subprocess.run(
        [str(python), "-c", "import metaflow; print(metaflow.__version__)"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        return MetaflowEnv(python=None, reason=f"metaflow does not import: {_tail(probe.stderr)}")
    version = probe.stdout.strip()
    MARKER.write_text(json.dumps({"requirement": requirement, "version": version}))
    log(f"Metaflow {version} ready.")
    return MetaflowEnv(python=str(python), version=version)


def isolated_env(scratch: Path, tool: str) -> Dict[str, str]:
    """Environment for one timed run of ``tool`` ('metaflow' or 'cafstore').

    Everything the run writes (home, config, datastore or store) lives under ``scratch``,
    which the caller creates fresh for every run and removes afterwards.
    """
    scratch = Path(scratch)
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(
        {
            "HOME": str(home),
            "USERNAME": BENCH_USER,
            "USER": BENCH_USER,
        }
    )
    if tool == "metaflow":
        config = home / ".metaflowconfig"
        config.mkdir(exist_ok=True)
        env.update(
            {
                "METAFLOW_HOME": str(config),
                "METAFLOW_DEFAULT_DATASTORE": "local",
                "METAFLOW_DEFAULT_METADATA": "local",
                "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(scratch / "metaflow-datastore"),
            }
        )
    elif tool == "cafstore":
        env["CAFSTORE_HOME"] = str(scratch / "cafstore-store")
    else:
        raise ValueError(f"unknown tool {tool!r}")
    return env


if __name__ == "__main__":
    mf = ensure_metaflow()
    if mf.available:
        print(f"Metaflow {mf.version}: {mf.python}")
    else:
        print(f"Metaflow unavailable: {mf.reason}")
        sys.exit(1)
