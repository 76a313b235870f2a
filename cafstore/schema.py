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
import unicodedata
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import cafstore
from cafstore.exception import CafstoreError, TaggingError
from cafstore.store import ObjectId, records

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
LOST_FOUND_PREFIX = "lost-found/"  # lost-found/<UTC time> -> {"record": id listing re-indexed files, ...}
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


def lost_found_ref(when: str) -> str:
    """The ref an index rebuild keeps the object files it re-indexed under (maintenance/rebuild.py)."""
    return f"{LOST_FOUND_PREFIX}{when}"


def run_counter(flow: str) -> str:
    """The counter (``Transaction.next_counter``) that allocates ``flow``'s run ids."""
    return f"{RUN_COUNTER_PREFIX}{flow}"


def parse_run_counter(name: str) -> Optional[str]:
    return _rest(name, RUN_COUNTER_PREFIX)


def runs_using(store: Any, oids: Iterable = (), include_missing: bool = False) -> Dict[str, list]:
    """{"Flow/N": [object ids]} for every run whose run ref or task records reach one of ``oids``.

    What every report of a damaged object must answer (fsck, repair, a read
    that hit a corrupt artifact). ``include_missing``: objects referenced but
    not indexed count too (how repair finds runs that lost data).
    """
    from cafstore.store.reach import refs_reaching

    out: Dict[str, set] = {}
    for name, hits in refs_reaching(store, (RUNS_PREFIX, TASKS_PREFIX), oids, include_missing).items():
        run = run_of_ref(name)
        if run is not None:
            out.setdefault(run, set()).update(hits)
    return {run: sorted(hits) for run, hits in sorted(out.items())}


# -- run metadata --------------------------------------------------------------------------------
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"  # a run ref's "status"


RUN_STATUSES = (RUNNING, SUCCEEDED, FAILED)
DAMAGED_PREFIX = "damaged/"  # damaged/<original name> -> a damaged ref set aside by `fsck --repair`


def ref_problem(name: str, value: Any) -> Optional[str]:
    """Why the (decoded) value of the cafstore ref ``name`` does not fit the data model, or None.

    One answer for the client (which skips such a run), fsck (which reports
    it) and repair (which sets it aside). Refs outside cafstore's prefixes
    belong to someone else and are never judged; a reader meeting one of ours
    that fails here must not guess what it meant.
    """
    if name.startswith(RUNS_PREFIX):
        parsed = parse_run_ref(name)
        if parsed is None:
            return "its name is not runs/<Flow>/<10-digit run number>"
        if not isinstance(value, dict):
            return f"its value is a {type(value).__name__}, not run metadata"
        flow, run_id = parsed
        if value.get("flow") != flow or value.get("run_id") != run_id or isinstance(value.get("run_id"), bool):
            return f"it describes run {value.get('flow')}/{value.get('run_id')}, not {flow}/{run_id}"
        if value.get("status") not in RUN_STATUSES:
            return f"its status {value.get('status')!r} is none of {', '.join(RUN_STATUSES)}"
        for field in ("user_tags", "system_tags", "namespace_tags"):
            tags = value.get(field, [])
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                return f"its {field} are not a list of strings"
        if not isinstance(value.get("parameters", {}), dict):
            return "its parameters are not a map of names to objects"
        return None
    if name.startswith(TASKS_PREFIX):
        if parse_task_ref(name) is None:
            return "its name is not tasks/<Flow>/<run>/<step>/<task>"
        return None if isinstance(value, ObjectId) else f"its value is a {type(value).__name__}, not a record id"
    for prefix, parse in ((FLOWS_PREFIX, parse_flow_ref), (PINS_PREFIX, parse_pin_ref)):
        if name.startswith(prefix):
            if parse(name) is None:
                return "its name does not follow the data model (docs/datamodel.md)"
            return None if isinstance(value, dict) else f"its value is a {type(value).__name__}, not a map"
    if name.startswith(CACHE_PREFIX):
        return None if isinstance(value, str) and len(value) == 64 else "its value is not a record id as text"
    return None


def read_ref(name: str, raw: "bytes | memoryview") -> Tuple[Any, Optional[str]]:
    """(value, None) for a ref's stored bytes, or (None or the value, why it is damaged)."""
    try:
        value = records.decode(raw)
    except (CafstoreError, ValueError) as exc:  # not JSON, not UTF-8, a malformed object id
        return None, f"its value cannot be decoded ({exc})"
    return value, ref_problem(name, value)


