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

from typing import Any, List, Optional


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
    )

    def __init__(self) -> None:
        self._values: dict = {}

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
    def tags(self) -> Optional[List[str]]:
        """The run's tags, user and system, sorted."""
        return self._values.get("tags")

    @property
    def pathspec(self) -> Optional[str]:
        """``Flow/run/step/task``: names this task everywhere (client, logs, ``dump``)."""
        parts = [self.flow_name, self.run_id, self.step_name, self.task_id]
        return None if None in parts else "/".join(parts)  # type: ignore[arg-type]

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        return default if value is None else value

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None

    def __repr__(self) -> str:
        if not self.is_running_flow:
            return "current(not running a flow)"
        return f"current({self.pathspec}, attempt {self.retry_count})"


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


def clear_current() -> None:
    """Forget the task that ran, so ``current.is_running_flow`` is False again.

    Called by the runner once the step has finished (whatever happened), so
    that code running later in the same process never reads a stale task.
    """
    current._values = {}
