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

Where the kernel offers no such signal (not Linux), or when a step ignores
it, the task may outlive its scheduler; it still commits nothing, because
the commit checks inside its transaction that the run is alive and open
(``cafstore.schema.closed_to_tasks``).

(The signal is delivered when the *thread* that forked the task exits; the
scheduler forks from the thread that runs the whole run, which ends after
its tasks do.)
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Callable, Optional

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


def bind_to(parent_pid: Optional[int]) -> bool:
    """Make this task process die, with its process group, when ``parent_pid`` (its scheduler) exits.

    Call it in the task process, after it became a process group leader.
    False where the platform cannot do it (the commit check still applies).
    ``parent_pid`` None: the caller is not a local task; nothing to do.
    """
    if parent_pid is None:
        return False
    warm()
    signal.signal(PARENT_GONE, _parent_gone)
    bound = _prctl is not None and _prctl(_PR_SET_PDEATHSIG, int(PARENT_GONE), 0, 0, 0) == 0
    if os.getppid() != parent_pid:  # it died before the request was made: no signal will come
        _parent_gone(int(PARENT_GONE), None)
    return bound


def _parent_gone(signum: int, frame: Any) -> None:
    """Kill this task and everything its step started (its process group), at once."""
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)  # not a group leader (should not happen): at least this process
