"""A task's view of artifacts: lazy loading in, change tracking out.

A task starts from a map ``name -> ObjectId`` (its parent's complete map,
or for a join only the parameters) and loads a value only when the step
reads it.  Assignments are noted by ``FlowSpec.__setattr__``; reads of
inherited values are noted too, so that :mod:`cafstore.runner.execution.task` can
decide what to serialise at the end (docs/runner.md, "What a task stores").

Join steps see their branches through :class:`Inputs`, a sequence of
read-only :class:`InputView` objects, each backed by one parent record.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence

from cafstore.exception import ObjectNotFound, ReadOnlyAttributeError, UnmergedArtifactError
from cafstore.store import ObjectId, serialize

_MISSING: Any = object()
#: How far up the lineage a failed read looks for the join that dropped the artifact.
_DIAGNOSE_DEPTH = 64


def load_value(store: Any, oid: ObjectId, name: str, sizes: Optional[Dict[str, int]] = None) -> Any:
    view = store.open(oid)
    if sizes is not None:
        sizes[name] = view.nbytes
    return serialize.loads(view, name)


def item_at(values: Any, index: int) -> Any:
    """Item ``index`` of a foreach's values: by position, or by iterating for values that have no
    ``[]`` (a set), as Metaflow finds a split's input."""
    try:
        return values[index]
    except TypeError:
        return next(islice(values, index, index + 1))


#: Foreach values already loaded by the process that forked this task (the fork executor's
#: scheduler, ``LocalForkExecutor._preload``), by object id: a fork inherits them, so a task of a
#: 100,000-way foreach takes its item without reading and unpickling the whole list again.
PRELOADED: Dict[str, Any] = {}


class ForeachFrame(NamedTuple):
    """One enclosing foreach, with the fields of Metaflow's ``flow._foreach_stack`` entries."""

    step: str
    var: str
    num_splits: int
    index: int
    value: Any


class _ForeachFrames:
    """``self.input`` / ``self.index`` / ``foreach_stack()`` from a list of frames."""

    def __init__(self, store: Any, frames: Sequence[Dict[str, Any]]) -> None:
        self.store = store
        self.frames = list(frames)
        self._values: Dict[str, Any] = {}

    def _item(self, frame: Dict[str, Any]) -> Any:
        key = str(frame["values"])
        if key not in self._values:
            preloaded = PRELOADED.get(key, _MISSING)
            if preloaded is _MISSING:
                preloaded = load_value(self.store, ObjectId(key), frame["var"])
            self._values[key] = preloaded
        return item_at(self._values[key], frame["index"])

    @property
    def index(self) -> Optional[int]:
        return self.frames[-1]["index"] if self.frames else None

    @property
    def input(self) -> Any:
        return self._item(self.frames[-1]) if self.frames else None

    def stack(self) -> List[tuple]:
        return [(f["index"], f["num_splits"], self._item(f)) for f in self.frames]

    def named(self) -> List[ForeachFrame]:
        return [
            ForeachFrame(f.get("step", ""), f["var"], f["num_splits"], f["index"], self._item(f)) for f in self.frames
        ]


class TaskState:
    """Everything a running step's ``self`` knows beyond its own ``__dict__``."""

    def __init__(
        self,
        store: Any,
        flow_name: str,
        step: str,
        ids: Dict[str, ObjectId],
        params: Sequence[str],
        frames: Sequence[Dict[str, Any]],
        is_join: bool,
        parents: Sequence[str],
        inputs: "Optional[Inputs]" = None,
    ) -> None:
        self.store = store
        self.flow_name = flow_name
        self.step = step
        self.ids = dict(ids)  # inherited (or, in a join, parameters + merged)
        self.params = frozenset(params)
        self.is_join = is_join
        self.parents = list(parents)
        self.inputs = inputs
        self.foreach = _ForeachFrames(store, frames)
        self.sizes: Dict[str, int] = {}
        self.assigned: set = set()
        self.accessed: set = set()
        self.deleted: set = set()
        self.merged: set = set()
        self.transition: Optional[tuple] = None  # (targets, foreach) once self.next ran
        self._param_values: Dict[str, Any] = {}

    # -- reads ------------------------------------------------------------
    def load(self, name: str) -> Any:
        """The value of inherited artifact ``name`` (first read); raises the right AttributeError."""
        oid = self.ids.get(name)
        if oid is None or name in self.deleted:
            raise self.missing(name)
        value = load_value(self.store, oid, name, self.sizes)
        self.accessed.add(name)
        return value

    def read_parameter(self, attr: str) -> Any:
        if attr not in self._param_values:
            self._param_values[attr] = load_value(self.store, self.ids[attr], attr)
        return self._param_values[attr]

    def missing(self, name: str) -> AttributeError:
        """An error for reading ``name`` that this task does not have, saying why if it can."""
        if self.is_join and self.inputs is not None:
            where = [view.step for view in self.inputs.views[:50] if name in view.ids]
            if where:
                return UnmergedArtifactError(
                    f"Join step {self.step!r} has no artifact self.{name} yet: in a join, the branches' "
                    f"artifacts are read through inputs (inputs[0].{name}, inputs.{where[0]}.{name}) until "
                    f"the join assigns them (self.{name} = ...) or merges them (self.merge_artifacts(inputs))."
                )
        else:
            try:
                found = self._dropping_step(name)
            except ObjectNotFound:  # a detached task (docs/scale-out.md) has only its parents' records
                found = None
            if found is not None and found[1] > 1:
                return UnmergedArtifactError(
                    f"Step {self.step!r} cannot read self.{name}: it was set before the join step {found[0]!r}, "
                    f"which did not pass it on. A join passes on only what it assigns or merges: in "
                    f"{found[0]!r}, add self.{name} = inputs[0].{name} (or self.merge_artifacts(inputs))."
                )
            if found is not None:
                return UnmergedArtifactError(
                    f"Step {self.step!r} cannot read self.{name}: it existed before step {found[0]!r}, which "
                    f"dropped it (del self.{name}, or a join that neither assigned nor merged it)."
                )
        return AttributeError(
            f"{self.flow_name!r} object has no attribute {name!r} (no step before {self.step!r} assigned self.{name})."
        )

    def _dropping_step(self, name: str) -> Optional[tuple]:
        """Walk up the lineage to the step below which ``name`` still existed: (step, its number
        of inputs), or None (error path only)."""
        records: Dict[str, dict] = {}

        def record(oid: str) -> dict:
            if oid not in records:
                records[oid] = self.store.get_record(oid)
            return records[oid]

        current = [str(p) for p in self.parents[:1]]
        for _ in range(_DIAGNOSE_DEPTH):
            if not current:
                return None
            node = record(current[0])
            above = [str(p) for p in node.get("parents", [])]
            for parent in above[:3]:
                if name in record(parent).get("artifacts", {}):
                    return node.get("step"), len(above)
            current = above[:1]
        return None


