"""Who the user is, and whether a run's scheduler is still alive (a pid alone can be reused)."""

from __future__ import annotations

import getpass
import os
import socket
from functools import lru_cache
from typing import Any, Mapping, Optional, Tuple

from cafstore.schema.refs import RUNNING

# -- identity ------------------------------------------------------------------------------------
ENV_USER = "CAFSTORE_USER"


def current_user() -> str:
    """Who runs are attributed to: ``CAFSTORE_USER``, ``METAFLOW_USER``, ``USER``, ``USERNAME``, the login name.

    The override comes first so tests and shared service accounts can name
    the user explicitly (Metaflow's ``METAFLOW_USER``); a process with no
    login name at all (some containers) is ``unknown`` rather than an error.
    """
    for name in (ENV_USER, "METAFLOW_USER", "USER", "USERNAME"):
        value = os.environ.get(name)
        if value:
            return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid: nothing left to ask
        return "unknown"


@lru_cache(maxsize=1)
def hostname() -> str:
    """This machine's name, as runs record it (``host``) to tell whose scheduler they were started by."""
    return socket.gethostname()


# -- run liveness --------------------------------------------------------------------------------
PID_START_SLACK = 2.0  # seconds: /proc start times are derived from a boot time with 1 s resolution


def scheduler_alive(meta: Mapping[str, Any]) -> bool:
    """Whether the scheduler of a run whose ref says ``running`` may still be at work.

    A scheduler killed with ``kill -9`` never writes ``succeeded`` or
    ``failed``, so the ref alone cannot tell a run in progress from a
    crashed one. The client shows such a run as ``crashed``; gc may drop it.
    Whatever cannot be checked counts as alive, because gc must never rob a
    run in flight: a run started on another host, or one that recorded no
    usable pid. On this host the recorded pid must exist, must not be a
    zombie (exited, not yet reaped), and must not belong to a process born
    after the run was created (the pid was reused).
    """
    pid = meta.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True
    host = meta.get("host")
    if host and host != hostname():
        return True
    recorded = meta.get("pid_start")
    if isinstance(recorded, str) and recorded:
        return process_alive(pid, start_id=recorded)
    created = meta.get("created")  # a run written before pid_start was recorded
    return process_alive(pid, born_by=created if isinstance(created, (int, float)) else None)


def closed_to_tasks(meta: Any) -> Optional[str]:
    """Why a task may no longer commit into the run whose run ref holds ``meta``; None if it may.

    A task checks this inside the write transaction that would commit it, so
    the answer cannot change before the commit lands: a task that outlives
    its scheduler (or whose run was finished or removed) must not add refs to
    a run that gc may already have dropped, which nothing would ever remove.
    ``meta`` None: the run ref is gone. The run's scheduler counts as alive
    without a look at /proc when it is this process's parent (a task of a
    local executor), since a parent cannot die without its child being
    re-parented.
    """
    if meta is None:
        return "the run no longer exists (it was removed, and gc dropped it)"
    if not isinstance(meta, dict):
        return "the run's ref cannot be read"
    if meta.get("deleted"):
        return "the run was removed (`cafstore rm`)"
    status = meta.get("status")
    if status != RUNNING:
        return f"the run has already ended ({status})"
    if meta.get("pid") != os.getppid() and not scheduler_alive(meta):
        return "the run's scheduler is gone (the run crashed)"
    return None


def process_alive(pid: int, born_by: Optional[float] = None, start_id: Optional[str] = None) -> bool:
    """Whether ``pid`` is a live process (not a zombie) that, given ``born_by``, started by then,
    and, given ``start_id`` (see :func:`process_start_id`), is the very process that recorded it.

    ``start_id`` is the exact test and is immune to the wall clock being set; ``born_by``
    compares wall times and is kept for runs recorded before ``start_id`` existed.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but is someone else's: its /proc entry still tells its state and age
    except (OverflowError, OSError):
        return True  # not a pid this system can check: cannot tell, so alive
    state, started = process_facts(pid)
    if state in ("Z", "X"):
        return False
    if start_id is not None:
        now_id = process_start_id(pid)
        return now_id is None or now_id == start_id  # None: nothing to compare with, so alive
    if born_by is not None and started is not None and started > born_by + PID_START_SLACK:
        return False
    return True


def process_facts(pid: int) -> Tuple[str, Optional[float]]:
    """(state letter, start time as a unix time) from ``/proc/<pid>/stat``; ('', None) where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:  # not Linux, or the process is gone: no facts to add
        return "", None
    fields = data[data.rindex(b")") + 2 :].split()  # the command name may hold spaces and parentheses
    boot = _boot_time()
    start = None
    if boot is not None and len(fields) > 19:
        start = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0].decode("ascii", "replace"), start


def process_start_id(pid: int) -> Optional[str]:
    """``<boot id>:<start tick>`` of ``pid``: names one process for as long as the machine is up.

    A pid is reused once its process is gone, but never within one boot at the
    same clock tick since boot, and ticks since boot do not move when the wall
    clock is set. None where /proc has no answer (not Linux, process gone).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
            boot_id = handle.read().strip().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return f"{boot_id}:{int(fields[19])}" if len(fields) > 19 else None


def _boot_time() -> Optional[float]:
    """Read each time, not cached: the kernel moves it when the wall clock is set."""
    try:
        with open("/proc/stat", "rb") as handle:
            for line in handle:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:  # not Linux
        return None
    return None
