"""What every client object shares: pathspec, parent, tags, namespace, container protocol.

A client object is a cheap handle: it keeps the store it reads, its path
components and whatever it has already read (a run ref, a task record, the
values of artifacts), so repeated attribute access costs nothing and the
first costs one LMDB lookup.

Parents make handles on their children and children on their parents, so
the model's classes refer to each other. To keep the imports of the model's
modules one-way (tasks.py imports flows.py, never the reverse), the module
that defines a lower level registers how to make its handles here
(:func:`register_child_factory`), and a parent asks for one by level
(:func:`make_child`). Rendering works the same way: the views
(cafstore/client/views/) register how to show an object as HTML
(:func:`register_html_view`); the model never imports them.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Type, TypeVar

from cafstore import schema
from cafstore.client import namespaces
from cafstore.exception import NamespaceMismatch, NotFound, StoreError

UNSET: Any = namespaces.UNSET
Handle = TypeVar("Handle", bound="ClientObject")
Parsed = TypeVar("Parsed")
_CHILD_FACTORIES: Dict[str, Callable[..., Any]] = {}
_HTML_VIEWS: Dict[str, Callable[[Any], str]] = {}


def to_datetime(stamp: Any) -> Optional[datetime]:
    """A record's unix time as a local naive datetime, like Metaflow's ``created_at``."""
    return None if stamp is None else datetime.fromtimestamp(float(stamp))


def first_ref(store: Any, prefix: str, reverse: bool = False) -> Optional[tuple]:
    """The first (or last) ref under ``prefix``, closing the scan's read snapshot at once.

    Mostly asked whether a ref exists at all: a value that does not decode is
    returned as None rather than stopping the caller (listings report damage).
    """
    with contextlib.closing(store.iter_raw_refs(prefix, reverse=reverse)) as scan:
        for name, raw in scan:
            value, problem = schema.read_ref(name, raw)
            return name, (None if value is None and problem else value)
    return None


def parsed_ref(parsed: Optional[Parsed], name: str) -> Parsed:
    """``parsed``, what a ``schema.parse_*_ref`` made of ref ``name`` that a scan found under its prefix.

    Every ref the runner writes under a prefix parses; one that does not was put there by
    something else, and is reported by name instead of failing later on a None.
    """
    if parsed is None:
        raise StoreError(
            f"The store has a ref {name!r} whose name does not follow cafstore's data model "
            "(docs/datamodel.md); it was not written by cafstore. Delete or rename it."
        )
    return parsed


def mismatch(kind: str, pathspec: str, tags: Any, ns: Optional[str]) -> NamespaceMismatch:
    """The error for an object outside the current namespace: where it is and how to switch."""
    homes = namespaces.namespace_tags(tags) or sorted(tags)
    where = (
        f"namespace {homes[0]!r}"
        if len(homes) == 1
        else "namespaces " + ", ".join(map(repr, homes))
        if homes
        else "no namespace tag"
    )
    switch = f"namespace({homes[0]!r})" if homes else "namespace(None)"
    return NamespaceMismatch(
        f"{kind}({pathspec!r}) is not in the current namespace {ns!r}; it is in {where}. Namespaces keep you "
        f"from using someone else's results by accident: to use it, switch explicitly with {switch}, or "
        f"namespace(None) for every run (on the command line: --namespace)."
    )


def register_child_factory(level: str, factory: Callable[..., Any]) -> None:
    """How to make a handle on an object of ``level`` (e.g. ``"step"``) from its parent and its name."""
    _CHILD_FACTORIES[level] = factory


def make_child(level: str, parent: "ClientObject", *key: Any) -> Any:
    """A handle on ``parent``'s child of ``level`` named by ``key``, made by the registered factory
    without reading the store (the caller knows the child exists, or asks something that tolerates a miss)."""
    return _CHILD_FACTORIES[level](parent, *key)


def register_html_view(level: str, render: Callable[[Any], str]) -> None:
    """Show objects of ``level`` (``"run"``, ``"task"``) in a notebook with ``render(obj) -> html``."""
    _HTML_VIEWS[level] = render


def html_view(obj: "ClientObject") -> Optional[str]:
    """``obj`` as notebook HTML, or None (plain repr) when no view is registered for its level."""
    render = _HTML_VIEWS.get(obj._LEVEL)
    return None if render is None else render(obj)


def new_handle(cls: Type[Handle], components: List[str], like: "ClientObject") -> Handle:
    """A bare ``cls`` object at ``components`` reading ``like``'s store in ``like``'s namespace setting.

    How a parent makes its children (and a child its siblings) without
    re-reading or re-checking what it has already read: the caller fills in
    the rest of the object's state.
    """
    obj = cls.__new__(cls)
    ClientObject.__init__(obj, components, like._store, like._ns)
    return obj


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
        if type(other) is type(self):
            return other.pathspec == self.pathspec
        return NotImplemented  # lets the other side decide (``current.run`` is a handle to a Run)

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
        return ns is None or self.carries(ns)

    def carries(self, tag: str) -> bool:
        """Whether ``tag`` is on this object's run for namespaces and tag filters (schema.counts_as:
        a user tag never stands in for a system tag)."""
        return schema.counts_as(tag, self.system_tags, self.user_tags)

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


class ParentTags:
    """Mixin: steps, tasks and artifacts carry their run's tags, read live from the run's ref."""

    if TYPE_CHECKING:  # what the classes that mix this in (Step, Task, DataArtifact) provide

        @property
        def parent(self) -> ClientObject: ...

    @property
    def system_tags(self) -> frozenset:
        return self.parent.system_tags

    @property
    def user_tags(self) -> frozenset:
        return self.parent.user_tags
