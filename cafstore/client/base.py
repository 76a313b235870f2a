"""What every client object shares: pathspec, parent, tags, namespace, container protocol.

A client object is a cheap handle: it keeps the store it reads, its path
components and whatever it has already read (a run ref, a task record, the
values of artifacts), so repeated attribute access costs nothing and the
first costs one LMDB lookup.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Iterator, List, Optional

from cafstore.client import namespaces
from cafstore.exception import NamespaceMismatch, NotFound

UNSET: Any = namespaces._UNSET


def to_datetime(stamp: Any) -> Optional[datetime]:
    """A record's unix time as a local naive datetime, like Metaflow's ``created_at``."""
    return None if stamp is None else datetime.fromtimestamp(float(stamp))


def first_ref(store: Any, prefix: str, reverse: bool = False) -> Optional[tuple]:
    """The first (or last) ref under ``prefix``, closing the scan's read snapshot at once."""
    with contextlib.closing(store.iter_refs(prefix, reverse=reverse)) as scan:
        for item in scan:
            return item
    return None


def mismatch(kind: str, pathspec: str, tags: Any, ns: Optional[str]) -> NamespaceMismatch:
    """The error for an object outside the current namespace: where it is and how to switch."""
    homes = namespaces.namespace_tags(tags) or sorted(tags)
    where = (f"namespace {homes[0]!r}" if len(homes) == 1 else
             "namespaces " + ", ".join(map(repr, homes)) if homes else "no namespace tag")
    switch = f"namespace({homes[0]!r})" if homes else "namespace(None)"
    return NamespaceMismatch(
        f"{kind}({pathspec!r}) is not in the current namespace {ns!r}; it is in {where}. Namespaces keep you "
        f"from using someone else's results by accident: to use it, switch explicitly with {switch}, or "
        f"namespace(None) for every run (on the command line: --namespace)."
    )


class ClientObject:
    """Base of Metaflow, Flow, Run, Step, Task and DataArtifact."""

    _LEVEL = ""

    def __init__(self, components: List[str], store: Any, ns: Any) -> None:
        self._components = components
        self._store = store
        self._ns = ns  # UNSET: follow namespace() at call time

    # -- identity ----------------------------------------------------------
    @property
    def id(self) -> str:
        return self._components[-1]

    @property
    def pathspec(self) -> str:
        return "/".join(self._components)

    @property
    def path_components(self) -> List[str]:
        return list(self._components)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pathspec!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.pathspec == self.pathspec  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.pathspec))

    def __reduce__(self) -> tuple:
        from cafstore.client.connection import reopen

        return (reopen, (type(self).__name__, self.pathspec, str(self._store.path)))

    # -- namespace ---------------------------------------------------------
    def _namespace(self) -> Optional[str]:
        return namespaces.get_namespace() if self._ns is UNSET else self._ns

    def is_in_namespace(self) -> bool:
        """Whether the current namespace shows this object (always, in the global namespace)."""
        ns = namespaces.get_namespace() if self._ns is UNSET or self._ns is None else self._ns
        return ns is None or ns in self.tags

    # -- tags --------------------------------------------------------------
    @property
    def tags(self) -> frozenset:
        """System and user tags together."""
        return self.system_tags | self.user_tags

    @property
    def system_tags(self) -> frozenset:
        return frozenset()

    @property
    def user_tags(self) -> frozenset:
        return frozenset()

    # -- children ----------------------------------------------------------
    def _children(self) -> Iterator["ClientObject"]:
        raise NotImplementedError

    def _child(self, name: str) -> "ClientObject":
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        return self._children()

    def __getitem__(self, name: str) -> Any:
        return self._child(str(name))

    def __contains__(self, name: object) -> bool:
        try:
            self._child(str(name))
        except (NotFound, NamespaceMismatch):
            return False
        return True

    def __len__(self) -> int:
        return sum(1 for _ in self._children())

    def __bool__(self) -> bool:
        return True  # an object exists once constructed, even with no children

    def _ipython_key_completions_(self) -> List[str]:
        return [child.id for child in self._children()]
