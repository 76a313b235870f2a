"""A run's identity across stores, and the document that carries it on a remote.

Run numbers are local (each store counts 1, 2, 3 ...), so two stores' runs
``HelloFlow/3`` are different runs. A run's identity is therefore the id of
the store that ran it plus its number there: ``(flow, store id, number)``.
A run pulled into another store gets a new local number there (its alias,
allocated like any run's) and remembers its identity in its run ref's
``origin`` field and in an ``origins/`` ref, so pushing it on, or pulling
it again, finds the same run rather than making a copy.

The run document (one version of ``refs/runs/<Flow>/<store>/<run>/``) holds
the run ref, the task refs and the pin, plus where the run's objects are
on the remote (``packs``, ``loose``): everything a pull needs, in one read.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from cafstore import schema
from cafstore.exception import RemoteError
from cafstore.remote.state import is_pack_id, is_store_id
from cafstore.store.objectid import ObjectId
from cafstore.store.settings import read_settings

Identity = tuple  # (flow, store id, run number in that store)


def store_id(store: Any) -> str:
    """This store's id (store.json, stamped when its index is first opened)."""
    _ = store.index  # opening the index stamps and records the id of a store that has none yet
    settings = read_settings(store.path) or {}
    if not settings.get("id"):
        raise RemoteError(f"The store at {store.path} has no id in its store.json; run `cafstore fsck` on it.")
    return str(settings["id"])


def identity_of(own: str, flow: str, run_id: int, meta: dict) -> Identity:
    """Where a local run comes from: its ``origin`` if it was pulled, else this store."""
    origin = meta.get("origin")
    if isinstance(origin, dict) and isinstance(origin.get("store"), str) and isinstance(origin.get("run_id"), int):
        return (flow, origin["store"], origin["run_id"])
    return (flow, own, run_id)


def local_run_of(store: Any, own: str, identity: Identity) -> Optional[int]:
    """The local number of the run ``identity``, if this store has it."""
    flow, sid, number = identity
    if sid == own:
        return number if store.get_raw_ref(schema.run_ref(flow, number)) is not None else None
    alias = store.get_ref(schema.origin_ref(flow, sid, number))
    if isinstance(alias, dict) and isinstance(alias.get("run_id"), int):
        if store.get_raw_ref(schema.run_ref(flow, alias["run_id"])) is not None:
            return int(alias["run_id"])
    return None


def local_tasks(store: Any, flow: str, run_id: int) -> dict:
    """{"step/0000000001": record id} of a local run's task refs."""
    out = {}
    prefix = schema.tasks_prefix(flow, run_id)
    for name, value in store.list_refs(prefix):
        if isinstance(value, ObjectId):
            out[name[len(prefix) :]] = value
    return out


def _link(store: Any, own: str, flow: str, number: Any) -> Optional[list]:
    """A local run number (``resumed_from``) as a global identity [store, number]."""
    if not isinstance(number, int):
        return None
    meta = store.get_ref(schema.run_ref(flow, number))
    return list(identity_of(own, flow, number, meta if isinstance(meta, dict) else {})[1:])


def build_doc(store: Any, own: str, identity: Identity, meta: dict, tasks: dict, pinned: bool) -> dict:
    """The document pushed for a run (``packs``/``loose`` are filled in by the push)."""
    flow, _, number = identity
    local_id = meta["run_id"]
    run = {k: v for k, v in meta.items() if k != "origin"}
    run["run_id"] = number
    return {
        "format": 1,
        "identity": {"flow": flow, "store": identity[1], "run": number},
        "run": run,
        "links": {
            "resumed_from": _link(store, own, flow, meta.get("resumed_from")),
            "origin_run_id": _link(store, own, flow, meta.get("origin_run_id")),
        },
        "tasks": tasks,
        "pinned": pinned,
        "pushed": {"by": schema.current_user(), "from": own, "at": time.time(), "local_run": local_id},
    }


