"""What the local executors share: one OS process per attempt, pipes, reaping, killing.

Each attempt runs in its own process and its own process group, so one
``killpg`` stops a task and anything it started.  The child sends its
result back as one frame on a pipe (the protocol lives in
:mod:`~cafstore.runner.execution.executors.child`).  The parent polls every
pipe at once (``poll``, so no limit on the number of workers) and reaps
children; a child that exits without sending a result (killed, crashed,
``os._exit`` in user code, past its deadline) becomes a result built by
:func:`~cafstore.runner.execution.executors.base.lost_attempt` saying how it
died.  Subclasses only say how to start a process: :meth:`LocalProcessExecutor.start_process`.

The executor also makes each attempt's output pipes and journal
(:class:`~cafstore.runner.execution.logs.Channels`) and keeps them until the
attempt is over: an attempt that died leaves its output there, which goes
into its result (``stdout``/``stderr``) for the scheduler to store.
"""

from __future__ import annotations

import abc
import os
import pickle
import select
import signal
import time
from typing import Any, Dict, List, Optional, Tuple

from cafstore.runner.execution.executors import lifeline
from cafstore.runner.execution.executors.base import Executor, lost_attempt
from cafstore.runner.execution.executors.child import CRASH_REPORT, INTERNAL_ERROR_EXIT, RESULT, RESULT_FRAME
from cafstore.runner.execution.logs import Channels, recover
from cafstore.runner.execution.spec import TaskResult, TaskSpec


class _Proc:
    """One running attempt, as the parent sees it."""

    __slots__ = (
        "spec",
        "pid",
        "fd",
        "buffer",
        "deadline",
        "popen",
        "result",
        "report",
        "exited",
        "reason",
        "channels",
    )

    def __init__(
        self, spec: TaskSpec, pid: int, fd: int, deadline: Optional[float], popen: Any, channels: Channels
    ) -> None:
        self.spec, self.pid, self.fd, self.deadline, self.popen = spec, pid, fd, deadline, popen
        self.channels = channels
        self.buffer = bytearray()
        self.result: Optional[TaskResult] = None
        self.report = ""  # the text of a crash the child could not send as a result
        self.exited: Optional[int] = None  # wait status once reaped
        self.reason = ""  # why the parent killed it


