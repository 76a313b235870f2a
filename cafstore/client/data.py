"""Small value types of the client: a task's data and artifacts views, its code, exception and metadata.

They hold a Task and use only its public methods (``artifact_ids``,
``artifact_value``, item access and iteration), so they import no model module.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any, Dict, Iterator, Optional

from cafstore.exception import NotFound

Metadata = collections.namedtuple("Metadata", ["name", "value", "created_at", "type", "task"])


class _LazyValues(Mapping):
    """``task.data.__dict__``: names -> values, each unpickled only when read."""

    def __init__(self, task: Any) -> None:
        self._task = task

    def __getitem__(self, name: str) -> Any:
        return self._task.artifact_value(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._task.artifact_ids))

    def __len__(self) -> int:
        return len(self._task.artifact_ids)

    def __repr__(self) -> str:
        return f"<artifacts of {self._task.pathspec}: {', '.join(self)}>"


class MetaflowData:
    """``task.data``: each artifact as an attribute, unpickled on first access and cached on the Task."""

    __slots__ = ("_task",)

    def __init__(self, task: Any) -> None:
        object.__setattr__(self, "_task", task)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._task.artifact_value(name)
        except NotFound as exc:
            raise AttributeError(str(exc)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Artifacts of past runs are read-only (cannot set {name!r}).")

    def __contains__(self, name: object) -> bool:
        return name in self._task.artifact_ids

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._task.artifact_ids))

    def __dir__(self) -> list:
        return sorted(self._task.artifact_ids)

    @property
    def __dict__(self) -> Mapping:  # type: ignore[override]  # on purpose: a lazy view, not object's dict
        """Names and (lazily loaded) values, so ``vars(task.data)`` lists the artifacts."""
        return _LazyValues(self._task)

    def __repr__(self) -> str:
        return f"<MetaflowData: {', '.join(sorted(self._task.artifact_ids))}>"

    __str__ = __repr__


class MetaflowArtifacts:
    """``task.artifacts``: a DataArtifact per name, by attribute or by iteration."""

    def __init__(self, task: Any) -> None:
        self._task = task

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._task[name]
        except NotFound as exc:
            raise AttributeError(str(exc)) from None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._task)

    def __len__(self) -> int:
        return len(self._task.artifact_ids)

    def __contains__(self, name: object) -> bool:
        return name in self._task.artifact_ids

    def __dir__(self) -> list:
        return sorted(self._task.artifact_ids)

    def __repr__(self) -> str:
        return f"<MetaflowArtifacts: {', '.join(sorted(self._task.artifact_ids))}>"


class FlowCode(str):
    """The flow file's source as stored with the run: a ``str`` with ``path``, ``sha`` and ``flowspec``."""

    path: Optional[str]
    sha: str

    @classmethod
    def load(cls, store: Any, oid: Any, path: Optional[str]) -> "FlowCode":
        code = cls(store.get_bytes(oid).decode("utf-8", errors="replace"))
        code.path, code.sha = path, str(oid)
        return code

    @property
    def flowspec(self) -> str:
        """The flow file's source (Metaflow's ``code.flowspec``)."""
        return str(self)

    @property
    def info(self) -> Dict[str, Any]:
        return {"script": self.path, "sha": self.sha}

    @property
    def tarball(self) -> None:
        """Metaflow packs a code tarball; cafstore stores the flow file alone."""
        return None

    def __repr__(self) -> str:
        return f"<FlowCode {self.path or '?'} ({len(self)} characters)>"


class TaskException(Exception):
    """What a failed step raised, as recorded: ``type``, ``message``, ``traceback``."""

    def __init__(self, type: str, message: str, traceback: str = "") -> None:  # noqa: A002
        super().__init__(f"{type}: {message}" if message else type)
        self.type, self.message, self.traceback = type, message, traceback

    @classmethod
    def from_record(cls, info: Dict[str, Any]) -> "TaskException":
        return cls(
            str(info.get("type") or "Exception"), str(info.get("message") or ""), str(info.get("traceback") or "")
        )

    # Metaflow's names for the same fields.
    @property
    def exception(self) -> str:
        return self.message

    @property
    def stacktrace(self) -> str:
        return self.traceback

    def __repr__(self) -> str:
        return f"TaskException({self.type!r}, {self.message!r})"