def check_doc(doc: dict, identity: Identity, key: str) -> None:
    """Refuse a document that does not describe the run its key names, or breaks the data model."""
    flow, sid, number = identity
    problem = None
    ident = doc.get("identity")
    run = doc.get("run")
    tasks = doc.get("tasks")
    packs, loose = doc.get("packs", []), doc.get("loose", [])
    if not flow.isidentifier() or not is_store_id(sid):
        problem = "its flow or store id is not a valid name"
    elif not isinstance(packs, list) or not all(is_pack_id(p) for p in packs):
        problem = "its packs are not a list of pack ids"
    elif not isinstance(loose, list) or not all(_loose_entry(e) for e in loose):
        problem = "its loose objects are not a list of [object id, encoding, size]"
    elif ident != {"flow": flow, "store": sid, "run": number}:
        problem = f"it describes {ident!r}"
    elif not isinstance(run, dict):
        problem = "it holds no run metadata"
    elif run.get("status") == schema.RUNNING:
        problem = "its run is still running"
    elif not isinstance(tasks, dict) or not all(isinstance(v, ObjectId) for v in tasks.values()):
        problem = "its tasks are not a map of task names to record ids"
    else:
        problem = schema.ref_problem(schema.run_ref(flow, number), run)
        for name in tasks:
            step, _, task = str(name).partition("/")
            if problem is None and (not step.isidentifier() or not task.isdigit() or len(task) != 10):
                problem = f"its task name {name!r} is not <step>/<10-digit task number>"
    if problem:
        raise RemoteError(f"The run ref {key} on the remote is refused: {problem}. Nothing of it was pulled.")


def _loose_entry(entry: Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], ObjectId)
        and entry[1] in (0, 1, 2)
        and isinstance(entry[2], int)
        and entry[2] >= 0
    )


def local_meta(store: Any, own: str, doc: dict, local_id: int) -> dict:
    """The run ref a pulled run gets here: the remote's, renumbered, with its origin recorded."""
    flow, sid, number = doc["identity"]["flow"], doc["identity"]["store"], doc["identity"]["run"]
    meta = dict(doc["run"])
    meta["run_id"] = local_id
    if sid != own:
        meta["origin"] = {"store": sid, "run_id": number}
    for field in ("resumed_from", "origin_run_id"):
        link = (doc.get("links") or {}).get(field)
        meta[field] = None
        if isinstance(link, list) and len(link) == 2 and isinstance(link[1], int) and isinstance(link[0], str):
            meta[field] = local_run_of(store, own, (flow, link[0], link[1]))
    return meta


def tracking_base(store: Any, remote: str, identity: Identity) -> Optional[dict]:
    """What this run's tags and pin were on ``remote`` when last synced (None: never synced)."""
    value = store.get_ref(schema.remote_tracking_ref(remote, *identity))
    return value if isinstance(value, dict) else None


def sync_local(
    store: Any, remote: str, flow: str, run_id: int, identity: Identity, tags: list, pinned: bool, remote_doc: dict
) -> None:
    """Give the local run ``tags`` and ``pinned`` (the merge), and remember the remote's state as the
    base of the next merge -- in one transaction, so a crash leaves the old state or the new."""
    now = time.time()

    def body(txn: Any) -> None:
        name = schema.run_ref(flow, run_id)
        meta = txn.get_ref(name)
        if isinstance(meta, dict) and sorted(meta.get("user_tags", [])) != sorted(tags):
            txn.set_ref(name, {**meta, "user_tags": sorted(tags)})
        pin = schema.pin_ref(flow, run_id)
        has_pin = txn.get_ref(pin) is not None
        if pinned and not has_pin:
            txn.set_ref(pin, {"pinned_at": now, "by": schema.current_user()})
        elif has_pin and not pinned:
            txn.delete_ref(pin)
        remote_state = {
            "user_tags": sorted(remote_doc["run"].get("user_tags", [])),
            "pinned": bool(remote_doc.get("pinned")),
        }
        txn.set_ref(schema.remote_tracking_ref(remote, *identity), remote_state)

    store.atomically(body)
