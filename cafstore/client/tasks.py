"""Step, Task and DataArtifact: the lower half of the object hierarchy.

A task is a ref ``tasks/<Flow>/<run>/<step>/<task>`` pointing at an
immutable task record (docs/datamodel.md). The record's artifact map is
complete, so ``task.data.x`` is one record read (once per Task object) plus
one object read and unpickle (once per name, then cached on the Task).
"""

from __future__ import annotations

import collections
from typing import Any, Dict, Iterator, List, Optional

from cafstore.client import logtext, pathspecs
from cafstore.client.base import UNSET, ClientObject, first_ref, to_datetime
from cafstore.client.connection import get_store
from cafstore.client.data import FlowCode, MetaflowArtifacts, MetaflowData, TaskException
from cafstore.client.flows import Run
from cafstore.exception import NotFound

Metadata = collections.namedtuple("Metadata", ["name", "value", "created_at", "type", "task"])


def _run_of(pathspec: str, level: str, store: Any, check: bool, ns: Any) -> "tuple[Run, List[str]]":
    parts = pathspecs.split(pathspec, level)
    store = store or get_store()
    return Run("/".join(parts[:2]), store=store, _namespace_check=check, _current_namespace=ns), parts


def _task_of(run: Run, step: str, task_id: str) -> "Task":
    """The task, looked up directly (one ref read); on a miss, say whether the step or the task is missing."""
    try:
        return Step._attach(run, step)._child(task_id)
    except NotFound:
        run._child(step)  # raises "no step ..." when the whole step is missing
        raise


class _RunTags:
    """Steps, tasks and artifacts carry their run's tags, read live from the run's ref."""

    @property
    def system_tags(self) -> frozenset:
        return self.parent.system_tags

    @property
    def user_tags(self) -> frozenset:
        return self.parent.user_tags


class Step(_RunTags, ClientObject):
    """One step of a run: its tasks (one, or one per foreach item)."""

    _LEVEL = "step"

    def __init__(self, pathspec: str, *, store: Any = None, _namespace_check: bool = True,
                 _current_namespace: Any = UNSET) -> None:
        run, parts = _run_of(pathspec, "step", store, _namespace_check, _current_namespace)
        step = run._child(parts[2])
        self.__dict__.update(step.__dict__)

    @classmethod
    def _attach(cls, run: Run, name: str) -> "Step":
        step = cls.__new__(cls)
        ClientObject.__init__(step, [run._flow, str(run._run_id), name], run._store, run._ns)
        step._run, step._name = run, name
        return step

    @property
    def parent(self) -> Run:
        return self._run

    def _task_refs(self) -> List[tuple]:
        prefix = pathspecs.tasks_prefix(self._run._flow, self._run._run_id, self._name)
        return [(int(key[len(prefix):]), oid) for key, oid in self._store.iter_refs(prefix)]

    def _children(self) -> Iterator["Task"]:
        for task_id, oid in reversed(self._task_refs()):
            yield Task._attach(self, task_id, oid)

    def tasks(self, *tags: str) -> Iterator["Task"]:
        """The step's tasks, most recent first; ``tags`` must all be on the run."""
        if not all(t in self.tags for t in tags):
            return iter(())
        return self._children()

    def _child(self, task_id: str) -> "Task":
        number = pathspecs.number(task_id, "task", f"{self.pathspec}/{task_id}")
        key = pathspecs.task_ref(self._run._flow, self._run._run_id, self._name, number)
        oid = self._store.get_ref(key)
        if oid is None:
            raise NotFound(f"Step {self.pathspec} has no finished task {number} "
                           f"(its tasks: {', '.join(str(t) for t, _ in self._task_refs()) or 'none yet'}).")
        return Task._attach(self, number, oid)

    @property
    def task(self) -> "Optional[Task]":
        """The step's task; for a foreach step, one of them (the most recent)."""
        found = first_ref(self._store, pathspecs.tasks_prefix(self._run._flow, self._run._run_id, self._name),
                          reverse=True)
        if found is None:
            return None
        return Task._attach(self, int(found[0].rsplit("/", 1)[1]), found[1])

    def _first_task(self) -> "Optional[Task]":
        found = first_ref(self._store, pathspecs.tasks_prefix(self._run._flow, self._run._run_id, self._name))
        return None if found is None else Task._attach(self, int(found[0].rsplit("/", 1)[1]), found[1])

    @property
    def created_at(self):
        task = self._first_task()
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
        nodes = {node["name"]: node for node in run._graph_steps() or ()}
        following = nodes.get(self._name, {}).get("next") or ()
        return any(first_ref(self._store, pathspecs.tasks_prefix(run._flow, run._run_id, s)) for s in following)

    @property
    def environment_info(self) -> Optional[dict]:
        task = self.task
        return None if task is None else task.environment_info