class InputView:
    """One branch arriving at a join: its artifacts, read-only, loaded on first read."""

    def __init__(self, store: Any, record_id: str, step: str, flow_cls: type) -> None:
        d = self.__dict__
        d["_store"], d["_oid"], d["_step"], d["_cls"] = store, record_id, step, flow_cls
        d["_record"] = None

    @property
    def step(self) -> str:
        return self.__dict__["_step"]

    def _kept(self) -> dict:
        """The parts of the branch's record a join reads (its artifacts and foreach frames), read once.

        The rest of the record is not kept: a join over 100,000 inputs holds about 1.9 KB per
        input instead of 5.3 KB.
        """
        d = self.__dict__
        if d["_record"] is None:
            full = d["_store"].get_record(d["_oid"])
            d["_record"] = {"artifacts": full.get("artifacts", {}), "foreach_stack": full.get("foreach_stack", [])}
        return d["_record"]

    @property
    def record(self) -> dict:
        """The branch's whole task record, read from the store at each call."""
        return self.__dict__["_store"].get_record(self.__dict__["_oid"])

    @property
    def ids(self) -> Dict[str, ObjectId]:
        return self._kept()["artifacts"]

    @property
    def record_id(self) -> str:
        return self.__dict__["_oid"]

    def _frames(self) -> _ForeachFrames:
        # Kept under another name than the method's: an instance attribute would hide the method.
        if "_frames_cache" not in self.__dict__:
            frames = _ForeachFrames(self.__dict__["_store"], self._kept()["foreach_stack"])
            self.__dict__["_frames_cache"] = frames
        return self.__dict__["_frames_cache"]

    @property
    def index(self) -> Optional[int]:
        return self._frames().index

    @property
    def input(self) -> Any:
        return self._frames().input

    def foreach_stack(self) -> List[tuple]:
        return self._frames().stack()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        oid = self.ids.get(name)
        if oid is not None:
            value = load_value(self.__dict__["_store"], oid, name)
            self.__dict__[name] = value
            return value
        constant = getattr(self.__dict__["_cls"], name, _MISSING)
        if constant is not _MISSING and not callable(constant):
            return constant
        raise AttributeError(
            f"The input from step {self.step!r} has no artifact {name!r} "
            f"(it has: {', '.join(sorted(self.ids)) or 'none'})."
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise ReadOnlyAttributeError(
            f"The inputs of a join are read-only: assign to self.{name} in the join instead of to an input."
        )

    def __repr__(self) -> str:
        return f"<input from step {self.step!r}>"


class Inputs:
    """The branches of a join: ``inputs[0]``, ``inputs.<step>``, ``for inp in inputs``, ``len(inputs)``."""

    def __init__(self, views: List[InputView]) -> None:
        self.__dict__["views"] = views

    def __len__(self) -> int:
        return len(self.views)

    def __iter__(self) -> Iterator[InputView]:
        return iter(self.views)

    def __getitem__(self, index: Any) -> Any:
        return self.views[index]

    def __getattr__(self, name: str) -> InputView:
        if name.startswith("_"):
            raise AttributeError(name)
        matches = [view for view in self.views if view.step == name]
        if len(matches) == 1:
            return matches[0]
        steps = sorted({view.step for view in self.views})
        if matches:
            raise AttributeError(
                f"inputs.{name} is ambiguous: {len(matches)} inputs come from step {name!r} "
                "(a foreach); use inputs[i] or iterate over inputs."
            )
        raise AttributeError(
            f"No input comes from a step named {name!r}; the inputs come from {', '.join(map(repr, steps))}."
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise ReadOnlyAttributeError("The inputs of a join are read-only.")

    def __repr__(self) -> str:
        return f"<inputs: {len(self.views)} from {', '.join(sorted({v.step for v in self.views}))}>"
