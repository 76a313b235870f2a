"""Executors: where task attempts run (design §5).

The scheduler talks to an :class:`Executor` only through ``submit``,
``wait``, ``kill`` and ``shutdown``, with plain picklable
:class:`~cafstore.runner.execution.spec.TaskSpec` / :class:`~cafstore.runner.execution.spec.TaskResult`
objects, so a distributed executor (Dask) can replace the local one without
touching the scheduler.

Local executors run each attempt in its own OS process and its own process
group (so one ``killpg`` stops a task and anything it started).  The child
sends its result back as one length-prefixed pickle on a pipe.  A child
that exits without sending one (killed, crashed, ``os._exit`` in user code)
is reported as a failed attempt with a message saying how it died.
"""

from __future__ import annotations

import abc
import gc
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from cafstore.runner.execution.spec import TaskResult, TaskSpec

_FRAME = struct.Struct(">I")


class Executor(abc.ABC):
    """Runs task attempts and reports how they ended."""

    @abc.abstractmethod
    def submit(self, spec: TaskSpec, timeout: Optional[float] = None) -> None:
        """Start one attempt. ``timeout``: wall-clock seconds after which it is killed and reported failed."""

    @abc.abstractmethod
    def wait(self, timeout: Optional[float] = None) -> List[TaskResult]:
        """Results of attempts that ended; blocks until at least one did or ``timeout`` seconds passed."""

    @property
    @abc.abstractmethod
    def running(self) -> int:
        """Attempts submitted and not yet returned by :meth:`wait`."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop every running attempt now; their results are discarded."""

    def shutdown(self) -> None:
        """Release resources once the run is over."""


class _Proc:
    __slots__ = ("spec", "pid", "fd", "buffer", "deadline", "popen", "result", "exited", "reason")

    def __init__(self, spec: TaskSpec, pid: int, fd: int, deadline: Optional[float], popen: Any = None) -> None:
        self.spec, self.pid, self.fd, self.deadline, self.popen = spec, pid, fd, deadline, popen
        self.buffer = bytearray()
        self.result: Optional[TaskResult] = None
        self.exited: Optional[int] = None  # wait status once reaped
        self.reason = ""