class Task(_RunTags, ClientObject):
    """One execution of a step: its artifacts, logs, status and lineage."""

    _LEVEL = "task"

    def __init__(self, pathspec: str, *, attempt: Optional[int] = None, store: Any = None,
                 _namespace_check: bool = True, _current_namespace: Any = UNSET) -> None:
        run, parts = _run_of(pathspec, "task", store, _namespace_check, _current_namespace)
        task = _task_of(run, parts[2], parts[3])
        self.__dict__.update(task.__dict__)
        if attempt is not None:
            self._select_attempt(int(attempt))

    @classmethod
    def _attach(cls, step: Step, task_id: int, oid: Any, record: Optional[dict] = None) -> "Task":
        task = cls.__new__(cls)
        ClientObject.__init__(task, [*step._components, str(task_id)], step._store, step._ns)
        task._step, task._task_id, task._oid, task._record_cache = step, task_id, oid, record
        task._values: Dict[str, Any] = {}
        task._data_view = None
        return task

    def _select_attempt(self, attempt: int) -> None:
        oid, record = self._oid, self._record
        while record.get("attempt", 0) != attempt:
            oid = record.get("previous_attempt")
            if oid is None:
                raise NotFound(f"Task {self.pathspec} has no attempt {attempt} (its last attempt is "
                               f"{self._record.get('attempt', 0)}).")
            record = self._store.get_record(oid)
        self._oid, self._record_cache, self._values = oid, record, {}

    @property
    def _record(self) -> dict:
        if self._record_cache is None:
            self._record_cache = self._store.get_record(self._oid)
        return self._record_cache

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
        """Always True: a task is recorded only once it has finished (successfully or not)."""
        return True

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
        return None if oid is None else FlowCode.load(self._store, oid, self._run._meta.get("code_path"))

    @property
    def origin_pathspec(self) -> Optional[str]:
        """For a task a resume reused from an earlier run: where it was computed."""
        origin = self._record.get("run_id")
        if origin is None or origin == self._run._run_id:
            return None
        return f"{self._run._flow}/{origin}/{self._step._name}/{self._record.get('task_id', self._task_id)}"

    # -- logs --------------------------------------------------------------
    def _log(self, stream: str) -> bytes:
        oid = self._record.get(stream)
        return b"" if oid is None else self._store.get_bytes(oid)

    @property
    def stdout(self) -> str:
        return logtext.text(self._log("stdout"))

    @property
    def stderr(self) -> str:
        return logtext.text(self._log("stderr"))

    def loglines(self, stream: str = "stdout") -> Iterator[tuple]:
        """(datetime, line) for each line the task printed to ``stream``."""
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream is 'stdout' or 'stderr'")
        return logtext.lines(self._log(stream))

    # -- metadata ----------------------------------------------------------
    @property
    def metadata(self) -> List[Metadata]:
        """Facts about the task as (name, value, created_at, type, task) tuples."""
        rec = self._record
        when = rec.get("finished")
        items: Dict[str, Any] = {"attempt": rec.get("attempt", 0), "status": rec.get("status"),
                                 "started": rec.get("started"), "finished": when}
        items.update(rec.get("env") or {})
        if rec.get("foreach_stack"):
            items["foreach-stack"] = [{k: v for k, v in f.items() if k != "values"} for f in rec["foreach_stack"]]
        if self.origin_pathspec:
            items["origin-run-id"] = rec.get("run_id")
        for key in ("num_splits", "cache_key"):
            if rec.get(key) is not None:
                items[key.replace("_", "-")] = rec[key]
        return [Metadata(k, v, when, "task", self.pathspec) for k, v in items.items()]

    @property
    def metadata_dict(self) -> dict:
        return {m.name: m.value for m in self.metadata}

    # -- lineage -----------------------------------------------------------
    def _task_for_record(self, oid: Any) -> "Task":
        """The task of this run whose record is ``oid`` (or, if not reused here, where it ran)."""
        record = self._store.get_record(oid)
        run, step, number = self._run, record.get("step"), record.get("task_id")
        key = pathspecs.task_ref(run._flow, run._run_id, step, number)
        if self._store.get_ref(key) != oid and record.get("run_id") != run._run_id:
            run = Run._attach(self._store, run._flow, record["run_id"],
                              self._store.get_ref(pathspecs.run_ref(run._flow, record["run_id"])) or {}, run._ns)
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
        nodes = {node["name"]: node for node in self._run._graph_steps() or ()}
        following = (nodes.get(self._step._name) or {}).get("next")
        if following is None:
            following = [s for s in self._run._step_names() if s != self._step._name]
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

    def _value(self, name: str) -> Any:
        """The unpickled value of artifact ``name``, loaded once per Task object."""
        try:
            return self._values[name]
        except KeyError:
            pass
        oid = self._artifact_ids().get(name)
        if oid is None:
            raise NotFound(f"Task {self.pathspec} has no artifact {name!r} "
                           f"(it has: {', '.join(sorted(self._artifact_ids())) or 'none'}).")
        value = self._values[name] = self._store.get_artifact(oid, name=name)
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

    def _children(self) -> Iterator["DataArtifact"]:
        for name in sorted(self._artifact_ids()):
            yield DataArtifact._attach(self, name)

    def _child(self, name: str) -> "DataArtifact":
        if name not in self._artifact_ids():
            raise NotFound(f"Task {self.pathspec} has no artifact {name!r} "
                           f"(it has: {', '.join(sorted(self._artifact_ids())) or 'none'}).")
        return DataArtifact._attach(self, name)

    def __len__(self) -> int:
        return len(self._artifact_ids())

    def _repr_html_(self) -> str:
        from cafstore.client.html import task_html

        return task_html(self)


