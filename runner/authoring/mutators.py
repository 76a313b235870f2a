"""``StepMutator`` and ``FlowMutator``: decorators that rewrite a flow before it runs.

A mutator is written in the flow file (``@MyStepMutator`` above ``@step``,
``@MyFlowMutator`` above the class) and only recorded there.  It runs, as in
Metaflow 2.19, in two phases, each once per process that uses the flow:

1. :func:`pre_mutate` once the configurations are known: every FlowMutator's
   ``init`` and ``pre_mutate`` (in the order applied: bottom-up, base classes
   first), then every StepMutator's ``init``, then their ``pre_mutate``.  Only
   here may a mutator add or remove parameters and other mutators.
2. :func:`mutate` after the command line (``--with``) is read: every
   FlowMutator's ``mutate``, then every StepMutator's.

The flow command runs both before it builds the graph and parameters it
checks and runs; a task process forked from it inherits the rewritten class,
and one that imports the flow file afresh (the spawn executor) runs both
again on the run's own configurations, so every task sees the same flow.  A
mutator's error becomes one :class:`~cafstore.exception.FlowError` naming the
mutator, the method and the step or flow.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from cafstore.exception import CafstoreError, FlowError

_STEP_MUTATORS = "_cafstore_step_mutators"  # on a step function: its StepMutators, innermost first
_FLOW_MUTATORS = "_cafstore_flow_mutators"  # on a flow class: its own FlowMutators, innermost first
_ALL = "_cafstore_all_flow_mutators"  # on a flow class: every FlowMutator, base classes first
_STAGE = "_cafstore_mutation_stage"  # on a flow class: 1 once pre_mutate ran, 2 once mutate ran


def _is_step_function(obj: Any) -> bool:
    return callable(obj) and getattr(obj, "is_step", False) is True


class _Mutator:
    """What both kinds share: arguments kept until ``init`` runs (once configurations are known)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not hasattr(self, "_args"):
            self._keep(args, kwargs)

    def _keep(self, args: Any, kwargs: Dict[str, Any]) -> None:
        self._args = list(args)
        self._kwargs = dict(kwargs)
        self._ran_init = False

    @property
    def decorator_name(self) -> str:
        return type(self).__name__

    def get_args_kwargs(self) -> Tuple[List[Any], Dict[str, Any]]:
        """The decorator's arguments as written (Metaflow's name for it)."""
        return list(self._args), dict(self._kwargs)

    def init(self, *args: Any, **kwargs: Any) -> None:
        """Override to take the mutator's arguments (``@MyMutator(1, key=2)``)."""

    def external_init(self, where: str) -> None:
        """Resolve the arguments (they may use configurations) and call ``init`` with them, once."""
        from cafstore.runner.authoring.config_values import resolve, resolve_kwargs

        if self._ran_init:
            return
        self._ran_init = True
        self._args = [resolve(arg, to_dict=False) for arg in self._args]
        self._kwargs = resolve_kwargs(self._kwargs)
        if (self._args or self._kwargs) and type(self).init is _Mutator.init:
            raise FlowError(
                f"@{self.decorator_name} on {where} is given arguments but does not implement init(); "
                "define init(self, ...) to take them."
            )
        _call(self, "init", where, *self._args, **self._kwargs)


class StepMutator(_Mutator):
    """Subclass it and override ``init``, ``pre_mutate(mutable_step)`` and/or ``mutate(mutable_step)``.

    Use it as ``@MyMutator`` or ``@MyMutator(args)`` above ``@step``.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        if len(args) == 1 and not kwargs and _is_step_function(args[0]):
            self._keep((), {})
            return self(args[0])  # bare @MyMutator: record it and give the step back
        return self

    def __call__(self, step: Callable) -> Callable:
        if not _is_step_function(step):
            raise FlowError(f"@{self.decorator_name} is a StepMutator: put it above @step.")
        step_mutators(step).append(self)
        return step

    def pre_mutate(self, mutable_step: Any) -> None:
        """Called once the configurations are known; may add or remove any decorator of the step."""

    def mutate(self, mutable_step: Any) -> None:
        """Called after the command line is read; may add or remove the step's decorators (not mutators)."""


class FlowMutator(_Mutator):
    """Subclass it and override ``init``, ``pre_mutate(mutable_flow)`` and/or ``mutate(mutable_flow)``.

    Use it as ``@MyMutator`` or ``@MyMutator(args)`` above the flow's class.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        if len(args) == 1 and not kwargs and isinstance(args[0], type):
            self._keep((), {})
            return self(args[0])  # bare @MyMutator: record it and give the class back
        return self

    def __call__(self, flow_cls: type) -> type:
        if not isinstance(flow_cls, type):
            raise FlowError(f"@{self.decorator_name} is a FlowMutator: put it above a flow's class.")
        if _FLOW_MUTATORS not in vars(flow_cls):
            setattr(flow_cls, _FLOW_MUTATORS, [])
        getattr(flow_cls, _FLOW_MUTATORS).append(self)
        return flow_cls

    def pre_mutate(self, mutable_flow: Any) -> None:
        """Called once the configurations are known; may add or remove parameters and decorators."""

    def mutate(self, mutable_flow: Any) -> None:
        """Called after the command line is read; may change the steps' decorators only."""


