"""``MutableStep`` and ``MutableFlow``: what a mutator sees of the flow it rewrites.

A mutator (:mod:`.mutators`) gets one of these in ``pre_mutate`` and ``mutate``.
It can list a step's decorators (``decorator_specs``), add or remove them,
and, in ``pre_mutate`` only, add or remove the flow's parameters.  Every change
lands on the flow class exactly where a decorator written in the file would
have put it, so the rest of cafstore (the scheduler, the task, ``--with``)
cannot tell an added ``@retry`` from a written one.  The rules (duplicates,
what only ``pre_mutate`` may do) are Metaflow 2.19's.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from cafstore.exception import FlowError
from cafstore.runner.authoring import decorators, user_decorators

Spec = Tuple[str, str, List[Any], Dict[str, Any]]

#: The step decorators a mutator can add by name, with the attributes Metaflow shows by default.
BUILTINS: Dict[str, Tuple[Callable[..., Any], Dict[str, Any]]] = {
    "retry": (decorators.retry, {"times": "3", "minutes_between_retries": "2"}),
    "catch": (decorators.catch, {"var": None, "print_exception": True}),
    "timeout": (decorators.timeout, {"seconds": 0, "minutes": 0, "hours": 0}),
    "environment": (decorators.environment, {"vars": {}}),
    "resources": (
        decorators.resources,
        {"cpu": "1", "gpu": None, "disk": None, "memory": "4096", "shared_memory": None},
    ),
    "cache": (decorators.cache, {}),
}


def parse_decospec(text: str) -> Tuple[str, List[Any], Dict[str, Any]]:
    """``"environment:vars={\\"A\\": 1}"`` -> ``("environment", [], {"vars": {"A": 1}})``, as Metaflow
    reads a decorator written as text (values are JSON, else numbers, else strings)."""
    name, _, rest = text.partition(":")
    args: List[Any] = []
    kwargs: Dict[str, Any] = {}
    for item in re.split(r""",(?=[\s\w]+=)""", rest) if rest else []:
        key, equals, raw = item.partition("=")
        if not equals:
            raise FlowError(f"decorator spec {text!r}: {item!r} is not name=value.")
        value: Any = raw.strip()
        for convert in (lambda v: json.loads(v.replace('\\"', '"')), int, float):
            try:
                value = convert(raw.strip())
                break
            except ValueError:
                continue
        if key.strip().isdigit():
            args.extend([None] * (int(key) + 1 - len(args)))
            args[int(key)] = value
        else:
            kwargs[key.strip()] = value
    return name.strip(), args, kwargs


class MutableStep:
    """One step as a mutator sees it; ``IGNORE``/``ERROR``/``OVERRIDE`` say what adding a
    decorator the step already has does."""

    IGNORE = 1
    ERROR = 2
    OVERRIDE = 3

    def __init__(self, flow_cls: type, name: str, pre_mutate: bool, inserted_by: str) -> None:
        self._flow_cls = flow_cls
        self._name = name
        self._func = getattr(flow_cls, name)
        self._pre_mutate = pre_mutate
        self._inserted_by = inserted_by

    def __repr__(self) -> str:
        return f"MutableStep({self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def flow(self) -> "MutableFlow":
        """The flow that holds this step."""
        return MutableFlow(self._flow_cls, self._pre_mutate, self._inserted_by)

    @property
    def decorator_specs(self) -> Iterator[Spec]:
        """``(name, full name, args, kwargs)`` of each decorator of the step: cafstore's own
        (with their default attributes, as Metaflow shows them), user decorators, mutators."""
        from cafstore.runner.authoring import mutators

        for name, kwargs in decorators.written_specs(self._func):
            defaults = BUILTINS.get(name, (None, {}))[1]
            yield name, f"{decorators.__name__}.{name}", [], {**defaults, **kwargs}
        for deco in user_decorators.attached(self._func):
            yield (deco.decorator_name, _full_name(deco), *deco.get_args_kwargs())
        for mutator in mutators.step_mutators(self._func):
            yield (mutator.decorator_name, _full_name(mutator), *mutator.get_args_kwargs())

    def has_decorator(self, name: str) -> bool:
        """Whether the step has a decorator called ``name`` (a full name if it has a dot)."""
        return bool(self.get_decorator_specs(name))

    def get_decorator_specs(self, name: str) -> List[Spec]:
        return [spec for spec in self.decorator_specs if _matches(spec, name)]

    def add_decorator(
        self,
        deco_type: Any,
        deco_args: Optional[List[Any]] = None,
        deco_kwargs: Optional[Dict[str, Any]] = None,
        duplicates: int = IGNORE,
    ) -> Any:
        """Add a step decorator (``retry``, ``"retry:times=2"``, a UserStepDecorator or StepMutator
        class) to the step; it takes effect as if written there.  None when it was not added."""
        from cafstore.runner.authoring import mutators

        args, kwargs = list(deco_args or []), dict(deco_kwargs or {})
        if isinstance(deco_type, str):
            name, spec_args, spec_kwargs = parse_decospec(deco_type)
            if (spec_args or spec_kwargs) and (args or kwargs):
                raise FlowError(
                    f"{self._who()}: add_decorator({deco_type!r}) has arguments in the string, so it "
                    "takes no deco_args/deco_kwargs too."
                )
            args, kwargs = (spec_args or args), (spec_kwargs or kwargs)
            deco_type = (
                BUILTINS[name][0] if name in BUILTINS else subclass_named(user_decorators.UserStepDecorator, name)
            )
            if deco_type is None:
                deco_type = subclass_named(mutators.StepMutator, name)
            if deco_type is None:
                known = ", ".join(sorted(BUILTINS))
                raise FlowError(
                    f"{self._who()}: there is no step decorator {name!r} to add (cafstore's are {known}, "
                    "or the name of a UserStepDecorator or StepMutator class)."
                )
        deco_type = getattr(deco_type, "decorator_class", deco_type)  # a @user_step_decorator function
        builtin = next((name for name, (func, _) in BUILTINS.items() if func is deco_type), None)
        if builtin is not None:
            return self._add_builtin(builtin, args, kwargs, duplicates)
        if isinstance(deco_type, type) and issubclass(deco_type, user_decorators.UserStepDecorator):
            found = user_decorators.attached(self._func)
            deco = deco_type(*args, **kwargs)
        elif isinstance(deco_type, type) and issubclass(deco_type, mutators.StepMutator):
            if not self._pre_mutate:
                raise FlowError(f"{self._who()}: a StepMutator can be added in pre_mutate only, not in mutate.")
            found = mutators.step_mutators(self._func)
            deco = deco_type(*args, **kwargs)
        else:
            raise FlowError(
                f"{self._who()}: add_decorator takes a step decorator (like retry or 'retry:times=2'), "
                f"a UserStepDecorator or a StepMutator class, not {deco_type!r}."
            )
        same = [d for d in found if d.decorator_name == deco.decorator_name]
        if same and not self._may_add(deco.decorator_name, duplicates):
            return None
        found[:] = [d for d in found if d not in same]
        found.append(deco)
        if isinstance(deco, mutators.StepMutator):
            deco.external_init(self._who())
        return deco

    def _add_builtin(self, name: str, args: List[Any], kwargs: Dict[str, Any], duplicates: int) -> Any:
        if args:
            raise FlowError(f"{self._who()}: @{name} takes keyword arguments only (deco_kwargs), not {args!r}.")
        if name in {n for n, _ in decorators.written_specs(self._func)}:
            if not self._may_add(name, duplicates):
                return None
            self._rebuild(lambda spec: spec[0] != name)
        BUILTINS[name][0](self._func, **kwargs)
        return (name, kwargs)

    def _may_add(self, name: str, duplicates: int) -> bool:
        """Whether a decorator the step already has is added again (OVERRIDE) or not (IGNORE)."""
        if duplicates == self.ERROR:
            raise FlowError(f"{self._who()}: the step already has @{name} (add_decorator was told duplicates=ERROR).")
        if duplicates not in (self.IGNORE, self.OVERRIDE):
            raise FlowError(f"{self._who()}: duplicates={duplicates!r} must be IGNORE, ERROR or OVERRIDE.")
        return duplicates == self.OVERRIDE

    def _rebuild(self, keep: Callable[[Tuple[str, Dict[str, Any]]], bool]) -> bool:
        """Apply afresh the step's decorators that ``keep`` keeps; whether any was dropped."""
        specs = decorators.written_specs(self._func)
        kept = [spec for spec in specs if keep(spec)]
        if len(kept) == len(specs):
            return False
        decorators.forget_decorators(self._func)
        for name, kwargs in kept:
            if name in BUILTINS:
                BUILTINS[name][0](self._func, **kwargs)
        return True

    def remove_decorator(
        self, deco_name: str, deco_args: Optional[List[Any]] = None, deco_kwargs: Optional[Dict[str, Any]] = None
    ) -> bool:
        """Remove the step's decorators called ``deco_name`` (only those with exactly these arguments,
        if given); whether any was removed.  StepMutators can be removed in pre_mutate only."""
        from cafstore.runner.authoring import mutators

        every = deco_args is None and deco_kwargs is None
        wanted = (list(deco_args or []), dict(deco_kwargs or {}))

        def drop(deco: Any) -> bool:
            return deco.decorator_name == deco_name and (every or deco.get_args_kwargs() == wanted)

        removed = False
        for found in (user_decorators.attached(self._func), mutators.step_mutators(self._func)):
            gone = [d for d in found if drop(d)]
            if gone and not self._pre_mutate and isinstance(gone[0], mutators.StepMutator):
                raise FlowError(f"{self._who()}: a StepMutator can be removed in pre_mutate only, not in mutate.")
            found[:] = [d for d in found if d not in gone]
            removed = removed or bool(gone)
        defaults = BUILTINS.get(deco_name, (None, {}))[1]

        def keep(spec: Tuple[str, Dict[str, Any]]) -> bool:
            same = every or ([], {**defaults, **spec[1]}) == wanted or ([], spec[1]) == wanted
            return not (spec[0] == deco_name and same)

        return self._rebuild(keep) or removed

    def _who(self) -> str:
        return f"{self._inserted_by} on step {self._name!r} of {self._flow_cls.__name__}"