class LocalProcessExecutor(Executor):
    """Shared machinery of the local executors: pipes, reaping, killing.  Subclasses start processes."""

    def __init__(self, kill_grace: float = 3.0) -> None:
        self.kill_grace = kill_grace
        self._procs: Dict[int, _Proc] = {}  # by result pipe fd
        self._zombies: List[_Proc] = []  # reported, not yet reaped

    @property
    def running(self) -> int:
        return len(self._procs)

    def submit(self, spec: TaskSpec, timeout: Optional[float] = None) -> None:
        deadline = time.monotonic() + timeout if timeout else None
        pid, fd, popen = self._start(spec)
        self._procs[fd] = _Proc(spec, pid, fd, deadline, popen)

    @abc.abstractmethod
    def _start(self, spec: TaskSpec) -> "tuple[int, int, Any]":
        """Start a process for ``spec``; return its pid, the read end of its result pipe, and a handle."""

    def wait(self, timeout: Optional[float] = None) -> List[TaskResult]:
        if not self._procs:
            if timeout:
                time.sleep(timeout)  # nothing runs (a retry is waiting for its delay): just wait
            return []
        end = None if timeout is None else time.monotonic() + timeout
        while self._procs:
            results = self._collect()
            if results:
                return results
            now = time.monotonic()
            if end is not None and now >= end:
                return []
            slice_ = 0.2 if end is None else max(0.0, min(0.2, end - now))
            poller = select.poll()  # not select(): no limit on how many workers
            for fd in self._procs:
                poller.register(fd, select.POLLIN)
            try:
                events = poller.poll(slice_ * 1000)
            except InterruptedError:
                continue
            for fd, _ in events:
                self._read(self._procs[fd])
        return []

    def _read(self, proc: _Proc) -> None:
        try:
            chunk = os.read(proc.fd, 1 << 16)
        except OSError:
            chunk = b""
        if chunk:
            self._take(proc, chunk)
        else:
            self._reap(proc, block=True)  # EOF: every writer is gone, the child has exited or is exiting

    def _drain(self, proc: _Proc) -> None:
        os.set_blocking(proc.fd, False)
        while proc.result is None:
            try:
                chunk = os.read(proc.fd, 1 << 16)
            except BlockingIOError:
                return  # a process the task started still holds the pipe: what is there is all there is
            if not chunk:
                return
            self._take(proc, chunk)

    def _take(self, proc: _Proc, chunk: bytes) -> None:
        proc.buffer += chunk
        if len(proc.buffer) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(proc.buffer)
            if len(proc.buffer) >= _FRAME.size + size:
                proc.result = pickle.loads(bytes(proc.buffer[_FRAME.size:_FRAME.size + size]))

    def _collect(self) -> List[TaskResult]:
        """Results ready now: reported ones, dead children, and attempts past their deadline."""
        results = []
        now = time.monotonic()
        for fd, proc in list(self._procs.items()):
            if proc.result is None and proc.exited is None:
                if proc.deadline is not None and now > proc.deadline and not proc.reason:
                    proc.reason = "it ran past its @timeout and did not stop, so it was killed"
                    _signal_group(proc.pid, signal.SIGKILL)
                if self._reap(proc, block=False):
                    self._drain(proc)  # it exited: what it wrote is in the pipe, maybe not read yet
            if proc.result is not None or proc.exited is not None:
                if proc.result is not None:
                    self._reap(proc, block=False)
                results.append(proc.result or self._death(proc))
                del self._procs[fd]
                os.close(fd)
                if proc.exited is None:
                    self._zombies.append(proc)
        self._zombies = [z for z in self._zombies if not self._reap(z, block=False)]
        return results

    def _reap(self, proc: _Proc, block: bool) -> bool:
        if proc.exited is not None:
            return True
        try:
            if proc.popen is not None:
                code = proc.popen.wait() if block else proc.popen.poll()
                if code is None:
                    return False
                proc.exited = (-code) if code < 0 else (code << 8)  # as an os.waitpid status
                return True
            pid, status = os.waitpid(proc.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            proc.exited = 0
            return True
        if pid == 0:
            return False
        proc.exited = status
        return True

    def _death(self, proc: _Proc) -> TaskResult:
        status = proc.exited or 0
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            how = f"was killed by signal {sig} ({_signal_name(sig)})"
        else:
            how = f"exited with code {os.WEXITSTATUS(status)}"
        message = (f"The task process (pid {proc.pid}) {how} without reporting a result"
                   + (f": {proc.reason}." if proc.reason else
                      " (out of memory, a crash in a C extension, or os._exit / a signal from the step?)."))
        error = {"type": "cafstore.exception.TaskFailed", "message": message, "traceback": "",
                 "headline": "task died", "where": "", "user_error": True, "lost": True}
        spec = proc.spec
        return TaskResult(spec.task_id, spec.step, spec.attempt, "failed", error=error, pid=proc.pid)

    def kill(self) -> None:
        for proc in self._procs.values():
            _signal_group(proc.pid, signal.SIGTERM)
        give_up = time.monotonic() + self.kill_grace
        pending = list(self._procs.values())
        while pending and time.monotonic() < give_up:
            pending = [p for p in pending if not self._reap(p, block=False)]
            if pending:
                time.sleep(0.02)
        for proc in pending:
            _signal_group(proc.pid, signal.SIGKILL)
            self._reap(proc, block=True)
        for fd in self._procs:
            os.close(fd)
        self._procs.clear()

    def shutdown(self) -> None:
        if self._procs:
            self.kill()
        for zombie in self._zombies:
            self._reap(zombie, block=True)
        self._zombies = []


class LocalForkExecutor(LocalProcessExecutor):
    """Each attempt is a fork of this (warm) process: no interpreter start, no re-import of the flow.

    The caller must not hold an open LMDB environment across :meth:`submit`
    (``Store.close()`` first); the child opens its own.
    """

    def __init__(self, flow_cls: type, kill_grace: float = 3.0, echo: bool = True) -> None:
        super().__init__(kill_grace)
        self.flow_cls = flow_cls
        self.echo = echo
        from cafstore.runner.execution import task

        task.warm()

    def _start(self, spec: TaskSpec) -> "tuple[int, int, Any]":
        from cafstore.store.index import close_all

        close_all()  # never carry an LMDB environment into a child
        gc.freeze()  # the child's garbage collector then never touches (and copies) the parent's objects
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would print the parent's buffered text again
        from cafstore.runner.execution import task

        task.warm(spec.store_path)  # the child inherits the Store object instead of building one
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _child_main(spec, self.flow_cls, write_end, self.echo)
        os.close(write_end)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child already did it (or already exited)
        return pid, read_end, None


def _child_main(spec: TaskSpec, flow_cls: type, result_fd: int, echo: bool) -> None:
    status = 0
    try:
        prepare_child(spec)
        from cafstore.runner.execution.task import execute

        result = execute(spec, flow_cls, echo=echo)
        release_store()
        send_result(result_fd, result)
    except BaseException:  # noqa: BLE001 - nothing may escape into the scheduler's stack
        status = 70
    finally:
        os._exit(status)


def prepare_child(spec: TaskSpec) -> None:
    """Process-level set-up of a task: own process group, no stdin, default signals, the flow's directory."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    for sig in (signal.SIGTERM, signal.SIGCHLD):  # SIGPIPE stays ignored, as in any Python program
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir(spec.cwd)
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # forked children would share the parent's global random state
        try:
            numpy.random.seed()
        except Exception:  # noqa: BLE001 - a broken numpy must not stop the task
            pass


def release_store() -> None:
    """Close the task's LMDB handle before exiting: it frees the process's reader slot now,
    instead of leaving it for the next opener to find stale (the reader table is finite)."""
    from cafstore.store.index import close_all

    try:
        close_all()
    except Exception:  # noqa: BLE001 - the result matters more than the tidy-up
        pass


def send_result(fd: int, result: TaskResult) -> None:
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(_FRAME.pack(len(payload)) + payload)
    while data:
        written = os.write(fd, data)
        data = data[written:]
    os.close(fd)


class LocalSpawnExecutor(LocalProcessExecutor):
    """Each attempt is ``python -m cafstore.runner.execution.executors.spawn_main`` importing the flow file by path.

    Slower (an interpreter start and an import per task); used where fork is
    unavailable, or with ``CAFSTORE_START_METHOD=spawn``.
    """

    def _start(self, spec: TaskSpec) -> "tuple[int, int, Any]":
        read_end, write_end = os.pipe()
        popen = subprocess.Popen(
            [sys.executable, "-m", "cafstore.runner.execution.executors.spawn_main", str(write_end)],
            stdin=subprocess.PIPE, pass_fds=(write_end,), cwd=spec.cwd, start_new_session=True,
        )
        os.close(write_end)
        assert popen.stdin is not None
        popen.stdin.write(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
        popen.stdin.close()
        return popen.pid, read_end, popen


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "unknown"