def step_mutators(func: Callable) -> List[StepMutator]:
    """The StepMutators of a step function (the list itself: mutators add to it)."""
    found: List[StepMutator] = func.__dict__.setdefault(_STEP_MUTATORS, [])
    return found


def flow_mutators(flow_cls: type) -> List[FlowMutator]:
    """Every FlowMutator of ``flow_cls`` and its bases, base classes first (the list mutators add to)."""
    found = vars(flow_cls).get(_ALL)
    if found is None:
        found = [m for klass in reversed(flow_cls.__mro__) for m in vars(klass).get(_FLOW_MUTATORS, [])]
        setattr(flow_cls, _ALL, found)
    return found


def has_mutators(flow_cls: type) -> bool:
    from cafstore.runner.authoring.mutable import step_names

    return bool(flow_mutators(flow_cls)) or any(step_mutators(getattr(flow_cls, name)) for name in step_names(flow_cls))


def pre_mutate(flow_cls: type) -> None:
    """Phase 1 (see the module's docstring); does nothing the second time in a process."""
    from cafstore.runner.authoring.mutable import MutableFlow, MutableStep, step_names

    if vars(flow_cls).get(_STAGE, 0) >= 1:
        return
    if not has_mutators(flow_cls):
        # Nothing to run: later calls here, and in tasks forked from this process, return at once.
        setattr(flow_cls, _STAGE, 2)
        return
    setattr(flow_cls, _STAGE, 1)
    where = f"flow {flow_cls.__name__}"
    found = flow_mutators(flow_cls)
    index = 0
    while index < len(found):  # a pre_mutate may add FlowMutators: they run too
        mutator = found[index]
        mutator.external_init(where)
        _call(mutator, "pre_mutate", where, MutableFlow(flow_cls, True, f"@{mutator.decorator_name}"))
        index += 1
    for name in step_names(flow_cls):
        for mutator in list(step_mutators(getattr(flow_cls, name))):
            mutator.external_init(f"step {name!r} of {flow_cls.__name__}")
    for name in step_names(flow_cls):
        found_here = step_mutators(getattr(flow_cls, name))
        index = 0
        while index < len(found_here):
            mutator = found_here[index]
            mutable = MutableStep(flow_cls, name, True, f"@{mutator.decorator_name}")
            _call(mutator, "pre_mutate", f"step {name!r} of {flow_cls.__name__}", mutable)
            index += 1
    _settle(flow_cls)


def mutate(flow_cls: type) -> None:
    """Phase 2 (see the module's docstring); does nothing the second time in a process."""
    from cafstore.runner.authoring.mutable import MutableFlow, MutableStep, step_names

    if vars(flow_cls).get(_STAGE, 0) != 1:
        return
    setattr(flow_cls, _STAGE, 2)
    for mutator in list(flow_mutators(flow_cls)):
        mutable_flow = MutableFlow(flow_cls, False, f"@{mutator.decorator_name}")
        _call(mutator, "mutate", f"flow {flow_cls.__name__}", mutable_flow)
    for name in step_names(flow_cls):
        for mutator in list(step_mutators(getattr(flow_cls, name))):
            mutable = MutableStep(flow_cls, name, False, f"@{mutator.decorator_name}")
            _call(mutator, "mutate", f"step {name!r} of {flow_cls.__name__}", mutable)
    _settle(flow_cls)


def _settle(flow_cls: type) -> None:
    """Options a mutator added that wait for the configurations are resolved at once."""
    from cafstore.runner.authoring.config_values import active_configs
    from cafstore.runner.authoring.decorators import has_deferred, resolve_deferred

    if has_deferred() and active_configs() is not None:
        resolve_deferred(flow_cls)


def _call(mutator: Any, method: str, where: str, *args: Any, **kwargs: Any) -> None:
    """``mutator.method(...)``; whatever it raises becomes one FlowError naming mutator, method and place."""
    try:
        getattr(mutator, method)(*args, **kwargs)
    except CafstoreError as exc:
        raise FlowError(f"@{mutator.decorator_name} on {where} failed in {method}(): {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the user's code: reported as one paragraph
        raise FlowError(
            f"@{mutator.decorator_name} on {where} failed in {method}(): {type(exc).__name__}: {exc}"
        ) from exc
