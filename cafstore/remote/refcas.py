"""Run refs on a remote, updated by compare-and-swap; user tags and pins merged three ways.

A remote run ref is a folder of numbered versions
(``refs/runs/<Flow>/<store>/<run>/<version:010d>``). Reading takes the
highest; writing version N+1 is a put-if-absent (S3 ``If-None-Match: *``,
a ``link`` on a directory), so of two writers that both read N exactly one
creates N+1 and the other re-reads and merges again: no update is lost,
and nothing needs ``If-Match`` or a lock. Superseded versions are removed
by the writer that superseded them (a reader that meets a vanished
version re-lists). Because every version is a new key, each is immutable
and cached locally once read.

Tag changes made on both sides meet in a three-way merge against the state
both sides last agreed on (the ``remote-tracking/`` ref): what either side
added stays, what one side removed and the other kept unchanged goes.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Optional

from cafstore.exception import RemoteError
from cafstore.remote.state import RemoteCache, RunRef, version_key
from cafstore.remote.transport import RemoteMissing, Transport
from cafstore.store import records

ATTEMPTS = 60


def merge_sets(base: Optional[set], ours: set, theirs: set) -> set:
    """Three-way merge of two sets with their common ancestor (None: unknown, keep everything)."""
    if base is None:
        return ours | theirs
    return (ours & theirs) | (ours - base) | (theirs - base)


def merge_state(base: Optional[dict], our_tags: list, our_pin: bool, their_tags: list, their_pin: bool) -> tuple:
    """(user tags, pinned) after a three-way merge against ``base`` (the tracking ref; None: never synced)."""
    base_tags = None if base is None else set(base.get("user_tags", []))
    base_pin = None if base is None else ({True} if base.get("pinned") else set())
    tags = merge_sets(base_tags, set(our_tags), set(their_tags))
    pins = merge_sets(base_pin, {True} if our_pin else set(), {True} if their_pin else set())
    return sorted(tags), bool(pins)


def relist(transport: Transport, base: str, identity: tuple) -> Optional[RunRef]:
    found = RunRef(identity)
    for item in transport.list(base):
        tail = item.key[len(base) :]
        if tail.isdigit():
            found.versions[int(tail)] = item
    return found if found.versions else None


def update(
    transport: Transport,
    cache: RemoteCache,
    base: str,
    identity: tuple,
    current: Optional[RunRef],
    change: Callable[[Optional[dict]], Optional[dict]],
) -> Optional[dict]:
    """Apply ``change(doc or None) -> new doc or None (nothing to write)`` to the run ref at ``base``
    by compare-and-swap, re-reading and re-applying after each lost race; the doc now on the remote."""
    for _ in range(ATTEMPTS):
        try:
            doc = None if current is None else cache.doc(current.key)
        except RemoteMissing:  # superseded (and pruned) since it was listed
            current = relist(transport, base, identity)
            continue
        new = change(doc)
        if new is None:
            return doc
        version = 0 if current is None else current.latest
        if transport.put_if_absent(version_key(base, version + 1), records.encode(new)):
            for old in [] if current is None else [v for v in current.versions if v < version]:
                transport.delete(version_key(base, old))
            return new
        time.sleep(random.uniform(0.005, 0.05))  # another writer won this version: re-read, re-merge
        current = relist(transport, base, identity)
    raise RemoteError(
        f"The run ref {base} on the remote {transport.url} kept changing under {ATTEMPTS} attempts to update it; "
        "retry the command."
    )


def merged(theirs: Optional[dict], ours: dict, base: Optional[dict]) -> dict:
    """The run document after merging ``ours`` (the local state, packs and loose objects included)
    into ``theirs`` (the remote's), with ``base`` the last state both agreed on (None: unknown)."""
    if theirs is None:
        return ours
    if theirs.get("tasks") != ours.get("tasks"):
        key = "/".join(str(v) for v in ours["identity"].values())
        raise RemoteError(
            f"The remote holds run {key} with other tasks than the local copy; one of the two was changed "
            "behind cafstore's back. Nothing was pushed for it."
        )
    out = dict(theirs)
    tags, pinned = merge_state(
        base,
        ours["run"].get("user_tags", []),
        bool(ours.get("pinned")),
        theirs["run"].get("user_tags", []),
        bool(theirs.get("pinned")),
    )
    out["run"] = {**theirs["run"], "user_tags": tags}
    out["pinned"] = pinned
    out["packs"] = sorted(set(theirs.get("packs", [])) | set(ours.get("packs", [])))
    loose = {str(entry[0]): entry for entry in list(theirs.get("loose", [])) + list(ours.get("loose", []))}
    out["loose"] = [loose[k] for k in sorted(loose)]
    return out


def same(a: Optional[dict], b: Optional[dict]) -> bool:
    """Equal as stored (canonical bytes; the push time is not compared)."""
    if a is None or b is None:
        return a is b

    def strip(doc: dict) -> Any:
        return records.encode({k: v for k, v in doc.items() if k != "pushed"})

    return strip(a) == strip(b)
