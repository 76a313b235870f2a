"""``current``: the identity of the task that is running.

Inside a step, ``current.pathspec`` and friends describe the task; outside
a run every field is None and ``is_running_flow`` is False (Metaflow's
behaviour, so library code can test it).  Run and task ids are strings, as
in Metaflow, though cafstore's are always numbers.

The runner fills ``current`` in with :func:`bind_current` before a step runs
and empties it with :func:`clear_current` afterwards.  Those are functions of
this module, not methods of the object, so that what a user sees on
``current`` (``dir(current)``, tab completion) is exactly Metaflow's read-only
API, with nothing that looks like it could be called from a step.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Set


class Current:
    """The process-wide singleton :data:`current`; the runner fills it in each task (:func:`bind_current`)."""

    _FIELDS = (
        "flow_name",
        "run_id",
        "origin_run_id",
        "step_name",
        "task_id",
        "namespace",
        "username",
        "parameter_names",
        "retry_count",
        "tags",
        "project",
        "flow_class",
        "store_path",
    )

    def __init__(self) -> None:
        self._values: dict = {}
        # @project's fields while the command line prepares a run (parameter default functions read them)
        self._launch_project: Optional[dict] = None

    @property
    def is_running_flow(self) -> bool:
        """True inside a step of a running flow."""
        return bool(self._values)

    @property
    def flow_name(self) -> Optional[str]:
        return self._values.get("flow_name")

    @property
    def run_id(self) -> Optional[str]:
        return self._values.get("run_id")

    @property
    def origin_run_id(self) -> Optional[str]:
        """The run a resumed run reuses; None for a plain ``run``."""
        return self._values.get("origin_run_id")

    @property
    def step_name(self) -> Optional[str]:
        return self._values.get("step_name")

    @property
    def task_id(self) -> Optional[str]:
        return self._values.get("task_id")

    @property
    def retry_count(self) -> Optional[int]:
        """0 on the first attempt, 1 on the first retry, ..."""
        return self._values.get("retry_count")

    @property
    def namespace(self) -> Optional[str]:
        return self._values.get("namespace")

    @property
    def username(self) -> Optional[str]:
        return self._values.get("username")

    @property
    def parameter_names(self) -> Optional[List[str]]:
        return self._values.get("parameter_names")

    @property
    def tags(self) -> Optional[Set[str]]:
        """The run's user tags (``--tag``), as a set: Metaflow's ``current.tags`` leaves out system tags."""
        return self._values.get("tags")

    @property
    def pathspec(self) -> Optional[str]:
        """``Flow/run/step/task``: names this task everywhere (client, logs, ``dump``)."""
        parts = [self.flow_name, self.run_id, self.step_name, self.task_id]
        return None if None in parts else "/".join(parts)  # type: ignore[arg-type]

    @property
    def task(self) -> Any:
        """This task as a client :class:`~cafstore.client.Task` (whatever the namespace), or None outside a task.

        It pickles, so a step may store it as an artifact and a later reader may follow it.
        """
        return self._client("Task", self.pathspec)

    @property
    def run(self) -> Any:
        """This run as a client :class:`~cafstore.client.Run`, or None outside a task."""
        parts = [self.flow_name, self.run_id]
        return None if None in parts else self._client("Run", "/".join(parts))  # type: ignore[arg-type]

    def _client(self, kind: str, pathspec: Optional[str]) -> Any:
        if pathspec is None:
            return None
        return TaskHandle(kind, pathspec, self._values.get("store_path"))

    @property
    def graph(self) -> Dict[str, Any]:
        """The flow's graph as a dict (start/end step, parameters, constants, steps); only in a running flow.

        Metaflow's keys, with cafstore's description of each step under ``steps``.
        """
        flow_cls = self._values.get("flow_class")
        if flow_cls is None:
            raise RuntimeError("Graph is not available: current.graph is only set while a flow runs.")
        return graph_info(flow_cls)

    # -- @project: present only in a flow decorated with it (AttributeError otherwise, as in Metaflow)
    def _project(self, key: str) -> Any:
        project = self._values.get("project") if self._values else self._launch_project
        if not project:
            raise AttributeError(
                f"current.{key} is set only in a flow decorated with @project(name=...)"
                + ("" if self.is_running_flow else ", while it runs")
                + "."
            )
        return project[key]

    @property
    def project_name(self) -> str:
        """``X`` of ``@project(name=X)``."""
        return self._project("project_name")

    @property
    def branch_name(self) -> str:
        """``user.<username>``, ``test.<branch>`` (``--branch``), ``prod`` or ``prod.<branch>`` (``--production``)."""
        return self._project("branch_name")

    @property
    def project_flow_name(self) -> str:
        """``<project>.<branch>.<flow>``: the flow's name within its project and branch."""
        return self._project("project_flow_name")

    @property
    def is_production(self) -> bool:
        return self._project("is_production")

    @property
    def is_user_branch(self) -> bool:
        """True when neither a branch nor production was asked for (the ``user.<name>`` branch)."""
        return self._project("is_user_branch")

    @property
    def tempdir(self) -> Optional[str]:
        """Where a step may put scratch files: ``CAFSTORE_TEMPDIR``, else Metaflow's ``METAFLOW_TEMPDIR``,
        else ``.``, the directory the flow runs in (Metaflow's default)."""
        return os.environ.get("CAFSTORE_TEMPDIR") or os.environ.get("METAFLOW_TEMPDIR") or "."

    @property
    def card(self) -> Any:
        """Not supported: cafstore has no cards."""
        raise AttributeError("current.card is not available: cafstore does not support @card.")

    def get(self, key: str, default: Any = None) -> Any:
        """``getattr(current, key, default)``, as Metaflow's ``current.get``."""
        return getattr(self, key, default)

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None

    def __repr__(self) -> str:
        if not self.is_running_flow:
            return "current(not running a flow)"
        return f"current({self.pathspec}, attempt {self.retry_count})"