class LocalProcessExecutor(Executor):
    """Shared machinery of the local executors: pipes, reaping, killing.  Subclasses start processes."""

    def __init__(self, kill_grace: float = 3.0, echo: bool = True) -> None:
        self.kill_grace = kill_grace
        self.echo = echo
        # Tasks die with this process: by a kernel signal, else by watching this pipe (lifeline.py).
        self.lifeline: Optional[lifeline.Pipe] = None if lifeline.kernel_signal() else lifeline.Pipe()
        self._procs: Dict[int, _Proc] = {}  # by result pipe fd
        self._zombies: List[_Proc] = []  # reported, not yet reaped

    @property
    def running(self) -> int:
        return len(self._procs)

    def submit(self, spec: TaskSpec, timeout: Optional[float] = None) -> None:
        deadline = time.monotonic() + timeout if timeout else None
        channels = Channels.open()
        try:
            pid, fd, popen = self.start_process(spec, channels)
        except BaseException:
            channels.close()
            raise
        channels.started()
        self._procs[fd] = _Proc(spec, pid, fd, deadline, popen, channels)

    @abc.abstractmethod
    def start_process(self, spec: TaskSpec, channels: Channels) -> Tuple[int, int, Any]:
        """Start a process for ``spec`` in its own process group, handing it ``channels`` for its output;
        return its pid, the read end of its result pipe, and a ``subprocess.Popen`` to reap it through
        (None: reap the pid directly)."""

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
        if proc.result is not None or proc.report or len(proc.buffer) < RESULT_FRAME.size:
            return
        size, kind = RESULT_FRAME.unpack_from(proc.buffer)
        if len(proc.buffer) < RESULT_FRAME.size + size:
            return
        payload = bytes(proc.buffer[RESULT_FRAME.size : RESULT_FRAME.size + size])
        if kind == CRASH_REPORT:
            proc.report = payload.decode("utf-8", "replace")
            return
        try:
            if kind != RESULT:
                raise ValueError(f"unknown frame kind {kind}")
            proc.result = pickle.loads(payload)
        except Exception as exc:  # noqa: BLE001 - reported as the attempt's failure, with the cause
            proc.report = (
                f"The scheduler could not read the result the task process (pid {proc.pid}) sent "
                f"({type(exc).__name__}: {exc}). This is an internal error of cafstore; please "
                "report it.\n"
            )

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
                result = proc.result or self._death(proc)
                if result.record is None and not result.ok:  # nothing stored its output: keep it with the result
                    self._keep_output(proc, result)
                results.append(result)
                del self._procs[fd]
                os.close(fd)
                proc.channels.close()
                if proc.exited is None:
                    self._zombies.append(proc)
        self._zombies = [z for z in self._zombies if not self._reap(z, block=False)]
        return results

    def _keep_output(self, proc: _Proc, result: TaskResult) -> None:
        """What an attempt that wrote no record had printed, from its journal and pipes, into its result."""
        try:
            out, err = recover(proc.channels, f"{proc.spec.pathspec} (pid {proc.pid})", self.echo)
        except OSError as exc:  # the record then says why its output is missing
            out, err = b"", f"(the output of this task could not be recovered: {exc})\n".encode()
        result.stdout, result.stderr = TaskResult.log_text(out), TaskResult.log_text(err)

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
        code = sig = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            how = f"was killed by signal {sig} ({_signal_name(sig)})"
        else:
            code = os.WEXITSTATUS(status)
            how = f"exited with code {code}"
        if proc.report:
            last = proc.report.strip().splitlines()[-1].strip()
            message = (
                f"The task process (pid {proc.pid}) {how} after an internal error of cafstore that it "
                f"could not report as a result: {last}"
            )
            return lost_attempt(proc.spec, proc.pid, message, traceback=proc.report, internal=True)
        if proc.reason:
            why = f": {proc.reason}."
        elif code == INTERNAL_ERROR_EXIT:
            why = (
                f": {INTERNAL_ERROR_EXIT} is the status of an internal error of cafstore that the task could "
                "not send back, whose traceback is then on the task's stderr (printed above)."
            )
        else:
            why = " (out of memory, a crash in a C extension, or os._exit / a signal from the step?)."
        message = f"The task process (pid {proc.pid}) {how} without reporting a result{why}"
        return lost_attempt(proc.spec, proc.pid, message, signal=sig, exit_code=code)

    def kill(self) -> None:
        """SIGTERM every attempt's process group, SIGKILL the groups after ``kill_grace``, reap.

        The SIGKILL goes to every group, also those whose leader obeyed the
        SIGTERM at once: a process the step started may ignore SIGTERM.
        Leaders that exit are left unreaped until then, so their pids (the
        groups' ids) cannot be reused by an unrelated process meanwhile.
        """
        procs = list(self._procs.values())
        for proc in procs:
            _signal_group(proc.pid, signal.SIGTERM)
        give_up = time.monotonic() + self.kill_grace
        pending = procs
        while pending and time.monotonic() < give_up:
            pending = [p for p in pending if not self._has_exited(p)]
            if pending:
                time.sleep(0.02)
        for proc in procs:
            if proc.exited is None:  # not reaped: its group id is still ours
                _signal_group(proc.pid, signal.SIGKILL)
            self._reap(proc, block=True)
        for fd, proc in self._procs.items():
            os.close(fd)
            proc.channels.close()
        self._procs.clear()

    def _has_exited(self, proc: _Proc) -> bool:
        """Whether the attempt's process has exited, without reaping it where the platform allows."""
        if proc.exited is not None:
            return True
        if not _CAN_PEEK:
            return self._reap(proc, block=False)
        try:
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return self._reap(proc, block=False)

    def shutdown(self) -> None:
        if self._procs:
            self.kill()
        for zombie in self._zombies:
            self._reap(zombie, block=True)
        self._zombies = []
        if self.lifeline is not None:
            self.lifeline.close()
            self.lifeline = None


_CAN_PEEK = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")  # not on macOS: there, reap and skip the SIGKILL


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # it is gone already


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "unknown"
