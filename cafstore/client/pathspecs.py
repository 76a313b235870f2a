"""Pathspecs: ``Flow/run/step/task/artifact`` as users write them, checked and split.

A pathspec names a client object; the ref it maps to is spelled by
cafstore.schema (the data model), not here. Run and task ids in a
pathspec are plain integers (``HelloFlow/3``); ``0000000003`` is accepted
too, so a ref's padded number can be pasted back.
"""

from __future__ import annotations

from typing import List, Optional

from cafstore.exception import NotFound

LEVELS = ("flow", "run", "step", "task", "artifact")


def number(text: "str | int", what: str, pathspec: str) -> int:
    """A run or task id as an int: ``'5'``, ``5`` and ``'0000000005'`` are the same run."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        raw = str(text).strip()
        if not raw.isdigit():
            raise NotFound(
                f"{what.capitalize()} id {raw!r} in {pathspec!r} is not a number: "
                f"cafstore {what} ids are integers (e.g. HelloFlow/3)."
            )
        value = int(raw)
    if value < 0 or value >= 10**10:
        raise NotFound(f"{what.capitalize()} id {value} in {pathspec!r} is out of range.")
    return value


def split(pathspec: str, level: str) -> List[str]:
    """Split ``pathspec`` into exactly the components ``level`` needs, or raise NotFound explaining the form."""
    want = LEVELS.index(level) + 1
    parts = [p for p in str(pathspec).strip().strip("/").split("/")]
    if len(parts) != want or not all(parts):
        example = "/".join(["HelloFlow", "3", "start", "1", "name"][:want])
        raise NotFound(f"{pathspec!r} is not a {level} pathspec: expected {want} part(s) like {example!r}.")
    return parts


def parse_any(pathspec: str) -> List[str]:
    """Components of a pathspec of any depth (1 to 5 parts)."""
    parts = str(pathspec).strip().strip("/").split("/")
    if not 1 <= len(parts) <= len(LEVELS) or not all(parts):
        raise NotFound(
            f"{pathspec!r} is not a pathspec: expected Flow, Flow/run, Flow/run/step, "
            "Flow/run/step/task or Flow/run/step/task/artifact."
        )
    return parts


def check(pathspec: str, level: Optional[str] = None) -> List[str]:
    """The components of a well-formed pathspec (of ``level``, else of any depth), its run and task ids
    checked as numbers; NotFound explaining the form otherwise. Nothing is looked up, so a command line
    can tell a malformed pathspec (a usage error) from one that names nothing."""
    parts = parse_any(pathspec) if level is None else split(pathspec, level)
    for index, what in ((1, "run"), (3, "task")):
        if len(parts) > index:
            number(parts[index], what, pathspec)
    return parts
