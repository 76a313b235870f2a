"""Step and Task: the lower half of the object hierarchy (DataArtifact is in artifacts.py).

A task is a ref ``tasks/<Flow>/<run>/<step>/<task>`` (cafstore.schema)
pointing at an immutable task record (docs/datamodel.md). The record's
artifact map is complete, so ``task.data.x`` is one record read (once per
Task object) plus one object read and unpickle (once per name, then cached
on the Task).

This module imports flows.py (a step or task named by a pathspec is found
through its Run); flows.py makes a run's Steps through the factory this
module registers (base.make_child), and a task makes its DataArtifacts
(artifacts.py) the same way, so the imports go one way.
"""

from __future__ import annotations

import contextlib
from types import MappingProxyType
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional

from cafstore import schema
from cafstore.client import damaged, inflight, pathspecs, taskmeta
from cafstore.client.base import (
    UNSET,
    ClientObject,
    ParentTags,
    first_ref,
    html_view,
    make_child,
    new_handle,
    parsed_ref,
    register_child_factory,
    to_datetime,
)
from cafstore.client.connection import get_store
from cafstore.client.damage import raise_with_runs
from cafstore.client.data import FlowCode, MetaflowArtifacts, MetaflowData, TaskException
from cafstore.client.flows import Run
from cafstore.client.tasklogs import TaskLogsAndMetadata
from cafstore.exception import CorruptObject, DamagedRef, NotFound
from cafstore.store import ObjectId


def _run_of(pathspec: str, level: str, store: Any, check: bool, ns: Any) -> "tuple[Run, List[str]]":
    parts = pathspecs.split(pathspec, level)
    store = store or get_store()
    return Run("/".join(parts[:2]), store=store, _namespace_check=check, _current_namespace=ns), parts


def _task_of(run: Run, step: str, task_id: str) -> "Task":
    """The task, looked up directly (one ref read); on a miss, say whether the step or the task is missing."""
    try:
        return Step._attach(run, step)._child(task_id)
    except NotFound:
        run[step]  # raises "no step ..." when the whole step is missing
        raise


