"""``FlowSpec``: the base class of every flow.

A flow is a subclass with ``@step`` methods.  Instantiating it from the
flow file's ``if __name__ == '__main__':`` block runs the flow's command
line (``python flow.py run``).  In a task, the runner builds the object
without calling ``__init__`` and attaches a :class:`~cafstore.runner.authoring.artifacts.TaskState`
that loads artifacts lazily and records what the step assigns.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional

from cafstore.exception import ReadOnlyAttributeError, TransitionError
from cafstore.runner.authoring.parameters import Parameter

_MISSING: Any = object()
#: Attributes every flow has; a step cannot assign them.
RESERVED = frozenset({"next", "input", "index", "foreach_stack", "merge_artifacts", "script_name"})

# True only inside ``loading_for_task()``.
_loading_for_task = False


@contextlib.contextmanager
def loading_for_task() -> Iterator[None]:
    """While a task process imports a flow file, ``MyFlow()`` does not start the flow's command line.

    A flow file ends with ``if __name__ == '__main__': MyFlow()``, and a
    spawned task imports it as ``__main__`` (so that its classes pickle as
    under ``python flow.py``); without this, that import would start a
    second ``run`` inside the task.
    """
    global _loading_for_task
    previous = _loading_for_task
    _loading_for_task = True
    try:
        yield
    finally:
        _loading_for_task = previous


class _ClassGraph:
    """``MyFlow._graph`` / ``self._graph``: the flow's graph (Metaflow's private name, which tools read)."""

    def __get__(self, obj: Any, owner: type) -> Any:
        from cafstore.runner.graph import graph_from_class

        return graph_from_class(owner)


class FlowSpec:
    """Base class of flows: subclass it, add ``@step`` methods, call ``MyFlow()`` under ``__main__``."""

    _graph = _ClassGraph()

    def __init__(self, use_cli: bool = True) -> None:
        if not use_cli or _loading_for_task:
            object.__setattr__(self, "name", type(self).__name__)
            return
        from cafstore.cli.flow_commands import main

        main(type(self))

    def __iter__(self) -> Iterator[Any]:
        """The flow's step functions (each with ``.name``), in graph order, as Metaflow's legacy iteration gives."""
        from cafstore.runner.graph import graph_from_class

        cls = type(self)
        return iter([getattr(cls, node.name) for node in graph_from_class(cls).sorted_nodes()])

    @property
    def script_name(self) -> str:
        """The base name of the file that defines the flow (Metaflow's legacy property; ``current`` is preferred)."""
        import inspect
        import os

        path = inspect.getfile(type(self))
        return os.path.basename(path[:-1] if path.endswith(".pyc") else path)

    # -- graph transitions -------------------------------------------------
    def next(self, *steps: Any, foreach: Optional[str] = None, condition: Optional[str] = None) -> None:
        """Say which step(s) run after this one: ``self.next(self.a)``, ``self.next(self.a, self.b)``,
        ``self.next(self.a, foreach='items')``, ``self.next({'x': self.a, 'y': self.b}, condition='v')``.
        It must be the step's last statement."""
        state = self.__dict__.get("_cafstore_state")
        if state is None:
            raise TransitionError("self.next(...) only has an effect while the flow is running.")
        if state.transition is not None:
            raise TransitionError(f"Step {state.step!r} called self.next(...) twice; call it once, as its last line.")
        if condition is not None or (len(steps) == 1 and isinstance(steps[0], dict)):
            from cafstore.runner.authoring.switch import switch_target

            if foreach is not None:
                raise TransitionError(f"self.next(...) in step {state.step!r}: a switch cannot also be a foreach.")
            if condition is None:
                raise TransitionError(
                    f"self.next(...) in step {state.step!r} is given a dict of cases but no condition=, e.g. "
                    "self.next({'a': self.a, 'b': self.b}, condition='mode')."
                )
            state.transition = ([switch_target(state.step, steps, condition, self)], None)
            return
        names = []
        for target in steps:
            name = getattr(target, "__name__", None)
            if name is None or getattr(target, "__self__", None) is not self:
                raise TransitionError(
                    f"self.next(...) in step {state.step!r} takes steps of this flow, like self.end, not {target!r}."
                )
            names.append(name)
        if foreach is not None and not isinstance(foreach, str):
            raise TransitionError(
                f"self.next(..., foreach=...) in step {state.step!r} takes the name of an "
                f"artifact as a string, e.g. foreach='items', not {foreach!r}."
            )
        state.transition = (names, foreach)

    @property
    def _current_step(self) -> Optional[str]:
        """The step running now (Metaflow's private name for it, which some flows read); None outside a task."""
        state = self.__dict__.get("_cafstore_state")
        return state.step if state is not None else None

    # -- foreach -------------------------------------------------------------
    @property
    def input(self) -> Any:
        """In a foreach step: this task's item of the list; None elsewhere."""
        state = self.__dict__.get("_cafstore_state")
        return state.foreach.input if state is not None else None

    @property
    def index(self) -> Optional[int]:
        """In a foreach step: this task's position in the list (0-based); None elsewhere."""
        state = self.__dict__.get("_cafstore_state")
        return state.foreach.index if state is not None else None

    @property
    def _foreach_stack(self) -> List[Any]:
        """The enclosing foreaches as frames with ``step``, ``var``, ``num_splits``, ``index``, ``value``:
        Metaflow's private attribute, which flows written for Metaflow read."""
        state = self.__dict__.get("_cafstore_state")
        return state.foreach.named() if state is not None else []

    def foreach_stack(self) -> List[tuple]:
        """``(index, num_splits, value)`` for each enclosing foreach, outermost first."""
        state = self.__dict__.get("_cafstore_state")
        return state.foreach.stack() if state is not None else []

    # -- joins -----------------------------------------------------------------
    def merge_artifacts(
        self,
        inputs: Any,
        exclude: Optional[List[str]] = None,
        include: Optional[List[str]] = None,
        collect: bool = False,
    ) -> None:
        """Pass on the branches' artifacts that do not conflict (see :func:`cafstore.merge_artifacts`)."""
        from cafstore.runner.authoring.merge import merge_artifacts

        merge_artifacts(self, inputs, exclude=exclude, include=include, collect=collect)

    # -- artifacts ---------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: an artifact not read yet.
        if name.startswith("_"):
            raise AttributeError(name)
        state = self.__dict__.get("_cafstore_state")
        if state is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = state.load(name)
        object.__setattr__(self, name, value)  # later reads are plain attribute hits
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)  # private: never stored
            return
        if name in RESERVED:
            raise ReadOnlyAttributeError(
                f"self.{name} is part of every flow and cannot be assigned; store your value under another name."
            )
        found = getattr(type(self), name, _MISSING)
        if isinstance(found, Parameter):
            found.__set__(self, value)  # raises ParameterAssignmentError
        if found is not _MISSING:
            if hasattr(type(found), "__set__"):  # a property or descriptor of the user's own
                object.__setattr__(self, name, value)
                return
            what = "a method or step" if callable(found) else "a class-level constant"
            raise ReadOnlyAttributeError(
                f"Cannot assign self.{name}: {name!r} is {what} of {type(self).__name__}, readable in every "
                f"step but not changeable. Store the new value as an artifact with another name, e.g. "
                f"self.{name.lower()}_value = ..."
            )
        object.__setattr__(self, name, value)
        state = self.__dict__.get("_cafstore_state")
        if state is not None:
            state.assigned.add(name)
            state.deleted.discard(name)

    def __delattr__(self, name: str) -> None:
        state = self.__dict__.get("_cafstore_state")
        if name.startswith("_") or state is None:
            object.__delattr__(self, name)
            return
        present = name in self.__dict__ or (name in state.ids and name not in state.deleted)
        if not present or name in state.params:
            raise AttributeError(
                f"Cannot delete self.{name}: "
                + ("it is a parameter." if name in state.params else "there is no such artifact.")
            )
        self.__dict__.pop(name, None)
        state.assigned.discard(name)
        state.deleted.add(name)


def artifact_names(flow: FlowSpec) -> List[str]:
    """Public names a task would store now (for tests and debugging)."""
    state = flow.__dict__.get("_cafstore_state")
    names = {k for k in flow.__dict__ if not k.startswith("_")}
    if state is not None:
        names |= {k for k in state.ids if k not in state.deleted}
    return sorted(names)
