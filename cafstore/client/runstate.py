"""A run's status as the user should see it, from its run ref (docs/datamodel.md).

The ref says ``running`` until the scheduler writes ``succeeded`` or
``failed``. A scheduler killed with ``kill -9`` never writes either, so a
``running`` run whose scheduler process is gone (same host, pid dead or
reused) is shown as ``crashed``: not finished, and not coming back.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Any, Optional

RUNNING, SUCCEEDED, FAILED, CRASHED = "running", "succeeded", "failed", "crashed"


@lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def _boot_time() -> Optional[float]:
    try:
        with open("/proc/stat", "rb") as handle:
            for line in handle:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _proc_state(pid: int) -> "tuple[str, Optional[float]]":
    """(state letter, start time) of a Linux process; ('', None) where /proc is unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return "", None
    fields = data[data.rindex(b")") + 2:].split()
    boot = _boot_time()
    start = None
    if boot is not None and len(fields) > 19:
        start = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0].decode("ascii", "replace"), start


def pid_alive(pid: Any, since: Optional[float] = None) -> bool:
    """Whether process ``pid`` runs (not a zombie) and, given ``since``, started before then (not reused)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
        return False
    state, started = _proc_state(pid)
    if state == "Z":
        return False
    if since is not None and started is not None and started > since + 2.0:
        return False  # the pid was recycled by a process born after the run began
    return True


def status_of(meta: dict) -> str:
    """``running``, ``succeeded``, ``failed`` or ``crashed`` for a run ref's value."""
    status = meta.get("status") or RUNNING
    if status != RUNNING:
        return status
    host = meta.get("host")
    if host and host != _hostname():
        return RUNNING  # another machine's scheduler: nothing here can tell
    if meta.get("pid") is None:
        return RUNNING
    return RUNNING if pid_alive(meta.get("pid"), meta.get("created")) else CRASHED


def tags_of(meta: dict) -> "tuple[frozenset, frozenset]":
    """(system tags, user tags) of a run ref; namespace tags count as system tags."""
    system = set(meta.get("system_tags") or ())
    system.update(meta.get("namespace_tags") or ())
    return frozenset(system), frozenset(meta.get("user_tags") or ())


def visible(meta: Any) -> bool:
    """A run the client shows at all: present and not marked deleted by ``cafstore rm``."""
    return isinstance(meta, dict) and not meta.get("deleted")


def in_namespace(meta: dict, ns: Optional[str]) -> bool:
    if ns is None:
        return True
    if ns in (meta.get("system_tags") or ()) or ns in (meta.get("user_tags") or ()):
        return True
    return ns in (meta.get("namespace_tags") or ())
