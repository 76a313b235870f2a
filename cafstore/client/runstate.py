"""A run's status as the user should see it, from its run ref (docs/datamodel.md).

The ref says ``running`` until the scheduler writes ``succeeded`` or
``failed``. A scheduler killed with ``kill -9`` never writes either, so a
``running`` run whose scheduler is gone (cafstore.schema.scheduler_alive:
same host, pid dead, a zombie or reused) is shown as ``crashed``: not
finished, and not coming back. gc's retention asks the same question.
"""

from __future__ import annotations

from typing import Any, Optional

from cafstore.schema import FAILED, RUNNING, SUCCEEDED, counts_as, scheduler_alive

CRASHED = "crashed"
__all__ = ["CRASHED", "FAILED", "RUNNING", "SUCCEEDED", "in_namespace", "status_of", "tags_of", "visible"]


def status_of(meta: dict) -> str:
    """``running``, ``succeeded``, ``failed`` or ``crashed`` for a run ref's value."""
    status = meta.get("status") or RUNNING
    if status != RUNNING:
        return status
    return RUNNING if scheduler_alive(meta) else CRASHED


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
    system, user = tags_of(meta)
    return counts_as(ns, system, user)  # a user tag never stands in for a user: or production: tag
