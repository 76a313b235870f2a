"""What runs on a Dask worker for one task attempt (the other half of :mod:`.dask`).

:func:`run_remote` is the function the coordinator submits.  On the worker
it lays out the flow's code (shipped with the job, kept per code id under
the worker's own directory: the coordinator's disk is never read), then
starts the attempt exactly as the ``spawn`` executor does -- its own
process and process group, fd-level log capture, ``@timeout`` enforced,
a death reported with what it had printed -- except that the task runs on a
:class:`~cafstore.store.detached.DetachedStore` (it never opens the index)
and its echo goes to pipes read here and forwarded to the coordinator as
Dask events on the run's log topic, so its lines reach the terminal while it
runs.  The result, with the task's bundle, goes back as the Dask task's
value; the coordinator commits it.

The attempt is killed (its whole process group) if the coordinator cancels
the Dask task (``kill()``, Ctrl-C, a run that failed) or the worker dies
(the task dies with its parent, as locally).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from cafstore.runner.execution.executors.spawn import LocalSpawnExecutor
from cafstore.runner.execution.spec import TaskResult, TaskSpec

_GONE = ("cancelled", "released", "forgotten", "error")


class _WorkerSpawn(LocalSpawnExecutor):
    """The spawn executor, on a worker: a detached store, and the live echo forwarded through ``send``."""

    def __init__(self, job: Dict[str, Any], scratch: Path, send: Any) -> None:
        super().__init__(kill_grace=job["kill_grace"], echo=job["echo"])
        self.job, self.scratch, self.send = job, scratch, send
        self.forwarders: List[threading.Thread] = []

    def job_extras(self, spec: TaskSpec) -> Dict[str, Any]:
        return {"detached": (self.job["parcel"], str(self.scratch))}

    def popen_options(self, spec: TaskSpec) -> Dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}  # the worker's own
        env.update(self.job.get("env") or {})
        return {**self._stdio, "env": env}

    def start_process(self, spec: TaskSpec, channels: Any) -> Any:
        self._stdio: Dict[str, Any] = {}
        if self.echo:
            for name, target in (("stdout", 1), ("stderr", 2)):
                read, write = os.pipe()
                thread = threading.Thread(target=self._forward, args=(read, target), daemon=True)
                thread.start()
                self.forwarders.append(thread)
                self._stdio[name] = write
        try:
            return super().start_process(spec, channels)
        finally:
            for fd in self._stdio.values():
                os.close(fd)  # the child has its own copies: end of file when it (and what it started) exits

    def _forward(self, fd: int, target: int) -> None:
        """Lines the task echoed, to the coordinator as they come (one event per read)."""
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return
                self.send({"fd": target, "text": chunk.decode("utf-8", "replace")})
        except Exception:  # noqa: BLE001 - the echo is a courtesy; the task's stored logs are complete anyway
            return
        finally:
            os.close(fd)


def run_remote(job: Dict[str, Any]) -> Optional[TaskResult]:
    """Run one attempt on this Dask worker; its result (with its bundle), or None if it was cancelled.

    ``job``: ``spec`` (a TaskSpec), ``parcel`` (what it reads), ``code`` ({relative path: bytes} of
    the flow's directory), ``timeout``, ``kill_grace``, ``echo``, ``topic`` (the run's log topic) and
    ``env`` (variables forwarded from the coordinator, on top of the worker's own environment).
    """
    from distributed import get_worker
    from distributed.worker import thread_state

    worker = get_worker()
    key = getattr(thread_state, "key", None)
    home = Path(worker.local_directory) / "cafstore"
    code_dir = _lay_out_code(home / "code", job["code"])
    spec: TaskSpec = job["spec"]
    local = dataclasses.replace(
        spec, flow_file=str(code_dir / job["flow_file"]), cwd=str(code_dir / job["cwd"]), store_path=spec.store_path
    )
    topic = job["topic"]

    def send(message: Dict[str, Any]) -> None:
        worker.log_event(topic, message)

    executor = _WorkerSpawn(job, home / "store", send)
    executor.submit(local, timeout=job["timeout"])
    try:
        while True:
            results = executor.wait(0.2)
            if results:
                result = results[0]
                break
            state = worker.state.tasks.get(key) if key is not None else None
            if key is not None and (state is None or state.state in _GONE):
                executor.kill()  # the coordinator gave up on it: stop the whole process group
                return None
    finally:
        executor.shutdown()
        for thread in executor.forwarders:
            thread.join(timeout=2.0)
    return result


def code_package(flow_dir: str, limit: int = 32 << 20) -> Dict[str, bytes]:
    """The flow's code as the workers get it: every ``.py`` file under the flow's directory.

    Like Metaflow's code package: helper modules next to the flow import on
    the worker as they do here.  Hidden directories, ``__pycache__`` and
    virtual environments are skipped.  Over ``limit`` bytes is refused.
    """
    from cafstore.exception import CommandLineError

    files: Dict[str, bytes] = {}
    total = 0
    for root, dirs, names in os.walk(flow_dir):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and d not in ("__pycache__", "venv", "site-packages", "node_modules")
        )
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            data = Path(path).read_bytes()
            total += len(data)
            if total > limit:
                raise CommandLineError(
                    f"The flow's directory {flow_dir} holds more than {limit >> 20} MiB of .py files, which "
                    "would all be shipped to the Dask workers; move the flow into a directory of its own."
                )
            files[os.path.relpath(path, flow_dir)] = data
    return files


def _lay_out_code(base: Path, files: Dict[str, bytes]) -> Path:
    """The shipped files under ``base/<their hash>``, written once per worker (atomically: a rename)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    target = base / digest.hexdigest()[:24]
    if target.is_dir():
        return target
    temp = base / f".tmp-{uuid.uuid4().hex}"
    for name, data in files.items():
        path = temp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    try:
        os.rename(temp, target)
    except OSError:  # another thread of this worker laid it out first
        import shutil

        shutil.rmtree(temp, ignore_errors=True)
    return target
