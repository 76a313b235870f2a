"""DataArtifact: one artifact of a task, the bottom of the object hierarchy.

Its value is the task's (``Task.artifact_value``), so ``task.data.x`` and
``task['x'].data`` unpickle once between them. This module imports
tasks.py; a Task makes its artifacts through the factory registered here
(base.make_child), so the imports go one way.
"""

from __future__ import annotations

from typing import Any, Iterator

from cafstore.client import pathspecs
from cafstore.client.base import UNSET, ClientObject, ParentTags, new_handle, register_child_factory
from cafstore.client.tasks import Task
from cafstore.exception import NotFound


class DataArtifact(ParentTags, ClientObject):
    """One artifact of a task: its value (``data``), object id (``sha``) and size."""

    _LEVEL = "artifact"
    # Set by _attach (the constructor copies them from the DataArtifact its task makes).
    _task: Task
    _name: str

    def __init__(
        self, pathspec: str, *, store: Any = None, _namespace_check: bool = True, _current_namespace: Any = UNSET
    ) -> None:
        parts = pathspecs.split(pathspec, "artifact")
        task = Task(
            "/".join(parts[:4]), store=store, _namespace_check=_namespace_check, _current_namespace=_current_namespace
        )
        artifact = task[parts[4]]
        self.__dict__.update(artifact.__dict__)

    @classmethod
    def _attach(cls, task: Task, name: str) -> "DataArtifact":
        artifact = new_handle(cls, [*task.path_components, name], task)
        artifact._task, artifact._name = task, name
        return artifact

    @property
    def parent(self) -> Task:
        return self._task

    @property
    def data(self) -> Any:
        """The value, unpickled on first access (shared with the task's ``data``)."""
        return self._task.artifact_value(self._name)

    @property
    def sha(self) -> str:
        """The artifact's object id (the blake3 hash of its serialised bytes)."""
        return self._task.artifact_ids[self._name]

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


register_child_factory("artifact", DataArtifact._attach)
