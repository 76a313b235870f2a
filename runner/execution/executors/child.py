"""The one entry point of a local task process, for fork and spawn alike.

A forked child calls :func:`run_child` right after ``fork()``, with the flow
class it inherited.  A spawned interpreter runs ``python -m
cafstore.runner.execution.executors.child RESULT_FD``, reads
``{"spec": TaskSpec, "echo": bool}`` pickled on its stdin, and calls the same
function without a flow class: the flow file is then imported by path as
``__main__`` (as ``python flow.py`` would, without starting its command
line).  Either way the child sets up its process, runs the task
(:func:`~cafstore.runner.execution.task.execute`, which turns every failure
of the step into a result), and sends the result on RESULT_FD.

**The result pipe** carries one frame: :data:`RESULT_FRAME` (payload length,
payload kind), then the payload: a pickled TaskResult (:data:`RESULT`) or,
when not even a failed TaskResult could be sent, the text of a crash
(:data:`CRASH_REPORT`).

**A crash of cafstore's own is reported, not swallowed.**  If something
fails outside the step (the result cannot be pickled, the flow's directory
vanished, the task cannot be read from stdin...), the child sends a failed
TaskResult whose error carries the full traceback, marked as an internal
error (``user_error: False``); failing that, the traceback as a crash-report
frame, which the parent puts in its "the task died" message; failing that
too, the traceback on the task's stderr (fd 2).  It then exits with
:data:`INTERNAL_ERROR_EXIT`.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import struct
import sys
import traceback
from typing import Any, Dict, List, NoReturn, Optional, Tuple

from cafstore.runner.execution.executors import lifeline
from cafstore.runner.execution.logs import Channels
from cafstore.runner.execution.spec import TaskResult, TaskSpec

RESULT_FRAME = struct.Struct(">IB")  # payload length, payload kind
RESULT = 1  # payload kind: a pickled TaskResult
CRASH_REPORT = 2  # payload kind: UTF-8 text, the traceback of a crash that could not be sent as a TaskResult
INTERNAL_ERROR_EXIT = 70  # exit status of a task process that hit an error of cafstore's own (EX_SOFTWARE)


def run_child(
    spec: TaskSpec,
    result_fd: int,
    flow_cls: Optional[type] = None,
    echo: bool = True,
    parent_pid: Optional[int] = None,
    channels: Optional[Channels] = None,
    lifeline_pipe: Optional[Tuple[int, int]] = None,
    detached: Optional[Tuple[Any, str]] = None,
) -> NoReturn:
    """Run one attempt of ``spec`` in this new process, report it on ``result_fd``, and exit.

    Never returns: in a forked child, returning would run the scheduler's
    own code a second time.  ``flow_cls`` None (spawn): import it from
    ``spec.flow_file``.  ``echo``: also print the task's output live.
    ``parent_pid``: the scheduler's pid; the task dies when that process does
    (:mod:`~cafstore.runner.execution.executors.lifeline`; ``lifeline_pipe``:
    the executor's pipe, where the kernel cannot signal).  ``channels``: the
    pipes and journal the executor made for the task's output.  ``detached``: (a
    :class:`~cafstore.store.detached.Parcel`, a scratch directory) for a task that may not open
    the store's index (a remote worker): it then runs on a detached store and commits nothing.
    """
    status = 0
    result: Optional[TaskResult] = None
    try:
        prepare_process(spec, parent_pid, lifeline_pipe)
        result = _run_task(spec, flow_cls, echo, channels, detached)
        release_store()
        send_result(result_fd, result)
    except BaseException as exc:  # noqa: BLE001 - nothing may escape into a forked scheduler's stack: report it
        status = INTERNAL_ERROR_EXIT
        report_crash(result_fd, spec, exc, result)
    finally:
        _flush_std_streams()
        os._exit(status)


def _run_task(
    spec: TaskSpec,
    flow_cls: Optional[type],
    echo: bool,
    channels: Optional[Channels],
    detached: Optional[Tuple[Any, str]] = None,
) -> TaskResult:
    from cafstore.runner.execution.task import execute

    store = None
    if detached is not None:
        from cafstore.store.detached import DetachedStore

        store = DetachedStore(*detached)

    if flow_cls is None:
        from cafstore.runner.execution.flowfile import load_flow_class
        from cafstore.runner.execution.task import describe_failure

        try:
            flow_cls = load_flow_class(spec.flow_file, spec.flow_class)
        except BaseException as exc:  # noqa: BLE001 - the flow file failed to import here: the task's failure
            return TaskResult(
                spec.task_id, spec.step, spec.attempt, "failed", error=describe_failure(exc), pid=os.getpid()
            )
    return execute(spec, flow_cls, echo=echo, channels=channels, store=store)


def prepare_process(
    spec: TaskSpec, parent_pid: Optional[int] = None, lifeline_pipe: Optional[Tuple[int, int]] = None
) -> None:
    """Process-level set-up of a task: own process group, dying with its scheduler (``parent_pid``),
    no stdin, default signals, the flow's directory."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # already a group leader (spawn starts a new session), or the parent did it first
    for sig in (signal.SIGTERM, signal.SIGCHLD):  # SIGPIPE stays ignored, as in any Python program
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    lifeline.bind_to(parent_pid, lifeline_pipe)
    faulthandler.enable(file=2, all_threads=True)  # a crash in C leaves its Python traceback on the task's stderr
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir(spec.cwd)
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # forked children would share the parent's global random state
        try:
            numpy.random.seed()
        except Exception:  # noqa: BLE001 - a broken numpy must not stop the task; the step sees its own error
            pass


