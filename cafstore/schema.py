"""The data model above the store, spelled once: ref names, the task record, run liveness, identity.

The store (cafstore/store/) keeps objects, records and refs and knows
nothing about flows. What the refs are called and what a task record holds
is the contract between the runner, which writes them, and the client and
maintenance commands, which read them. docs/datamodel.md describes that
contract; this module is the code that spells it, so that no other module
builds or takes apart a ref name, builds a task record, decides whether a
run is still alive or looks up who the user is. The store must not import
it: dependencies point from the layers above down to the store.

Ref names are keys of one sorted table, so a prefix is a range scan. Run and
task numbers are zero-padded to ten digits so that key order is numeric
order (``latest_run`` is one reverse scan). Every ``*_ref`` builder has a
``parse_*_ref`` inverse that returns None for a name of another kind.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
from functools import lru_cache
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import cafstore
from cafstore.store import ObjectId

# -- ref names -------------------------------------------------------------------------------------
FLOWS_PREFIX = "flows/"  # flows/<Flow> -> {"name", "created"}
RUNS_PREFIX = "runs/"  # runs/<Flow>/<run:010d> -> run metadata
TASKS_PREFIX = "tasks/"  # tasks/<Flow>/<run:010d>/<step>/<task:010d> -> task record id
PINS_PREFIX = "pins/"  # pins/<Flow>/<run:010d> -> {"pinned_at", "by"}
CACHE_PREFIX = "cache/"  # cache/<key> -> record id as hex text (a weak ref)
PRODUCTION_PREFIX = "namespaces/production/"  # .../<Flow> -> {"token", "created", "by"}
AUTHORIZED_PREFIX = "namespaces/authorized/"  # .../<user>/<Flow> -> {"token"}
DEFAULT_NAMESPACE_PREFIX = "namespaces/default/"  # .../<user> -> {"namespace", "set"}
RUN_COUNTER_PREFIX = "run_id/"  # counter (not a ref): run_id/<Flow> allocates 1, 2, 3 ...
# A deleted run has no ref of its own: ``cafstore rm`` sets its run ref's "deleted" field.


def _number(text: str) -> Optional[int]:
    """A run or task number as written in a ref (ASCII digits only), else None."""
    return int(text) if text.isascii() and text.isdigit() else None


def _rest(name: str, prefix: str) -> Optional[str]:
    """What follows ``prefix`` in ``name``; None if ``name`` is not under it or nothing follows."""
    if not name.startswith(prefix):
        return None
    return name[len(prefix) :] or None


def flow_ref(flow: str) -> str:
    """The ref a flow's first run creates (so a flow with no visible run is still known)."""
    return f"{FLOWS_PREFIX}{flow}"


def parse_flow_ref(name: str) -> Optional[str]:
    return _rest(name, FLOWS_PREFIX)


def runs_prefix(flow: str) -> str:
    """The scan prefix of one flow's run refs."""
    return f"{RUNS_PREFIX}{flow}/"


def run_ref(flow: str, run_id: int) -> str:
    return f"{RUNS_PREFIX}{flow}/{run_id:010d}"


def parse_run_ref(name: str) -> Optional[Tuple[str, int]]:
    """``runs/Flow/0000000012`` -> ("Flow", 12)."""
    rest = _rest(name, RUNS_PREFIX)
    if rest is None:
        return None
    flow, _, run = rest.rpartition("/")
    run_id = _number(run)
    return (flow, run_id) if flow and run_id is not None else None


def tasks_prefix(flow: str, run_id: int, step: Optional[str] = None) -> str:
    """The scan prefix of a run's task refs, or of one step's."""
    base = f"{TASKS_PREFIX}{flow}/{run_id:010d}/"
    return base if step is None else f"{base}{step}/"


def task_ref(flow: str, run_id: int, step: str, task_id: int) -> str:
    return f"{TASKS_PREFIX}{flow}/{run_id:010d}/{step}/{task_id:010d}"


def parse_task_ref(name: str) -> Optional[Tuple[str, int, str, int]]:
    """``tasks/Flow/0000000012/start/0000000001`` -> ("Flow", 12, "start", 1)."""
    rest = _rest(name, TASKS_PREFIX)
    parts = [] if rest is None else rest.rsplit("/", 3)
    if len(parts) != 4 or not parts[0] or not parts[2]:
        return None
    run_id, task_id = _number(parts[1]), _number(parts[3])
    if run_id is None or task_id is None:
        return None
    return parts[0], run_id, parts[2], task_id


def pin_ref(flow: str, run_id: int) -> str:
    """A pinned run: a gc root that retention never drops."""
    return f"{PINS_PREFIX}{flow}/{run_id:010d}"


def parse_pin_ref(name: str) -> Optional[Tuple[str, int]]:
    rest = _rest(name, PINS_PREFIX)
    return None if rest is None else parse_run_ref(RUNS_PREFIX + rest)


