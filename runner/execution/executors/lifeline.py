"""Tasks die with their scheduler: a killed run leaves no task running (issue 12).

Each task process is the leader of its own process group, so that one
``killpg`` stops the task and everything its step started (the executor's
``kill()``, a timeout).  The flip side: a ``kill -9`` of the scheduler, or
of its process group, does not reach the tasks.  Left alone they would go on
running and committing into a run that has crashed, or that ``cafstore rm``
and ``gc`` have already removed.

So a task asks the kernel (Linux ``prctl(PR_SET_PDEATHSIG)``) for
:data:`PARENT_GONE` the moment its parent exits, and answers it by killing
its whole process group: itself and whatever its step started.  The
request is made after the fork, so the parent may already be gone by then:
the task compares ``os.getppid()`` with the scheduler's pid afterwards.

Where the kernel offers no such signal (not Linux), the executor holds the
write end of a pipe (:class:`Pipe`) whose read end every task watches from
a thread: when the scheduler dies, the pipe's write end closes and the read
returns end-of-file.  When a step ignores the signal, the task may outlive
its scheduler; it still commits nothing, because the commit checks inside
its transaction that the run is alive and open
(``cafstore.schema.closed_to_tasks``).

(The signal is delivered when the *thread* that forked the task exits; the
scheduler forks from the thread that runs the whole run, which ends after
its tasks do.)
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
from typing import Any, Callable, Optional, Tuple

PARENT_GONE = signal.SIGHUP  # "hang up": the process this one works for is gone; its default also ends the task
_PR_SET_PDEATHSIG = 1

_prctl: Optional[Callable[..., int]] = None
_loaded = False


def warm() -> None:
    """Load ``prctl`` now (in the scheduler), so a forked task does not pay for ctypes."""
    global _prctl, _loaded
    if _loaded:
        return
    _loaded = True
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        _prctl = libc.prctl
    except (OSError, AttributeError):  # no usable libc: the commit check alone guards the run
        _prctl = None


def kernel_signal() -> bool:
    """Whether this platform sends a task a signal when its parent dies (else executors hand out a :class:`Pipe`)."""
    warm()
    return _prctl is not None


class Pipe:
    """The portable lifeline: the executor keeps the write end (and never writes); tasks watch the read end.

    ``ends`` is what a task gets: the read end, and the write end a forked
    task inherited and must close (-1 for a spawned one, which never had it).
    """

    def __init__(self) -> None:
        self.read, self.write = os.pipe()  # not inheritable: a spawned task gets the read end by pass_fds

    @property
    def ends(self) -> Tuple[int, int]:
        return self.read, self.write

    def close(self) -> None:
        for fd in (self.read, self.write):
            os.close(fd)


def bind_to(parent_pid: Optional[int], pipe: Optional[Tuple[int, int]] = None, kernel: bool = True) -> bool:
    """Make this task process die, with its process group, when ``parent_pid`` (its scheduler) exits.

    Call it in the task process, after it became a process group leader.
    ``pipe``: the (read end, inherited write end or -1) of the executor's
    :class:`Pipe`, watched when the kernel cannot signal (or ``kernel`` is
    False, as tests use it).  False when neither way is available (the
    commit check still applies).  ``parent_pid`` None: not a local task.
    """
    if parent_pid is None:
        return False
    warm()
    signal.signal(PARENT_GONE, _parent_gone)
    bound = kernel and _prctl is not None and _prctl(_PR_SET_PDEATHSIG, int(PARENT_GONE), 0, 0, 0) == 0
    if pipe is not None:
        read_end, inherited = pipe
        if inherited >= 0:
            os.close(inherited)  # only the scheduler may hold the write end, or end-of-file never comes
        if not bound:
            _thread.start_new_thread(_watch, (read_end,))
            bound = True
    if os.getppid() != parent_pid:  # it died before the request was made: no signal will come
        _parent_gone(int(PARENT_GONE), None)
    return bound


def _watch(read_end: int) -> None:
    """Block on the lifeline pipe; its end-of-file means the scheduler is gone."""
    while True:
        try:
            if os.read(read_end, 1) == b"":
                break
        except InterruptedError:
            continue
        except OSError:
            break  # the descriptor is unusable: treat as a hang-up rather than run on unwatched
    _parent_gone(int(PARENT_GONE), None)


def _parent_gone(signum: int, frame: Any) -> None:
    """Kill this task and everything its step started (its process group), at once."""
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)  # not a group leader (should not happen): at least this process
