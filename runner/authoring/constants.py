"""Class-level constants of a flow, stored as artifacts of its tasks, as Metaflow does.

A flow's plain class attributes (``x = 5``, ``labels = ['a', 'b']``) are
readable in every step and cannot be assigned (``FlowSpec.__setattr__``).
Metaflow also stores them, with the flow's ``name``, as artifacts of every
task, so ``Task(...).data.x`` and ``[a.id for a in task]`` show them: it
saves them once before ``start`` and every task inherits them (a join from
its first input). cafstore does the same: the ``start`` task stores them,
linear tasks inherit them like any artifact, and a join copies their ids
from its first input. Only ids are copied, so no value is stored twice.

Which attributes count is Metaflow's rule: not private (``_x``), not a
Parameter, not a function, method, property or class.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Sequence

from cafstore.runner.authoring.parameters import Parameter
from cafstore.store import ObjectId

#: Names of every flow that are never constants (Metaflow's list, plus cafstore's own).
NOT_CONSTANTS = frozenset({"cmd", "foreach_stack", "index", "input", "script_name", "name", "next"})
#: The artifact holding the flow's name in every task.
NAME_ARTIFACT = "name"


def constant_names(flow_cls: type) -> List[str]:
    """The class-level constants of ``flow_cls`` (its bases' too), sorted."""
    names = []
    for name in dir(flow_cls):
        if name.startswith("_") or name in NOT_CONSTANTS:
            continue
        value = inspect.getattr_static(flow_cls, name)
        if isinstance(value, (Parameter, property, type, staticmethod, classmethod)):
            continue
        if inspect.isfunction(value) or inspect.ismethod(value) or inspect.isbuiltin(value):
            continue
        if hasattr(type(value), "__set__") or hasattr(type(value), "__get__"):
            continue  # a descriptor (a Config, a cached property ...): not a plain value
        names.append(name)
    return sorted(names)


def constant_ids(store: Any, flow_cls: type, parents: Sequence[str], is_join: bool) -> Dict[str, ObjectId]:
    """The ids of ``name`` and the constants a task starts with beyond what it inherits.

    The first task (no parents) stores them; a join takes them from its first
    input; any other task already inherits them from its parent.
    """
    if parents and not is_join:
        return {}  # inherited with the parent's artifacts; not worth a look at the class per task
    names = [NAME_ARTIFACT, *constant_names(flow_cls)]
    if not parents:
        values = {name: getattr(flow_cls, name) for name in names[1:]}
        values[NAME_ARTIFACT] = flow_cls.__name__
        return {name: store.put_artifact(value, name) for name, value in values.items()}
    first = store.get_record(ObjectId(parents[0])).get("artifacts", {})
    return {name: first[name] for name in names if name in first}