def run_of_ref(name: str) -> Optional[str]:
    """``Flow/N`` for a run, task or pin ref name (the run a damaged ref affects), else None."""
    parsed = parse_run_ref(name) or parse_task_ref(name) or parse_pin_ref(name)
    return None if parsed is None else f"{parsed[0]}/{parsed[1]}"


# -- tags --------------------------------------------------------------------------------------------
# A run's system tags record how it was made; the runner writes them and they never change. Their
# prefixes are reserved: ``user:`` and ``production:`` tags are namespaces, so a user tag under one of
# them would let anyone put a run into someone else's (or a production) namespace. A new kind of system
# tag adds its prefix here, and user tags can then no longer take it.
NAMESPACE_TAG_PREFIXES = ("user:", "production:")
SYSTEM_TAG_PREFIXES = NAMESPACE_TAG_PREFIXES + ("runtime:", "python_version:", "cafstore_version:")
MAX_TAG_LENGTH = 500  # Metaflow's limit
# Characters that print as nothing or move the text around them (controls, bidirectional overrides,
# zero-width and other format characters, line separators, lone surrogates): two tags that print
# alike must be the same tag, and printing a tag must not garble a terminal.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def system_tag_prefix(tag: str) -> Optional[str]:
    """The reserved prefix ``tag`` starts with (in any letter case), else None."""
    folded = tag.casefold()
    return next((prefix for prefix in SYSTEM_TAG_PREFIXES if folded.startswith(prefix)), None)


def user_tag_problem(tag: Any) -> Optional[str]:
    """Why ``tag`` cannot be a user tag, as a sentence about "it"; None if it can.

    The one rule for every way a user tag enters (``--tag`` on run and resume,
    ``tag add|replace`` on both command lines, ``Run.add_tag(s)`` and
    ``replace_tag(s)``), so no entrance is laxer than another.
    """
    if not isinstance(tag, str):
        return f"a tag is a string, not {type(tag).__name__}"
    if not tag.strip():
        return "a tag cannot be empty or only whitespace"
    if len(tag) > MAX_TAG_LENGTH:
        return f"it is {len(tag)} characters long; tags have at most {MAX_TAG_LENGTH}"
    hidden = next((ch for ch in tag if unicodedata.category(ch) in _HIDDEN_CATEGORIES), None)
    if hidden is not None:
        return (
            f"it contains the control or invisible character U+{ord(hidden):04X} "
            f"({unicodedata.name(hidden, 'a control character')}), which can make a tag print like another "
            "or reorder the text around it; use visible characters only"
        )
    if tag != tag.strip():
        return f"it starts or ends with whitespace, so it would print like {tag.strip()!r} but be another tag"
    prefix = system_tag_prefix(tag)
    if prefix is not None:
        return (
            f"{prefix!r} is reserved for the system tags cafstore sets itself ({', '.join(SYSTEM_TAG_PREFIXES)}); "
            f"{' and '.join(NAMESPACE_TAG_PREFIXES)} tags are namespaces, which a user tag cannot claim. "
            "Pick a tag without that prefix"
        )
    return None


def check_user_tags(tags: Iterable[Any], what: str = "tag") -> List[str]:
    """``tags`` as a list of strings, or TaggingError naming the first bad one and why (``what``: how
    the user gave it, e.g. ``--tag``)."""
    if isinstance(tags, (str, bytes)):
        raise TaggingError(f"Pass {what}s as a list of strings, not the single string {tags!r}.")
    out = []
    for tag in tags:
        problem = user_tag_problem(tag)
        if problem is not None:
            shown = repr(tag) if len(repr(tag)) <= 80 else repr(tag)[:60] + "..."
            raise TaggingError(f"Cannot use {what} {shown}: {problem}.")
        out.append(tag)
    return out


def counts_as(tag: str, system_tags: Iterable[str], user_tags: Iterable[str]) -> bool:
    """Whether a run with these tags carries ``tag`` for a namespace or a tag filter.

    A user tag under a reserved prefix (one stored before the prefixes were
    refused, or written by hand) is shown and can be removed, but never counts
    as the system tag it imitates.
    """
    if tag in system_tags:
        return True
    return tag in user_tags and system_tag_prefix(tag) is None


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
