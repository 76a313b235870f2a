"""Metaflow (all flows), Flow and Run: the top of the object hierarchy.

Runs are refs ``runs/<Flow>/<run:010d>`` (cafstore.schema, docs/datamodel.md),
so ``Run('F/5')`` is one LMDB get and ``latest_run`` one reverse range scan
that stops at the first run the namespace shows: its cost does not grow
with the number of runs in the store. A run's steps are made by
cafstore.client.tasks, which registers itself (base.make_child): this module
does not import it.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Optional

from cafstore import schema
from cafstore.client import damaged, inflight, pathspecs, runstate
from cafstore.client.base import (
    UNSET,
    ClientObject,
    first_ref,
    html_view,
    make_child,
    mismatch,
    parsed_ref,
    to_datetime,
)
from cafstore.client.connection import get_store
from cafstore.client.data import FlowCode
from cafstore.client.tags import change_tags
from cafstore.exception import DamagedRef, NotFound


def _resolve_ns(_namespace_check: bool, _current_namespace: Any) -> Any:
    if not _namespace_check:
        return None  # no check: behave as the global namespace
    return _current_namespace


class Metaflow(ClientObject):
    """Every flow in the store; iteration shows flows with a run in the current namespace."""

    _LEVEL = "root"

    def __init__(self, *, store: Any = None, _current_namespace: Any = UNSET) -> None:
        super().__init__([], store or get_store(), _current_namespace)

    def __repr__(self) -> str:
        return "Metaflow()"

    __str__ = __repr__

    @property
    def flows(self) -> list:
        return list(self)

    def _children(self) -> Iterator["Flow"]:
        for key, _raw in self._store.iter_raw_refs(schema.FLOWS_PREFIX):  # the name is all it needs
            name = schema.parse_flow_ref(key)
            if name is None:  # the ref "flows/" itself names no flow
                continue
            flow = Flow._attach(self._store, name, self._ns)
            if flow.is_in_namespace():
                yield flow

    def _child(self, name: str) -> "Flow":
        return Flow(name, store=self._store, _current_namespace=self._ns)

    def __getitem__(self, name: str) -> "Flow":
        return self._child(str(name))


class Flow(ClientObject):
    """A flow: all its runs, newest first, filtered by the current namespace."""

    _LEVEL = "flow"

    def __init__(
        self, pathspec: str, *, store: Any = None, _namespace_check: bool = True, _current_namespace: Any = UNSET
    ) -> None:
        (name,) = pathspecs.split(pathspec, "flow")
        super().__init__([name], store or get_store(), _resolve_ns(_namespace_check, _current_namespace))
        ref = schema.flow_ref(name)
        raw = self._store.get_raw_ref(ref)
        info, problem = schema.read_ref(ref, raw) if raw is not None else (None, None)
        self._info = None if problem else info  # a damaged flows/ ref: the flow is known by its runs alone
        if self._info is None and first_ref(self._store, schema.runs_prefix(name)) is None:
            raise NotFound(
                f"Flow {name!r} does not exist in the store at {self._store.path}: it has never run "
                "here. Flow names are class names, e.g. Flow('HelloFlow')."
            )

    @classmethod
    def _attach(cls, store: Any, name: str, ns: Any, info: Any = None) -> "Flow":
        flow = cls.__new__(cls)
        ClientObject.__init__(flow, [name], store, ns)
        flow._info = info
        return flow

    @property
    def name(self) -> str:
        return self.id

    @property
    def parent(self) -> Metaflow:
        return Metaflow(store=self._store, _current_namespace=self._ns)

    @property
    def created_at(self):
        created = (self._info or {}).get("created")
        if created is None:
            scan = first_ref(self._store, schema.runs_prefix(self.id))
            created = scan[1].get("created") if scan and isinstance(scan[1], dict) else None
        return to_datetime(created)

    def is_in_namespace(self) -> bool:
        """A flow is in a namespace when at least one of its runs is."""
        return self.latest_run is not None

    def _scan(self, ns: Optional[str], tags: Iterable[str] = (), before: Optional[int] = None) -> Iterator["Run"]:
        tags = list(tags)
        wanted = tags if ns is None else [ns, *tags]
        below = None if before is None else schema.run_ref(self.id, before)
        for key, meta in damaged.runs(self._store, schema.runs_prefix(self.id), wanted, below):
            if not runstate.visible(meta) or not runstate.in_namespace(meta, ns):
                continue
            if tags:
                system, user = runstate.tags_of(meta)
                if not all(schema.counts_as(t, system, user) for t in tags):
                    continue
            yield Run._attach(self._store, self.id, parsed_ref(schema.parse_run_ref(key), key)[1], meta, self._ns)

    def runs(self, *tags: str) -> Iterator["Run"]:
        """Runs newest first that carry every tag in ``tags`` and are in the current namespace."""
        return self._scan(self._namespace(), tags)

    def runs_before(self, run_id: int, *tags: str) -> Iterator["Run"]:
        """Like ``runs(*tags)``, only runs with an id below ``run_id``: a cursor to page through a long
        history (the newer runs' refs are skipped undecoded)."""
        return self._scan(self._namespace(), tags, before=run_id)

    def _children(self) -> Iterator["Run"]:
        return self.runs()

    def _child(self, run_id: str) -> "Run":
        return Run(f"{self.id}/{run_id}", store=self._store, _current_namespace=self._ns)

    @property
    def latest_run(self) -> "Optional[Run]":
        """The newest run in the current namespace, finished or not (None if there is none)."""
        for run in self.runs():
            return run
        return None

    @property
    def latest_successful_run(self) -> "Optional[Run]":
        """The newest run in the current namespace that finished successfully."""
        for run in self.runs():
            if run.successful:
                return run
        return None


def load_run(store: Any, flow: str, run_id: int, pathspec: str) -> dict:
    """A visible run's ref value, or NotFound saying why there is none (DamagedRef if it is damaged)."""
    meta = damaged.run_meta(store, flow, run_id)
    if meta is None:
        if store.get_raw_ref(schema.flow_ref(flow)) is None and first_ref(store, schema.runs_prefix(flow)) is None:
            raise NotFound(f"Run {pathspec!r} does not exist: there is no flow {flow!r} in the store at {store.path}.")
        raise NotFound(f"Run {pathspec!r} does not exist (flow {flow!r} has no run {run_id}).")
    if not runstate.visible(meta):
        raise NotFound(
            f"Run {pathspec!r} was deleted (`cafstore undelete {flow}/{run_id}` restores it until the next gc)."
        )
    return meta


class Run(ClientObject):
    """One execution of a flow: its steps, status, tags and final data."""

    _LEVEL = "run"

    def __init__(
        self, pathspec: str, *, store: Any = None, _namespace_check: bool = True, _current_namespace: Any = UNSET
    ) -> None:
        flow, raw_id = pathspecs.split(pathspec, "run")
        run_id = pathspecs.number(raw_id, "run", pathspec)
        ns = _resolve_ns(_namespace_check, _current_namespace)
        store = store or get_store()
        meta = load_run(store, flow, run_id, pathspec)
        self._setup(store, flow, run_id, meta, ns)
        self._check_namespace()

    @classmethod
    def _attach(cls, store: Any, flow: str, run_id: int, meta: dict, ns: Any) -> "Run":
        run = cls.__new__(cls)
        run._setup(store, flow, run_id, meta, ns)
        return run

    def _setup(self, store: Any, flow: str, run_id: int, meta: dict, ns: Any) -> None:
        ClientObject.__init__(self, [flow, str(run_id)], store, ns)
        self._flow, self._run_id, self._meta = flow, run_id, meta
        self._graph: Any = UNSET
        self._steps: Any = None

    def _check_namespace(self) -> None:
        ns = self._namespace()
        if not runstate.in_namespace(self._meta, ns):
            raise mismatch("Run", self.pathspec, {t for t in self.tags if self.carries(t)}, ns)

    # -- properties --------------------------------------------------------
    @property
    def ref_value(self) -> Mapping[str, Any]:
        """The run's ref as read (docs/datamodel.md, "Run metadata"), for views and tools that need
        fields the object model does not expose. Read-only: tags change through ``add_tag`` & co."""
        return self._meta

    @property
    def parent(self) -> Flow:
        return Flow._attach(self._store, self._flow, self._ns)

    @property
    def system_tags(self) -> frozenset:
        return runstate.tags_of(self._meta)[0]

    @property
    def user_tags(self) -> frozenset:
        return runstate.tags_of(self._meta)[1]

    @property
    def created_at(self):
        return to_datetime(self._meta.get("created"))

    @property
    def finished_at(self):
        return to_datetime(self._meta.get("finished"))

    @property
    def status(self) -> str:
        """``running``, ``succeeded``, ``failed`` or ``crashed`` (a dead scheduler left it running)."""
        return runstate.status_of(self._meta)

    @property
    def successful(self) -> bool:
        return self._meta.get("status") == runstate.SUCCEEDED

    @property
    def finished(self) -> bool:
        """True once the run succeeded or failed; a crashed run is not finished."""
        return self._meta.get("status") in (runstate.SUCCEEDED, runstate.FAILED)

    @property
    def crashed(self) -> bool:
        return self.status == runstate.CRASHED

    @property
    def user(self) -> Optional[str]:
        return self._meta.get("user")

    @property
    def trigger(self) -> None:
        """What triggered the run: always None (cafstore has no event triggers yet)."""
        return None

    @property
    def origin_pathspec(self) -> Optional[str]:
        """For a resumed run, the run it was resumed from (like Metaflow: the one resume read, not the
        first of a chain of resumes); None for a run that was not resumed."""
        origin = self._meta.get("resumed_from")
        return None if origin is None else f"{self._flow}/{origin}"

    @property
    def code(self):
        """The flow file's source as it was when this run started (a str with ``.path``, ``.flowspec``)."""
        oid = self._meta.get("code")
        return None if oid is None else FlowCode.load(self._store, oid, self._meta.get("code_path"))

    @property
    def end_task(self):
        """The task of the end step, once it has run (None before)."""
        return make_child("step", self, "end").task  # one reverse scan: None when end has no task

    @property
    def data(self):
        """The end task's artifacts (``run.data.x``); None if the end step has not run."""
        task = self.end_task
        return None if task is None else task.data

    def _repr_html_(self) -> Optional[str]:
        return html_view(self)

    def sibling_run(self, run_id: int) -> "Run":
        """Run ``run_id`` of the same flow, in this run's store and namespace setting, read as is (no
        namespace check, a missing run is an empty one): where lineage leads when a resume reused a task."""
        try:
            meta = damaged.run_meta(self._store, self._flow, run_id) or {}
        except DamagedRef:
            meta = {}  # lineage through a damaged ref: an empty run, like a missing one
        return Run._attach(self._store, self._flow, run_id, meta, self._ns)

    # -- steps -------------------------------------------------------------
    def graph_steps(self) -> Optional[list]:
        """The graph record's steps in run order (None when the run stored no graph)."""
        if self._graph is UNSET:
            oid = self._meta.get("graph")
            self._graph = self._store.get_record(oid).get("steps") if oid else None
        return self._graph

    def step_names(self) -> list:
        """Names of the steps that have at least one task (finished, or running in this process), in run order."""
        if self._steps is not None:
            return self._steps
        graph = self.graph_steps()
        if graph:
            names = [node["name"] for node in graph if self.has_step(node["name"])]
        else:  # no graph stored: the steps that have tasks, start first and end last
            found = {
                parsed_ref(schema.parse_task_ref(key), key)[2]
                for key, _raw in self._store.iter_raw_refs(schema.tasks_prefix(self._flow, self._run_id))
            }
            running = inflight.running(self._store, self._flow, self._run_id)
            if running is not None:
                found.add(running.step)
            names = sorted(found, key=lambda n: (n != "start", n == "end", n))
        if self.finished:
            self._steps = names  # a finished run's steps never change again
        return names

    def steps(self, *tags: str) -> Iterator[Any]:
        """The run's steps, most recent first (like Metaflow); ``tags`` must all be on the run."""
        if not all(self.carries(t) for t in tags):
            return iter(())
        return self._children()

    def _children(self) -> Iterator[Any]:
        for name in reversed(self.step_names()):
            yield make_child("step", self, name)

    def has_step(self, name: str) -> bool:
        """Whether step ``name`` has a task: a finished one, or the one running in this process
        (cafstore.client.inflight)."""
        if first_ref(self._store, schema.tasks_prefix(self._flow, self._run_id, name)) is not None:
            return True
        return inflight.running(self._store, self._flow, self._run_id, name) is not None

    def _child(self, name: str) -> Any:
        if not self.has_step(name):
            raise NotFound(
                f"Run {self.pathspec} has no step {name!r} (steps that ran: "
                f"{', '.join(self.step_names()) or 'none yet'})."
            )
        return make_child("step", self, name)

    # -- tags --------------------------------------------------------------
    # Like Metaflow, the one-tag methods also take a list of tags (an older form code still uses).
    def add_tag(self, tag: "str | Iterable[str]") -> None:
        """Add one user tag (visible to every reader at once); a system tag is not added again."""
        self.replace_tags([], _as_list(tag))

    def add_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags([], tags)

    def remove_tag(self, tag: "str | Iterable[str]") -> None:
        """Remove one user tag; removing a system tag raises TaggingError."""
        self.replace_tags(_as_list(tag), [])

    def remove_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags(tags, [])

    def replace_tag(self, tag_to_remove: "str | Iterable[str]", tag_to_add: "str | Iterable[str]") -> None:
        self.replace_tags(_as_list(tag_to_remove), _as_list(tag_to_add))

    def replace_tags(self, tags_to_remove: Iterable[str], tags_to_add: Iterable[str]) -> None:
        """Remove some user tags, then add others, in one atomic change of the run's ref.

        Changing nothing (both empty) is refused like in Metaflow: it is always a mistake.
        """
        self._meta = change_tags(self._store, self._flow, self._run_id, add=tags_to_add, remove=tags_to_remove)


def _as_list(tag: Any) -> Any:
    """Tags given as a list (Metaflow's older form) as they are; anything else is one tag (validated by
    change_tags, so a bad one is a TaggingError naming it)."""
    return list(tag) if isinstance(tag, (list, tuple, set, frozenset)) else [tag]
