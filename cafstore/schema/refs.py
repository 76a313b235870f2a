"""Ref names, run statuses and the checks every reader applies to a ref it reads.

Ref names are keys of one sorted table, so a prefix is a range scan. Run and
task numbers are zero-padded to ten digits so that key order is numeric
order (``latest_run`` is one reverse scan). Every ``*_ref`` builder has a
``parse_*_ref`` inverse that returns None for a name of another kind.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from cafstore.exception import CafstoreError
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
REMOTES_PREFIX = "remotes/"  # remotes/<name> -> {"url", "endpoint_url", "added"} (docs/remotes.md)
REMOTE_TRACKING_PREFIX = "remote-tracking/"  # .../<name>/<Flow>/<store id>/<run:010d> -> last synced tags, pin
ORIGINS_PREFIX = "origins/"  # origins/<Flow>/<store id>/<run:010d> -> {"run_id": local alias of a pulled run}
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


def remote_ref(name: str) -> str:
    """A remote's configuration (``cafstore remote add NAME URL``)."""
    return f"{REMOTES_PREFIX}{name}"


def remote_tracking_ref(remote: str, flow: str, store_id: str, run_id: int) -> str:
    """What a run's user tags and pin were when last synced with ``remote``: the base of the
    three-way merge that lets tag changes made on both sides meet without losing one."""
    return f"{REMOTE_TRACKING_PREFIX}{remote}/{flow}/{store_id}/{run_id:010d}"


def origin_ref(flow: str, store_id: str, run_id: int) -> str:
    """Which local run number a run pulled from store ``store_id`` (its run ``run_id`` there) has here."""
    return f"{ORIGINS_PREFIX}{flow}/{store_id}/{run_id:010d}"


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
