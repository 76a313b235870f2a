"""What runs on a Dask worker for one task attempt (the other half of :mod:`.dask`).

:func:`run_remote` is the function the coordinator submits.  On the worker
it lays out the flow's code (shipped with the job, kept per code id under
the worker's own directory: the coordinator's disk is never read) and hands
the attempt to the run's warm task host on this worker
(:mod:`.dask_host`, started on first use), which forks it with a detached
store: its own process and process group, fd-level log capture,
``@timeout`` enforced, a death reported with what it had printed.  The
host's stdout/stderr carry the tasks' live echo, which is forwarded to the
coordinator as Dask events on the run's log topic while the tasks run.  The
result, with the task's bundle, goes back as the Dask task's value; the
coordinator commits it.

The attempt is killed (its whole process group) if the coordinator cancels
the Dask task (``kill()``, Ctrl-C, a run that failed) or the worker dies
(the host dies with the worker, and its children with the host).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cafstore.runner.execution.executors.base import lost_attempt
from cafstore.runner.execution.executors.dask_host import FrameReader, write_frame
from cafstore.runner.execution.spec import TaskResult, TaskSpec

HOST_MODULE = "cafstore.runner.execution.executors.dask_host"
HOST_RETIRE = 120.0  # seconds unused after which a new host is started (the host itself leaves at 240)
_GONE = ("cancelled", "released", "forgotten", "error")
_HOSTS: Dict[Tuple[str, ...], "_Host"] = {}
_HOSTS_LOCK = threading.Lock()
_PATHSPEC = re.compile(r"^\S+ \S+ \[([^/\]]+/\d+)/")  # an echoed line's "Flow/run" (logs.Capture's format)


class _Host:
    """One warm task host process on this worker, and the threads that read what it sends."""

    def __init__(self, key: Tuple[str, ...], flow_file: str, flow_class: str, job: Dict[str, Any], send: Any) -> None:
        self.key = key
        self.latest_topic = job["topic"]
        self.lock = threading.Lock()
        self.waiting: Dict[int, "threading.Event"] = {}
        self.results: Dict[int, TaskResult] = {}
        self.broken: Optional[Dict[str, Any]] = None
        self.ids = itertools.count(1)
        self.last_used = time.monotonic()
        self.retired = False  # set when writing to it failed: the next attempt starts another
        read_end, write_end = os.pipe()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}  # the worker's own
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", HOST_MODULE, str(write_end), str(os.getpid()), flow_file, flow_class]
                + [repr(job["kill_grace"]), "1" if job["echo"] else "0"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_end,),
                cwd=os.path.dirname(flow_file),
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        self.forwarding = 0  # chunks read from the echo pipes and not yet sent
        self.sent: Dict[str, int] = {}  # per run's topic, messages sent: the coordinator waits for a task's last
        self.topics: Dict[str, str] = {}  # "Flow/run_id" -> the run's log topic (runs of one flow share a host)
        self.name = uuid.uuid4().hex
        for stream, target in ((self.proc.stdout, 1), (self.proc.stderr, 2)):
            threading.Thread(target=self._forward, args=(stream, target, send), daemon=True).start()
        threading.Thread(target=self._read_results, args=(read_end,), daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and self.broken is None and not self.retired

    def run(self, message: Dict[str, Any], topic: str) -> Tuple[int, "threading.Event"]:
        job_id = next(self.ids)
        done = threading.Event()
        spec = message["spec"]
        with self.lock:
            self.topics[f"{spec.flow_name}/{spec.run_id}"] = self.latest_topic = topic
            self.waiting[job_id] = done
            self.last_used = time.monotonic()
            assert self.proc.stdin is not None
            write_frame(self.proc.stdin.fileno(), dict(message, op="run", id=job_id))
        return job_id, done

    def kill(self, job_id: int) -> None:
        with self.lock:
            try:
                assert self.proc.stdin is not None
                write_frame(self.proc.stdin.fileno(), {"op": "kill", "id": job_id})
            except OSError:
                pass  # the host is gone: so is the attempt

    def take(self, job_id: int) -> Optional[TaskResult]:
        with self.lock:
            self.waiting.pop(job_id, None)
            self.last_used = time.monotonic()
            return self.results.pop(job_id, None)

    def drain(self, timeout: float = 2.0) -> None:
        """Wait until the echo the host has written is sent on, so a task's last lines reach the
        coordinator before its result does (both travel through the worker's one stream to the scheduler)."""
        import fcntl
        import termios

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pending = self.forwarding
            for stream in (self.proc.stdout, self.proc.stderr):
                try:
                    size = bytearray(4)
                    fcntl.ioctl(stream.fileno(), termios.FIONREAD, size)
                    pending += int.from_bytes(size, sys.byteorder)
                except (OSError, ValueError):
                    pass
            if not pending:
                return
            time.sleep(0.002)

    def _forward(self, stream: Any, target: int, send: Any) -> None:
        """The host's output (its tasks' live echo), to each run's coordinator as it comes.

        Every echoed line names its task (``... [Flow/run/step/task (pid N)] text``, one write per
        line), which says whose run it is; a line of no run's goes to the latest run's topic."""
        fd = stream.fileno()
        partial = b""
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return
                self.forwarding += 1
                try:
                    lines = (partial + chunk).split(b"\n")
                    partial = lines.pop()
                    by_topic: Dict[str, List[str]] = {}
                    for line in lines:
                        text = line.decode("utf-8", "replace") + "\n"
                        by_topic.setdefault(self._topic_of(text), []).append(text)
                    for topic, texts in by_topic.items():
                        with self.lock:
                            number = self.sent[topic] = self.sent.get(topic, 0) + 1
                        message = {"fd": target, "text": "".join(texts), "host": self.name, "seq": number}
                        send(topic, message)
                except Exception:  # noqa: BLE001 - the echo is a courtesy; the stored logs are complete anyway
                    pass
                finally:
                    self.forwarding -= 1
        finally:
            stream.close()

    def _topic_of(self, line: str) -> str:
        match = _PATHSPEC.search(line)
        with self.lock:
            topic = self.topics.get(match.group(1)) if match else None
            return topic or self.latest_topic

    def _read_results(self, fd: int) -> None:
        reader = FrameReader()
        try:
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                for message in reader.feed(chunk):
                    with self.lock:
                        if message.get("id") is None:
                            self.broken = message.get("broken")
                            continue
                        self.results[message["id"]] = message["result"]
                        event = self.waiting.get(message["id"])
                    if event is not None:
                        event.set()
        finally:
            os.close(fd)
            with self.lock:
                events = list(self.waiting.values())
            for event in events:  # the host is gone: nobody else will wake them
                event.set()


def _host_for(job: Dict[str, Any], flow_file: str, send: Any) -> _Host:
    spec: TaskSpec = job["spec"]
    key = (flow_file, spec.flow_class, repr(job["kill_grace"]), "1" if job["echo"] else "0")
    with _HOSTS_LOCK:
        host = _HOSTS.get(key)
        if host is None or not host.alive or time.monotonic() - host.last_used > HOST_RETIRE:
            if host is not None and host.proc.poll() is None and host.proc.stdin is not None:
                host.proc.stdin.close()  # retired: it exits once its last attempts are done
            host = _HOSTS[key] = _Host(key, flow_file, spec.flow_class, job, send)
        return host


def warm_host(job: Dict[str, Any], dask_worker: Any = None) -> None:
    """Start the task host ``job``'s attempts will use on this worker, ahead of them (the coordinator
    runs this on every worker with ``Client.run``, which passes ``dask_worker``, when a run starts:
    hosts then load the flow in parallel, not one by one)."""
    worker = dask_worker
    code_dir = _lay_out_code(Path(worker.local_directory) / "cafstore" / "code", job["code"])
    _host_for(job, str(code_dir / job["flow_file"]), worker.log_event)


def run_remote(job: Dict[str, Any]) -> Dict[str, Any]:
    """Run one attempt on this Dask worker: ``{"result": TaskResult (with its bundle) or None if it was
    cancelled, "echo": (host name, number of echo chunks sent so far)}``; the coordinator shows the
    echo up to that mark before it handles the result.

    ``job``: ``spec`` (a TaskSpec), ``parcel`` (what it reads), ``code`` ({relative path: bytes} of
    the flow's directory), ``flow_file`` / ``cwd`` (relative to it), ``timeout``, ``kill_grace``,
    ``echo``, ``topic`` (the run's log topic) and ``env`` (variables forwarded from the coordinator,
    on top of the worker's own environment).
    """
    from distributed import get_worker
    from distributed.worker import thread_state

    worker = get_worker()
    key = getattr(thread_state, "key", None)
    home = Path(worker.local_directory) / "cafstore"
    code_dir = _lay_out_code(home / "code", job["code"])
    spec: TaskSpec = job["spec"]
    local = dataclasses.replace(spec, flow_file=str(code_dir / job["flow_file"]), cwd=str(code_dir / job["cwd"]))
    topic = job["topic"]

    host = _host_for(job, local.flow_file, worker.log_event)
    message = {"spec": local, "parcel": job["parcel"], "scratch": str(home / "store"), "timeout": job["timeout"]}
    message["env"] = job.get("env") or {}
    try:
        job_id, done = host.run(message, topic)
    except OSError:  # the host died since it was last used: start another
        host.retired = True
        host = _host_for(job, local.flow_file, worker.log_event)
        job_id, done = host.run(message, topic)
    while not done.wait(0.2):
        state = worker.state.tasks.get(key) if key is not None else None
        if key is not None and (state is None or state.state in _GONE):
            host.kill(job_id)  # the coordinator gave up on it: stop its whole process group
            host.take(job_id)
            return {"result": None, "echo": None}
    result = host.take(job_id)
    host.drain()
    if result is None and host.broken is not None:  # the flow file failed to import on this worker
        result = TaskResult(spec.task_id, spec.step, spec.attempt, "failed", error=host.broken)
    elif result is None:
        message = f"The task host process on Dask worker {worker.address} died (exit status {host.proc.poll()})."
        result = lost_attempt(spec, 0, message)
    return {"result": result, "echo": (host.name, host.sent.get(topic, 0))}


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
