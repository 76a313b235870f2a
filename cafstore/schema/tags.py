"""Which tags a user may set: system tag prefixes are reserved, and hidden characters refused."""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable, List, Optional

from cafstore.exception import TaggingError

# A run's system tags record how it was made; the runner writes them and they never change. Their
# prefixes are reserved: ``user:`` and ``production:`` tags are namespaces, so a user tag under one of
# them would let anyone put a run into someone else's (or a production) namespace. A new kind of system
# tag adds its prefix here, and user tags can then no longer take it.
NAMESPACE_TAG_PREFIXES = ("user:", "production:")
SYSTEM_TAG_PREFIXES = NAMESPACE_TAG_PREFIXES + (
    "runtime:",
    "python_version:",
    "cafstore_version:",
    "project:",  # @project: the project and its branch
    "project_branch:",
)
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