def cache_ref(key: str) -> str:
    """A memoised step's entry (runner/reuse/memo.py); weak, because its value is text, not an ObjectId."""
    return f"{CACHE_PREFIX}{key}"


def parse_cache_ref(name: str) -> Optional[str]:
    return _rest(name, CACHE_PREFIX)


def production_ref(flow: str) -> str:
    """The production token of a flow (``run --production``)."""
    return f"{PRODUCTION_PREFIX}{flow}"


def parse_production_ref(name: str) -> Optional[str]:
    return _rest(name, PRODUCTION_PREFIX)


def authorized_ref(user: str, flow: str) -> str:
    """The token ``user`` was authorized with for ``flow``'s production namespace."""
    return f"{AUTHORIZED_PREFIX}{user}/{flow}"


def parse_authorized_ref(name: str) -> Optional[Tuple[str, str]]:
    """-> (user, flow); a flow name never holds a slash, a user name may."""
    rest = _rest(name, AUTHORIZED_PREFIX)
    user, _, flow = (rest or "").rpartition("/")
    return (user, flow) if user and flow else None


def default_namespace_ref(user: str) -> str:
    """The namespace ``cafstore namespace set`` saved for ``user``."""
    return f"{DEFAULT_NAMESPACE_PREFIX}{user}"


def parse_default_namespace_ref(name: str) -> Optional[str]:
    return _rest(name, DEFAULT_NAMESPACE_PREFIX)


def run_counter(flow: str) -> str:
    """The counter (``Transaction.next_counter``) that allocates ``flow``'s run ids."""
    return f"{RUN_COUNTER_PREFIX}{flow}"


def parse_run_counter(name: str) -> Optional[str]:
    return _rest(name, RUN_COUNTER_PREFIX)


# -- run metadata --------------------------------------------------------------------------------
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"  # a run ref's "status"


# -- the task record -----------------------------------------------------------------------------
TASK_OK, TASK_FAILED = "ok", "failed"  # a task record's "status"
EXCEPTION_FIELDS = ("type", "message", "traceback")
TASK_RECORD_FIELDS = (
    "kind",
    "flow",
    "run_id",
    "step",
    "task_id",
    "attempt",
    "status",
    "parents",
    "artifacts",
    "new_artifacts",
    "stdout",
    "stderr",
    "code",
    "started",
    "finished",
    "exception",
    "foreach_stack",
    "num_splits",
    "env",
    "cache_key",
    "previous_attempt",
)


def task_record(
    *,
    flow: str,
    run_id: int,
    step: str,
    task_id: int,
    attempt: int,
    status: str,
    parents: Iterable[Any],
    artifacts: Mapping[str, ObjectId],
    new_artifacts: Iterable[str],
    stdout: ObjectId,
    stderr: ObjectId,
    code: Any,
    started: float,
    finished: float,
    exception: Optional[Mapping[str, Any]],
    foreach_stack: Iterable[Mapping[str, Any]],
    num_splits: Optional[int],
    user: str,
    hostname: str,
    pid: int,
    previous_attempt: Any = None,
    cache_key: Optional[str] = None,
) -> Dict[str, Any]:
    """The canonical task record (docs/datamodel.md), ready for ``put_record``.

    Records are content-addressed: the same facts must give the same bytes,
    whoever writes them (the task process, or the scheduler for a task whose
    process died). Ids given as hex text (as task specs carry them across
    processes) become ObjectIds here, so gc and fsck see every reference.
    """
    return {
        "kind": "task",
        "flow": flow,
        "run_id": run_id,
        "step": step,
        "task_id": task_id,
        "attempt": attempt,
        "status": status,
        "parents": [ObjectId(p) for p in parents],
        "artifacts": dict(artifacts),
        "new_artifacts": sorted(new_artifacts),
        "stdout": stdout,
        "stderr": stderr,
        "code": ObjectId(code),
        "started": started,
        "finished": finished,
        "exception": None if exception is None else {key: exception[key] for key in EXCEPTION_FIELDS},
        "foreach_stack": [dict(frame, values=ObjectId(frame["values"])) for frame in foreach_stack],
        "num_splits": num_splits,
        "env": {
            "python_version": sys.version.split()[0],
            "platform": sys.platform,
            "hostname": hostname,
            "pid": pid,
            "cafstore_version": cafstore.__version__,
            "user": user,
        },
        "cache_key": cache_key,
        "previous_attempt": ObjectId(previous_attempt) if previous_attempt else None,
    }


# -- identity ------------------------------------------------------------------------------------
ENV_USER = "CAFSTORE_USER"


def current_user() -> str:
    """Who runs are attributed to: ``CAFSTORE_USER``, else ``USER``, else ``USERNAME``, else the login name.

    The override comes first so tests and shared service accounts can name
    the user explicitly (Metaflow's ``METAFLOW_USER``); a process with no
    login name at all (some containers) is ``unknown`` rather than an error.
    """
    for name in (ENV_USER, "USER", "USERNAME"):
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