class MutableFlow:
    """The flow as a mutator sees it: its configurations, parameters and steps."""

    IGNORE = 1
    ERROR = 2
    OVERRIDE = 3

    def __init__(self, flow_cls: type, pre_mutate: bool, inserted_by: str) -> None:
        self._flow_cls = flow_cls
        self._pre_mutate = pre_mutate
        self._inserted_by = inserted_by

    @property
    def configs(self) -> Iterator[Tuple[str, Any]]:
        """``(name, value)`` of each configuration, values as the steps read them."""
        from cafstore.runner.authoring.config_values import ConfigValue, active_configs
        from cafstore.runner.authoring.configs import flow_configs

        active = active_configs() or {}
        for _attr, config in flow_configs(self._flow_cls):
            value, plain = active.get(config.name, (None, False))
            yield config.name, value if plain or value is None else ConfigValue(value)

    @property
    def parameters(self) -> Iterator[Tuple[str, Any]]:
        """``(attribute, Parameter)`` of each parameter (configurations are not parameters)."""
        from cafstore.runner.authoring.parameters import flow_parameters

        for attr, param in flow_parameters(self._flow_cls):
            if not param.IS_CONFIG_PARAMETER:
                yield attr, param

    @property
    def steps(self) -> Iterator[Tuple[str, MutableStep]]:
        """``(name, MutableStep)`` of each step."""
        for name in step_names(self._flow_cls):
            yield name, MutableStep(self._flow_cls, name, self._pre_mutate, self._inserted_by)

    @property
    def decorator_specs(self) -> Iterator[Spec]:
        """The flow's FlowMutators as ``(name, full name, args, kwargs)``."""
        from cafstore.runner.authoring import mutators

        for mutator in mutators.flow_mutators(self._flow_cls):
            yield (mutator.decorator_name, _full_name(mutator), *mutator.get_args_kwargs())

    def has_decorator(self, name: str) -> bool:
        return any(_matches(spec, name) for spec in self.decorator_specs)

    def get_decorator_specs(self, name: str) -> List[Spec]:
        return [spec for spec in self.decorator_specs if _matches(spec, name)]

    def add_parameter(self, name: str, value: Any, overwrite: bool = False) -> None:
        """Add ``value`` (a Parameter) as ``name``; pre_mutate only.  It becomes a ``--option`` of ``run``."""
        from cafstore.runner.authoring.parameters import Parameter

        self._pre_mutate_only(f"add_parameter({name!r})")
        if hasattr(self._flow_cls, name) and not overwrite:
            raise FlowError(
                f"{self._who()}: add_parameter({name!r}): the flow already has a member {name!r}; pass "
                "overwrite=True to replace it."
            )
        if not isinstance(value, Parameter) or value.IS_CONFIG_PARAMETER:
            raise FlowError(
                f"{self._who()}: add_parameter({name!r}) takes a Parameter or an IncludeFile, not {value!r}."
            )
        setattr(self._flow_cls, name, value)
        value.__set_name__(self._flow_cls, name)

    def remove_parameter(self, parameter_name: str) -> bool:
        """Remove the parameter called ``parameter_name`` (its name, not its attribute); pre_mutate only."""
        self._pre_mutate_only(f"remove_parameter({parameter_name!r})")
        for attr, param in self.parameters:
            if param.name == parameter_name:
                owner = next(k for k in self._flow_cls.__mro__ if attr in vars(k))
                delattr(owner, attr)
                return True
        return False

    def add_decorator(
        self,
        deco_type: Any,
        deco_args: Optional[List[Any]] = None,
        deco_kwargs: Optional[Dict[str, Any]] = None,
        duplicates: int = IGNORE,
    ) -> Any:
        """Add a FlowMutator class to the flow (pre_mutate only); its pre_mutate runs after the others'."""
        from cafstore.runner.authoring import mutators

        self._pre_mutate_only("add_decorator")
        if not (isinstance(deco_type, type) and issubclass(deco_type, mutators.FlowMutator)):
            raise FlowError(
                f"{self._who()}: add_decorator({deco_type!r}): cafstore's flows take FlowMutator classes "
                "here; flow decorators such as @project are written on the class."
            )
        mutator = deco_type(*(deco_args or []), **(deco_kwargs or {}))
        found = mutators.flow_mutators(self._flow_cls)
        same = [m for m in found if m.decorator_name == mutator.decorator_name]
        if same:
            if duplicates == self.ERROR:
                raise FlowError(f"{self._who()}: the flow already has the FlowMutator {mutator.decorator_name}.")
            if duplicates != self.OVERRIDE:
                return None
            found[:] = [m for m in found if m not in same]
        found.append(mutator)
        mutator.external_init(f"flow {self._flow_cls.__name__}")
        return mutator

    def remove_decorator(
        self, deco_name: str, deco_args: Optional[List[Any]] = None, deco_kwargs: Optional[Dict[str, Any]] = None
    ) -> bool:
        """FlowMutators cannot be removed (as in Metaflow); there is nothing else to remove."""
        self._pre_mutate_only(f"remove_decorator({deco_name!r})")
        if self.has_decorator(deco_name):
            raise FlowError(f"{self._who()}: the FlowMutator {deco_name!r} cannot be removed.")
        return False

    def __getattr__(self, name: str) -> Any:
        """``mutable_flow.start`` (a step), ``mutable_flow.alpha`` (a parameter or configuration)."""
        import inspect

        from cafstore.runner.authoring.parameters import Parameter

        if not name.startswith("_"):
            attr = inspect.getattr_static(self._flow_cls, name, None)
            attr = getattr(attr, "__func__", attr)
            if decorators.is_step(attr):
                return MutableStep(self._flow_cls, name, self._pre_mutate, self._inserted_by)
            if isinstance(attr, Parameter):
                configs = dict(self.configs)
                return configs.get(attr.name, attr) if attr.IS_CONFIG_PARAMETER else attr
        raise AttributeError(f"flow {self._flow_cls.__name__} has no step, parameter or configuration {name!r}")

    def _pre_mutate_only(self, what: str) -> None:
        if not self._pre_mutate:
            raise FlowError(f"{self._who()}: {what} is allowed in pre_mutate only, not in mutate.")

    def _who(self) -> str:
        return f"{self._inserted_by} on flow {self._flow_cls.__name__}"


def subclass_named(base: type, name: str) -> Optional[type]:
    """The subclass of ``base`` defined so far (at any depth) whose name is ``name``: decorators and
    mutators are added by name, as Metaflow allows."""
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def step_names(flow_cls: type) -> List[str]:
    """The names of the flow's steps (as ``dir`` lists them, like Metaflow).

    Read without running descriptors: ``_graph`` is one, and it parses the flow's source, which
    every task would otherwise pay for (about 3 ms) just to learn the flow has no mutators.
    """
    return [name for name in dir(flow_cls) if decorators.is_step(inspect.getattr_static(flow_cls, name, None))]


def _full_name(deco: Any) -> str:
    return f"{type(deco).__module__}.{deco.decorator_name}"


def _matches(spec: Spec, query: str) -> bool:
    return spec[1] == query if "." in query else spec[0] == query