def release_store() -> None:
    """Close the task's LMDB handle before exiting: it frees the process's reader slot now,
    instead of leaving it for the next opener to find stale (the reader table is finite)."""
    from cafstore.store.index import close_all

    try:
        close_all()
    except Exception:  # noqa: BLE001 - the result matters more than the tidy-up; a stale slot is reclaimed later
        pass


def send_result(fd: int, result: TaskResult) -> None:
    """Send ``result`` as the attempt's one frame on ``fd``, then close it."""
    _send_frame(fd, RESULT, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def send_crash_report(fd: int, text: str) -> None:
    """Send the text of a crash as the attempt's one frame on ``fd``, then close it.

    For when not even a failed TaskResult could be sent: the parent then
    reports the attempt as died and quotes ``text``.
    """
    _send_frame(fd, CRASH_REPORT, text.encode("utf-8", "replace"))


def _send_frame(fd: int, kind: int, payload: bytes) -> None:
    data = memoryview(RESULT_FRAME.pack(len(payload), kind) + payload)
    while data:
        written = os.write(fd, data)
        data = data[written:]
    os.close(fd)


def report_crash(
    result_fd: int, spec: Optional[TaskSpec], exc: BaseException, outcome: Optional[TaskResult] = None
) -> None:
    """Tell the parent (else at least the terminal) that cafstore failed in this task process.

    Never raises: it runs where nothing may escape.  ``spec`` None: the
    task itself is unknown (it could not be read), so no TaskResult can be
    made for it.  ``outcome``: the result the task had produced, if the
    failure came after it (how the step ended is then worth telling too).
    """
    text = crash_text(spec, exc) + _outcome_note(outcome)
    if spec is not None:
        try:
            failed = TaskResult(
                spec.task_id,
                spec.step,
                spec.attempt,
                "failed",
                error=describe_internal_error(exc, text),
                pid=os.getpid(),
            )
            send_result(result_fd, failed)
            return
        except BaseException as send_error:  # noqa: BLE001 - fall back to the channels below, saying why
            text += f"(The failure could not be reported as a result either: {_one_line(send_error)}.)\n"
    try:
        send_crash_report(result_fd, text)
        return
    except BaseException as send_error:  # noqa: BLE001 - the pipe is unusable: the terminal is what is left
        text += f"(Nor as text to the scheduler: {_one_line(send_error)}.)\n"
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass  # no stderr either: the exit status is the only trace left, and the parent reports it


def _outcome_note(outcome: Optional[TaskResult]) -> str:
    if outcome is None:
        return ""
    try:
        if outcome.ok:
            return "(The step itself had succeeded before that.)\n"
        error = outcome.error or {}
        return (
            f"(The step itself had failed before that: {str(error.get('type', '?'))}: "
            f"{str(error.get('message', '?'))})\n"
        )
    except Exception as exc:  # noqa: BLE001 - the note is a courtesy; say why it is missing
        return f"(How the step itself ended cannot be told: {type(exc).__name__}.)\n"


def crash_text(spec: Optional[TaskSpec], exc: BaseException) -> str:
    """The full traceback of a failure of cafstore's own in a task process, headed for the user."""
    task = f"task {spec.pathspec}" if spec is not None else "a task"
    head = (
        f"cafstore failed inside the process (pid {os.getpid()}) of {task}. This is an internal error, "
        "not an exception raised by the step; please report it with this traceback:\n"
    )
    return head + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def describe_internal_error(exc: BaseException, text: str) -> Dict[str, Any]:
    """A failure of cafstore's own as a TaskResult error: the whole traceback, nothing trimmed."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", "")
    return {
        "type": kind,
        "message": f"cafstore failed inside the task process (an internal error): {_one_line(exc)}",
        "traceback": text,
        "headline": "internal error",
        "where": "",
        "user_error": False,
        "internal": True,
    }


def _one_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken terminal: what is lost is the step's unflushed output, already stored


def main(argv: List[str]) -> NoReturn:
    """``python -m cafstore.runner.execution.executors.child RESULT_FD``: one task in a fresh interpreter."""
    if len(argv) != 2 or not argv[1].isdigit():
        sys.stderr.write(
            "usage: python -m cafstore.runner.execution.executors.child RESULT_FD "
            "(a task's spec pickled on stdin; started by the spawn executor, not by hand)\n"
        )
        sys.exit(2)
    result_fd = int(argv[1])
    try:
        job = pickle.load(sys.stdin.buffer)
        spec, echo, parent_pid, channels = job["spec"], job["echo"], job.get("parent"), job.get("channels")
        lifeline_pipe = job.get("lifeline")
    except BaseException as exc:  # noqa: BLE001 - without a spec nothing else can run: report why
        report_crash(result_fd, None, exc)
        _flush_std_streams()
        os._exit(INTERNAL_ERROR_EXIT)
    run_child(spec, result_fd, None, echo, parent_pid, channels, lifeline_pipe)


if __name__ == "__main__":
    main(sys.argv)