class Step(ParentTags, ClientObject):
    """One step of a run: its tasks (one, or one per foreach item)."""

    _LEVEL = "step"
    # Set by _attach (the constructor copies them from the Step its run makes).
    _run: Run
    _name: str
    _flow: str
    _run_id: int

    def __init__(
        self, pathspec: str, *, store: Any = None, _namespace_check: bool = True, _current_namespace: Any = UNSET
    ) -> None:
        run, parts = _run_of(pathspec, "step", store, _namespace_check, _current_namespace)
        step = run[parts[2]]
        self.__dict__.update(step.__dict__)

    @classmethod
    def _attach(cls, run: Run, name: str) -> "Step":
        flow, run_id = run.path_components
        step = new_handle(cls, [flow, run_id, name], run)
        step._run, step._name, step._flow, step._run_id = run, name, flow, int(run_id)
        return step

    @property
    def parent(self) -> Run:
        return self._run

    def _task_refs(self) -> List[tuple]:
        prefix = schema.tasks_prefix(self._flow, self._run_id, self._name)
        return [
            (parsed_ref(schema.parse_task_ref(key), key)[3], oid) for key, oid in damaged.task_refs(self._store, prefix)
        ]

    def _running(self) -> Optional[inflight.RunningTask]:
        """This step's task running in this process, if any (cafstore.client.inflight)."""
        return inflight.running(self._store, self._flow, self._run_id, self._name)

    def _children(self) -> Iterator["Task"]:
        running = self._running()
        listed: List[tuple] = [
            (task_id, oid, None)
            for task_id, oid in self._task_refs()
            if running is None or task_id != running.task_id  # a retry: its new attempt is the one shown
        ]
        if running is not None:
            listed = sorted([*listed, (running.task_id, None, running.record)], key=lambda item: item[0])
        for task_id, oid, record in reversed(listed):
            yield Task._attach(self, task_id, oid, record)

    def tasks(self, *tags: str) -> Iterator["Task"]:
        """The step's tasks, most recent first; ``tags`` must all be on the run."""
        if not all(self.carries(t) for t in tags):
            return iter(())
        return self._children()

    def _child(self, task_id: str) -> "Task":
        number = pathspecs.number(task_id, "task", f"{self.pathspec}/{task_id}")
        running = self._running()
        if running is not None and running.task_id == number:
            return Task._attach(self, number, None, running.record)
        oid = damaged.task_record_id(self._store, schema.task_ref(self._flow, self._run_id, self._name, number))
        if oid is None:
            raise NotFound(
                f"Step {self.pathspec} has no finished task {number} "
                f"(its tasks: {', '.join(str(t) for t, _ in self._task_refs()) or 'none yet'})."
            )
        return Task._attach(self, number, oid)

    @property
    def task(self) -> "Optional[Task]":
        """The step's task; for a foreach step, one of them (the most recent)."""
        return self._edge_task(reverse=True)

    def _edge_task(self, reverse: bool) -> "Optional[Task]":
        """The step's first (or, ``reverse``, last) task by id: one short scan."""
        if self._running() is not None:  # the running task may be either edge: list them all (one process, rare)
            tasks = list(self._children())
            return tasks[0] if reverse else tasks[-1]
        prefix = schema.tasks_prefix(self._flow, self._run_id, self._name)
        with contextlib.closing(damaged.task_refs(self._store, prefix, reverse=reverse)) as scan:
            found = next(scan, None)
        if found is None:
            return None
        return Task._attach(self, parsed_ref(schema.parse_task_ref(found[0]), found[0])[3], found[1])

    @property
    def created_at(self):
        task = self._edge_task(reverse=False)
        return None if task is None else task.created_at

    @property
    def finished_at(self):
        """When the step's last task finished; None while more of its tasks may still come."""
        if not self._is_complete():
            return None
        stamps = [t._record.get("finished") for t in self]
        stamps = [s for s in stamps if s is not None]
        return to_datetime(max(stamps)) if stamps else None

    def _is_complete(self) -> bool:
        run = self._run
        if run.finished or run.crashed or self._name == "end":
            return True
        nodes = {node["name"]: node for node in run.graph_steps() or ()}
        # A switch may loop back to its own step: a task of the step itself says nothing.
        following = [s for s in nodes.get(self._name, {}).get("next") or () if s != self._name]
        return any(first_ref(self._store, schema.tasks_prefix(self._flow, self._run_id, s)) for s in following)

    @property
    def environment_info(self) -> Optional[dict]:
        task = self.task
        return None if task is None else task.environment_info

    # -- graph neighbours and origin --------------------------------------
    def _graph_nodes(self) -> Dict[str, dict]:
        return {node["name"]: node for node in self._run.graph_steps() or ()}

    def _steps_named(self, names: Iterable[str]) -> Iterator["Step"]:
        for name in names:
            if first_ref(self._store, schema.tasks_prefix(self._flow, self._run_id, name)) is not None:
                yield Step._attach(self._run, name)  # a step that has not run yet has no Step

    @property
    def parent_steps(self) -> Iterator["Step"]:
        """The steps that lead to this one in the flow's graph (none for start)."""
        nodes = self._graph_nodes()
        return self._steps_named(n for n, node in nodes.items() if self._name in (node.get("next") or ()))

    @property
    def child_steps(self) -> Iterator["Step"]:
        """The steps this one leads to in the flow's graph (none for end)."""
        return self._steps_named((self._graph_nodes().get(self._name) or {}).get("next") or ())

    @property
    def origin_pathspec(self) -> Optional[str]:
        """For a step of a resumed run: the same step of the run it was resumed from, else None."""
        run_origin = self._run.origin_pathspec
        return None if run_origin is None else f"{run_origin}/{self._name}"