class DataArtifact(_RunTags, ClientObject):
    """One artifact of a task: its value (``data``), object id (``sha``) and size."""

    _LEVEL = "artifact"

    def __init__(self, pathspec: str, *, store: Any = None, _namespace_check: bool = True,
                 _current_namespace: Any = UNSET) -> None:
        run, parts = _run_of(pathspec, "artifact", store, _namespace_check, _current_namespace)
        artifact = _task_of(run, parts[2], parts[3])._child(parts[4])
        self.__dict__.update(artifact.__dict__)

    @classmethod
    def _attach(cls, task: Task, name: str) -> "DataArtifact":
        artifact = cls.__new__(cls)
        ClientObject.__init__(artifact, [*task._components, name], task._store, task._ns)
        artifact._task, artifact._name = task, name
        return artifact

    @property
    def parent(self) -> Task:
        return self._task

    @property
    def data(self) -> Any:
        """The value, unpickled on first access (shared with the task's ``data``)."""
        return self._task._value(self._name)

    @property
    def sha(self) -> str:
        """The artifact's object id (the blake3 hash of its serialised bytes)."""
        return self._task._artifact_ids()[self._name]

    @property
    def size(self) -> int:
        """Size in bytes of the serialised value as stored."""
        return self._store.stat(self.sha).size

    @property
    def created_at(self):
        return self._task.finished_at

    finished_at = created_at

    def _children(self) -> Iterator[Any]:
        return iter(())

    def _child(self, name: str) -> Any:
        raise NotFound(f"An artifact has no children ({self.pathspec}/{name}).")
