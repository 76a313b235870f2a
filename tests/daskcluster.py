"""A real Dask cluster for the tests: ``dask scheduler`` and single-threaded ``dask worker`` processes.

Everything binds to 127.0.0.1.  Each worker has its own working directory
and an environment without any ``CAFSTORE_*`` variable (no store path): a
task on it can only use what the coordinator ships and the blob backend.
``user``: run the workers as that user (root only), so the tests can prove
they never touch the coordinator's disk.  Processes are started and stopped
by pid.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional


def dask_binary() -> Optional[str]:
    beside = Path(sys.executable).parent / "dask"
    return str(beside) if beside.exists() else None


def can_hide_directories() -> bool:
    """Whether workers can be given their own mount namespace here (root, and ``unshare`` allowed)."""
    import shutil
    import tempfile

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as probe:
        script = 'mount -t tmpfs -o size=1m cafstore-probe "$0" && touch "$0/x"'
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, probe], capture_output=True
        )
        return done.returncode == 0 and not os.path.exists(os.path.join(probe, "x"))


def _clean_env(extra: Optional[dict] = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env.update(extra or {})
    return env


@dataclasses.dataclass
class DaskCluster:
    """A scheduler and its workers, as separate processes."""

    root: Path
    workers: int = 2
    user: Optional[str] = None
    resources: Optional[str] = None
    hidden: Optional[Path] = None  # a directory the workers see as empty (their own mount namespace)
    address: str = ""
    scheduler: Optional[subprocess.Popen] = None
    worker_procs: List[subprocess.Popen] = dataclasses.field(default_factory=list)

    def start(self, timeout: float = 60.0) -> None:
        binary = dask_binary()
        assert binary is not None, "the dask command is missing: pip install -e '.[dev]'"
        self.root.mkdir(parents=True, exist_ok=True)
        info = self.root / "scheduler.json"
        info.unlink(missing_ok=True)  # never a stale address from an earlier cluster in this directory
        self.scheduler = subprocess.Popen(
            [
                binary,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(info),
            ],
            cwd=self.root,
            env=_clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "scheduler.log", "ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not info.exists() or not info.read_text().strip():
            assert self.scheduler.poll() is None, (self.root / "scheduler.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.05)
        self.address = json.loads(info.read_text())["address"]
        for number in range(self.workers):
            self.add_worker(number)
        self.wait_for_workers(self.workers, deadline - time.monotonic())

    def add_worker(self, number: int) -> subprocess.Popen:
        binary = dask_binary()
        home = self.root / f"worker{number}"
        home.mkdir(exist_ok=True)
        args = [binary, "worker", self.address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1"]
        args += ["--no-dashboard", "--local-directory", str(home), "--name", f"w{number}"]
        if self.resources:
            args += ["--resources", self.resources]
        kwargs: dict = {}
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(home, entry.pw_uid, entry.pw_gid)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        if self.hidden is not None:  # a private mount namespace: an empty tmpfs over the coordinator's directory
            script = 'mount -t tmpfs -o size=1m cafstore-hidden "$0" && exec "$@"'
            args = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(self.hidden), *args]
        proc = subprocess.Popen(
            args,
            cwd=home,
            env=_clean_env({"HOME": str(home)}),
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / f"worker{number}.log", "ab"),
            start_new_session=True,
            **kwargs,
        )
        self.worker_procs.append(proc)
        return proc

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=20, set_as_default=False)

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=max(timeout, 1.0))

    def worker_pids(self) -> List[int]:
        """The pids of the worker processes themselves (under their nannies)."""
        with self.client() as client:
            return list(client.run(os.getpid).values())

    def stop_scheduler(self) -> None:
        if self.scheduler is not None and self.scheduler.poll() is None:
            os.killpg(self.scheduler.pid, signal.SIGKILL)
            self.scheduler.wait()

    def stop(self) -> None:
        for proc in [*self.worker_procs, self.scheduler]:
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in [*self.worker_procs, self.scheduler]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