class Task(TaskLogsAndMetadata, ParentTags, ClientObject):
    """One execution of a step: its artifacts, logs, status and lineage."""

    _LEVEL = "task"
    # Set by _attach (the constructor copies them from the Task its step makes).
    _step: Step
    _task_id: int
    _oid: Optional[ObjectId]  # the task record of the attempt shown (None: running, not stored yet)
    _record_cache: Optional[dict]  # that record, once read
    _values: Dict[str, Any]  # artifact values already unpickled, by name
    _attempt_selected: bool  # Task(..., attempt=N): metadata shows that attempt only
    _data_view: Optional[MetaflowData]

    def __init__(
        self,
        pathspec: str,
        *,
        attempt: Optional[int] = None,
        store: Any = None,
        _namespace_check: bool = True,
        _current_namespace: Any = UNSET,
    ) -> None:
        run, parts = _run_of(pathspec, "task", store, _namespace_check, _current_namespace)
        task = _task_of(run, parts[2], parts[3])
        self.__dict__.update(task.__dict__)
        if attempt is not None:
            self._select_attempt(int(attempt))

    @classmethod
    def _attach(cls, step: Step, task_id: int, oid: Any, record: Optional[dict] = None) -> "Task":
        task = new_handle(cls, [*step.path_components, str(task_id)], step)
        task._step, task._task_id, task._oid, task._record_cache = step, task_id, oid, record
        task._attempt_selected = False
        task._values = {}
        task._data_view = None
        return task

    def _select_attempt(self, attempt: int) -> None:
        oid, record = self._oid, self._record
        while record.get("attempt", 0) != attempt:
            previous = record.get("previous_attempt")
            if previous is None:
                raise NotFound(
                    f"Task {self.pathspec} has no attempt {attempt} (its last attempt is "
                    f"{self._record.get('attempt', 0)})."
                )
            oid, record = previous, self._store.get_record(previous)
        self._oid, self._record_cache, self._values = oid, record, {}
        self._attempt_selected = True

    @property
    def _record(self) -> dict:
        if self._record_cache is None:
            assert self._oid is not None  # a running task's provisional record is given, never read
            self._record_cache = self._store.get_record(self._oid)
        return self._record_cache

    @property
    def record_id(self) -> Optional[ObjectId]:
        """The id of that record (None for a task running in this process, whose record is not stored):
        records never change, so a view may cache what it derives from one under this id."""
        return self._oid

    @property
    def record(self) -> Mapping[str, Any]:
        """The task record of the attempt shown (docs/datamodel.md), for views and tools that need fields
        the object model does not expose (``run_id``: where it was computed; ``num_splits``; ``env``)."""
        return MappingProxyType(self._record)

    @property
    def _run(self) -> Run:
        return self._step._run

    # -- identity, tags, status --------------------------------------------
    @property
    def parent(self) -> Step:
        return self._step

    @property
    def created_at(self):
        return to_datetime(self._record.get("started"))

    @property
    def finished_at(self):
        return to_datetime(self._record.get("finished"))

    @property
    def finished(self) -> bool:
        """True once the attempt shown has ended (successfully or not); False only for the task
        running in this process, opened from inside its own step (cafstore.client.inflight)."""
        return self._record.get("finished") is not None

    @property
    def successful(self) -> bool:
        return self._record.get("status") == "ok"

    @property
    def attempt(self) -> int:
        return int(self._record.get("attempt", 0))

    @property
    def index(self) -> Optional[int]:
        """The task's position in its innermost enclosing foreach, or None outside a foreach."""
        frames = self._record.get("foreach_stack") or []
        return frames[-1].get("index") if frames else None

    @property
    def exception(self) -> Optional[TaskException]:
        """What the step raised (type, message, traceback), or None if it did not fail."""
        info = self._record.get("exception")
        return TaskException.from_record(info) if info else None

    @property
    def environment_info(self) -> dict:
        return dict(self._record.get("env") or {})

    @property
    def code(self) -> Optional[FlowCode]:
        oid = self._record.get("code")
        return None if oid is None else FlowCode.load(self._store, oid, self._run.ref_value.get("code_path"))

    @property
    def origin_pathspec(self) -> Optional[str]:
        """For a task reused from an earlier run, that run's task (None for a task this run ran).

        In a resumed run it is the task of the run resumed from (like Metaflow's clones); for a task
        ``run --cache`` reused, the task that computed the record.
        """
        origin = taskmeta.origin_of(
            self._store, self._step._flow, self._run.ref_value, self._step._name, self._oid, self._record
        )
        return None if origin is None else f"{self._step._flow}/{origin[0]}/{self._step._name}/{origin[1]}"

    # -- lineage -----------------------------------------------------------
    def _task_for_record(self, oid: Any) -> "Task":
        """The task of this run whose record is ``oid`` (or, if not reused here, where it ran)."""
        record = self._store.get_record(oid)
        run, step, number = self._run, record.get("step"), record.get("task_id")
        here = self._step._run_id
        try:
            stored = damaged.task_record_id(self._store, schema.task_ref(self._step._flow, here, step, number))
        except DamagedRef:
            stored = None  # lineage through a damaged task ref: look where the record ran
        if stored != oid and record.get("run_id") != here:
            run = run.sibling_run(record["run_id"])
        return Task._attach(Step._attach(run, step), number, oid, record)

    @property
    def parent_tasks(self) -> List["Task"]:
        """The tasks whose output this task started from (its record's parents)."""
        return [self._task_for_record(oid) for oid in self._record.get("parents") or ()]

    @property
    def parent_task_pathspecs(self) -> List[str]:
        return [t.pathspec for t in self.parent_tasks]

    @property
    def child_tasks(self) -> List["Task"]:
        """The tasks of the next step(s) in this run that started from this task."""
        nodes = {node["name"]: node for node in self._run.graph_steps() or ()}
        following = (nodes.get(self._step._name) or {}).get("next")
        if following is None:
            following = [s for s in self._run.step_names() if s != self._step._name]
        out = []
        for name in following:
            for task in Step._attach(self._run, name):
                if self._oid in (task._record.get("parents") or ()):
                    out.append(task)
        return sorted(out, key=lambda t: (t._step._name, t._task_id))

    @property
    def child_task_pathspecs(self) -> List[str]:
        return [t.pathspec for t in self.child_tasks]

    # -- artifacts ---------------------------------------------------------
    def _artifact_ids(self) -> Dict[str, Any]:
        return self._record.get("artifacts") or {}

    @property
    def artifact_ids(self) -> Mapping[str, Any]:
        """Artifact name -> object id, as the task record holds them (read-only)."""
        return MappingProxyType(self._artifact_ids())

    def artifact_value(self, name: str) -> Any:
        """The unpickled value of artifact ``name``, loaded once per Task object (what ``data`` shows)."""
        try:
            return self._values[name]
        except KeyError:
            pass
        oid = self._artifact_ids().get(name)
        if oid is None:
            raise NotFound(
                f"Task {self.pathspec} has no artifact {name!r} "
                f"(it has: {', '.join(sorted(self._artifact_ids())) or 'none'})."
            )
        try:
            value = self._values[name] = self._store.get_artifact(oid, name=name)
        except CorruptObject as exc:
            raise_with_runs(self._store, exc)
        return value

    @property
    def data(self) -> MetaflowData:
        """Artifact values by attribute: ``task.data.x`` (unpickled on first access, then cached)."""
        if self._data_view is None:
            self._data_view = MetaflowData(self)
        return self._data_view

    @property
    def artifacts(self) -> MetaflowArtifacts:
        """DataArtifact objects by attribute: ``task.artifacts.x.sha``."""
        return MetaflowArtifacts(self)

    def _children(self) -> Iterator[Any]:
        for name in sorted(self._artifact_ids()):
            yield make_child("artifact", self, name)

    def _child(self, name: str) -> Any:
        if name not in self._artifact_ids():
            raise NotFound(
                f"Task {self.pathspec} has no artifact {name!r} "
                f"(it has: {', '.join(sorted(self._artifact_ids())) or 'none'})."
            )
        return make_child("artifact", self, name)

    def __len__(self) -> int:
        return len(self._artifact_ids())

    def _repr_html_(self) -> Optional[str]:
        return html_view(self)


register_child_factory("step", Step._attach)
