"""``current``: the identity of the task that is running.

Inside a step, ``current.pathspec`` and friends describe the task; outside
a run every field is None and ``is_running_flow`` is False (Metaflow's
behaviour, so library code can test it).  Run and task ids are strings, as
in Metaflow, though cafstore's are always numbers.
"""

from __future__ import annotations

from typing import Any, List, Optional


class Current:
    """The process-wide singleton :data:`current`; the runner fills it in each task."""

    _FIELDS = ("flow_name", "run_id", "origin_run_id", "step_name", "task_id", "namespace", "username",
               "parameter_names", "retry_count", "tags")

    def __init__(self) -> None:
        self._values: dict = {}

    def _set(self, **values: Any) -> None:
        unknown = set(values) - set(self._FIELDS)
        if unknown:
            raise TypeError(f"unknown fields of current: {sorted(unknown)}")
        self._values = dict(values)

    def _clear(self) -> None:
        self._values = {}

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