class TaskHandle:
    """``current.task`` / ``current.run``: a client object found when first used.

    This handle has its ``pathspec`` now and opens the client object on the
    first other use: inside the step that is the running task (the runner
    registers it with cafstore.client.inflight), later the committed one.
    Pickled (stored as an artifact), it becomes the client object itself,
    opened without a namespace check, as Metaflow's does.
    """

    def __init__(self, kind: str, pathspec: str, store_path: Optional[str]) -> None:
        path = os.path.abspath(store_path) if store_path else None
        self.__dict__.update(_kind=kind, pathspec=pathspec, _path=path, _opened=None)

    def _open(self) -> Any:
        if self._opened is None:
            from cafstore import client
            from cafstore.client.connection import store_at

            store = store_at(self._path) if self._path else None
            self.__dict__["_opened"] = getattr(client, self._kind)(self.pathspec, _namespace_check=False, store=store)
        return self._opened

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._open(), name)

    def __getitem__(self, key: Any) -> Any:
        return self._open()[key]

    def __iter__(self) -> Any:
        return iter(self._open())

    def __contains__(self, key: Any) -> bool:
        return key in self._open()

    def __eq__(self, other: object) -> bool:
        return getattr(other, "pathspec", None) == self.pathspec and type(other).__name__ in (self._kind, "TaskHandle")

    def __hash__(self) -> int:
        return hash((self._kind, self.pathspec))

    def __reduce__(self) -> tuple:
        from cafstore.client.connection import get_store, reopen

        return (reopen, (self._kind, self.pathspec, self._path or str(get_store().path)))

    def __repr__(self) -> str:
        return f"{self._kind}({self.pathspec!r})"


def graph_info(flow_cls: type) -> Dict[str, Any]:
    """What ``current.graph`` holds: Metaflow's top-level keys over cafstore's graph description."""
    from cafstore.runner.authoring.constants import constant_names
    from cafstore.runner.authoring.parameters import flow_parameters
    from cafstore.runner.graph import graph_from_class

    graph = graph_from_class(flow_cls).to_dict()
    steps = {node["name"]: node for node in graph["steps"]}
    return {
        "file": graph["file"],
        "start_step": "start",
        "end_step": "end",
        "parameters": [{"name": attr, "type": type(param).__name__} for attr, param in flow_parameters(flow_cls)],
        "constants": [
            {"name": name, "type": type(getattr(flow_cls, name)).__name__} for name in constant_names(flow_cls)
        ],
        "steps": steps,
        "doc": graph["doc"],
        "decorators": [],
    }


current = Current()


def bind_current(**values: Any) -> None:
    """Describe the task about to run: ``flow_name``, ``run_id``, ``step_name``, ``task_id`` ...

    Called by the runner in the task's process before the step starts; the
    values replace whatever an earlier task of the same process left.  An
    unknown field is a programming error in the runner, so it raises
    :class:`TypeError` rather than being ignored.
    """
    unknown = set(values) - set(Current._FIELDS)
    if unknown:
        raise TypeError(f"unknown fields of current: {sorted(unknown)}")
    current._values = dict(values)


def bind_launch_project(fields: Optional[Dict[str, Any]]) -> None:
    """The ``@project`` fields of the run the command line is about to start.

    Metaflow's project decorator sets them when the flow's command line
    starts, so a parameter's default function can read
    ``current.project_name``; outside a step every other field stays None.
    """
    current._launch_project = dict(fields) if fields else None


def clear_current() -> None:
    """Forget the task that ran, so ``current.is_running_flow`` is False again.

    Called by the runner once the step has finished (whatever happened), so
    that code running later in the same process never reads a stale task.
    """
    current._values = {}
