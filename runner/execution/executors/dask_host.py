"""A warm task host on a Dask worker: one process that has imported the flow, forking one child per attempt.

Starting an interpreter and importing cafstore and the flow for every task
costs a few hundred milliseconds; locally the ``fork`` executor avoids it by
forking the warm scheduler.  A Dask worker cannot fork itself (it is
multi-threaded, and importing the flow file as ``__main__`` would replace
its own), so the worker starts this host once per run and flow
(``python -m cafstore.runner.execution.executors.dask_host``), which loads
the flow as a spawned task would and then runs a :class:`LocalForkExecutor`
whose children use a detached store.  Runs of the same flow code share a host (it
keeps no state of a run between attempts).  Each attempt is therefore a fork, with
the same process isolation, fd-level capture, ``@timeout`` and death
reports as a local run.

Protocol (both ways: frames of a 4-byte big-endian length and a pickle):
the worker sends ``{"op": "run", "id", "spec", "parcel", "scratch",
"timeout", "env"}`` or ``{"op": "kill", "id"}`` on the host's stdin; the host sends
``{"id", "result"}`` on its result fd.  The children's live echo goes to the
host's stdout/stderr, which the worker forwards to the coordinator.  The host
dies with its worker (as tasks die with their scheduler), and leaves after
:data:`IDLE_EXIT` seconds without work.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import sys
import time
from typing import Any, BinaryIO, Dict, List, Optional, Tuple

from cafstore.runner.execution.executors.fork import LocalForkExecutor
from cafstore.runner.execution.spec import TaskResult, TaskSpec

FRAME = struct.Struct(">I")
IDLE_EXIT = 240.0  # seconds; the worker retires a host well before (dask_worker.HOST_RETIRE)
POLL = 0.004  # seconds between looks at the running children while some run


def write_frame(fd: int, message: Any) -> None:
    """One message on ``fd`` (blocking, whole)."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(FRAME.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data) :]


class FrameReader:
    """Whole messages out of a byte stream read in pieces."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> List[Any]:
        self.buffer += chunk
        out = []
        while len(self.buffer) >= FRAME.size:
            (size,) = FRAME.unpack_from(self.buffer)
            if len(self.buffer) < FRAME.size + size:
                break
            out.append(pickle.loads(bytes(self.buffer[FRAME.size : FRAME.size + size])))
            del self.buffer[: FRAME.size + size]
        return out


class HostForkExecutor(LocalForkExecutor):
    """The fork executor with detached children: attempt ``id`` -> (parcel, scratch)."""

    def __init__(self, flow_cls: type, kill_grace: float, echo: bool) -> None:
        super().__init__(flow_cls, kill_grace, echo)
        self.detached: Dict[Tuple[int, int], Tuple[Any, str]] = {}

    def detached_for(self, spec: TaskSpec) -> Optional[Tuple[Any, str]]:
        return self.detached.get((spec.task_id, spec.attempt))

    def stop(self, spec: TaskSpec) -> None:
        """Kill one attempt's process group now (the coordinator gave up on it)."""
        for proc in self._procs.values():
            if proc.spec is spec and proc.result is None and proc.exited is None:
                proc.reason = "the run cancelled it"
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def serve(jobs: BinaryIO, result_fd: int, flow_cls: type, kill_grace: float, echo: bool) -> None:
    """Run attempts as they come on ``jobs`` until it closes (or nothing came for IDLE_EXIT seconds)."""
    executor = HostForkExecutor(flow_cls, kill_grace, echo)
    reader = FrameReader()
    specs: Dict[Any, TaskSpec] = {}  # job id -> spec
    fd = jobs.fileno()
    idle_since = time.monotonic()
    try:
        while True:
            # While attempts run, look for new work without blocking, then wait on the attempts' pipes
            # (reading them: a large result fills its pipe and waits to be read); else block for work.
            wait = 0.0 if executor.running else max(0.0, IDLE_EXIT - (time.monotonic() - idle_since))
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return  # the worker closed us
                for message in reader.feed(chunk):
                    if message["op"] == "run":
                        spec = message["spec"]
                        executor.detached[(spec.task_id, spec.attempt)] = (message["parcel"], message["scratch"])
                        specs[message["id"]] = spec
                        _forwarded_env(message.get("env") or {})  # the child inherits it when forked now
                        executor.submit(spec, timeout=message.get("timeout"))
                    elif message["op"] == "kill" and message["id"] in specs:
                        executor.stop(specs[message["id"]])
            elif not executor.running:
                return  # nothing came for IDLE_EXIT seconds
            if executor.running:
                for result in executor.wait(POLL):
                    job = _job_of(result, specs)
                    if job is None:
                        continue
                    spec = specs.pop(job)
                    executor.detached.pop((spec.task_id, spec.attempt), None)
                    write_frame(result_fd, {"id": job, "result": result})
                idle_since = time.monotonic()
    finally:
        executor.shutdown()


_BASE_ENV = dict(os.environ)


def _forwarded_env(env: Dict[str, str]) -> None:
    """This host's environment for the next fork: its own, plus the coordinator's forwarded variables."""
    for name in list(os.environ):
        if name not in env and name not in _BASE_ENV:
            del os.environ[name]
    for name, value in _BASE_ENV.items():
        if name not in env and os.environ.get(name) != value:
            os.environ[name] = value
    os.environ.update(env)


def _job_of(result: TaskResult, specs: Dict[Any, TaskSpec]) -> Optional[Any]:
    for job, spec in specs.items():
        if spec.task_id == result.task_id and spec.attempt == result.attempt and spec.step == result.step:
            return job
    return None


def main(argv: List[str]) -> None:
    """``python -m ...dask_host RESULT_FD WORKER_PID FLOW_FILE FLOW_CLASS KILL_GRACE ECHO``."""
    result_fd, worker_pid = int(argv[1]), int(argv[2])
    flow_file, flow_class, kill_grace, echo = argv[3], argv[4], float(argv[5]), argv[6] == "1"
    from cafstore.runner.execution.executors import lifeline

    lifeline.bind_to(worker_pid)  # the host, and so its children, die with the worker
    os.chdir(os.path.dirname(flow_file))
    try:
        from cafstore.runner.execution.flowfile import load_flow_class

        flow_cls = load_flow_class(flow_file, flow_class)
    except BaseException as exc:  # noqa: BLE001 - every attempt sent here fails with this description
        from cafstore.runner.execution.task import describe_failure

        write_frame(result_fd, {"id": None, "broken": describe_failure(exc)})
        return
    serve(sys.stdin.buffer, result_fd, flow_cls, kill_grace, echo)


if __name__ == "__main__":
    main(sys.argv)
