"""Changing a run's user tags: one read-modify-write of its ref per change.

System tags (``user:anne``, ``runtime:dev``, ``production:<token>``...) are
facts about how a run was made and never change; user tags are annotations
that change at any time. Every change, however many tags it touches, is a
single ``Store.update_ref``: the new tag list is computed from the ref as it
is inside the write transaction, so two processes tagging one run at once
both keep their changes.
"""

from __future__ import annotations

from typing import Any, Iterable, List

from cafstore import schema
from cafstore.client import runstate
from cafstore.exception import NotFound, TaggingError

MAX_TAG_LENGTH = schema.MAX_TAG_LENGTH


def validate(tags: Iterable[Any], what: str = "tag", strict: bool = True) -> List[str]:
    """Tags as a list of strings, or TaggingError naming the bad one (the rules: schema.user_tag_problem).

    ``strict=False`` (tags to remove) checks only that they are strings, so a
    tag stored before today's rules (``user:bob``, a tab) can still be removed.
    """
    if strict:
        return schema.check_user_tags(tags, what)
    if isinstance(tags, (str, bytes)):
        raise TaggingError(f"Pass {what}s as a list of strings, not the single string {tags!r}.")
    out = []
    for tag in tags:
        if not isinstance(tag, str):
            raise TaggingError(f"A {what} is a string, not {type(tag).__name__} {tag!r}.")
        out.append(tag)
    return out


def change_tags(store: Any, flow: str, run_id: int, add: Iterable[str] = (), remove: Iterable[str] = ()) -> dict:
    """Remove then add user tags of ``flow/run_id`` atomically; returns the run ref's new value.

    A tag under a system prefix (``user:``, ``production:``...) cannot be
    added (TaggingError; nothing is changed), unless the run already has it as
    a system tag, which is silently not added again (like Metaflow); removing a system tag raises
    TaggingError too; removing an absent tag is a no-op.
    """
    add, remove = validate(add, strict=False), validate(remove, strict=False)
    pathspec = f"{flow}/{run_id}"
    if not add and not remove:
        raise TaggingError(f"Nothing to change on {pathspec}: give at least one tag to add or to remove.")

    def change(meta: Any) -> dict:
        if not runstate.visible(meta):
            raise NotFound(f"Run {pathspec!r} does not exist (or was deleted), so its tags cannot change.")
        system, user = runstate.tags_of(meta)
        fixed = sorted(t for t in remove if t in system and t not in user)
        if fixed:
            raise TaggingError(
                f"Cannot remove {', '.join(map(repr, fixed))} from {pathspec}: system tags record how a run "
                "was made and never change. Only user tags can be removed "
                f"(this run's: {', '.join(sorted(user)) or 'none'})."
            )
        new = [t for t in add if t not in system]  # a tag the run has as a system tag is no error
        validate(new)
        tags = set(user) - set(remove)
        tags.update(new)
        return {**meta, "user_tags": sorted(tags)}

    return store.update_ref(schema.run_ref(flow, run_id), change)
