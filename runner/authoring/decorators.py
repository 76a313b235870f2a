"""``@step`` and the step decorators ``@retry``, ``@catch``, ``@timeout``, ``@cache``,
``@environment``, ``@resources`` (accepted, ignored locally) and ``@parallel`` (refused).

Each decorator only writes down its options on the function it decorates
and returns that same function, so they stack in any order with ``@step``.
The runner reads the options back with :func:`step_options`; whether a
function is a step at all is :func:`is_step`.  Bad options are not raised
while the flow file is being imported (that would print a bare traceback
before cafstore's command line runs); they are kept on the function and
reported by :func:`check_options` as one clear error naming the file, line
and step.  An option that uses a configuration (``@retry(times=cfg.n)``)
waits until the configurations are read: :func:`resolve_deferred`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional

from cafstore.exception import FlowError

#: Metaflow's limit on a task's attempts: the first, its retries and @catch's fallback.
MAX_ATTEMPTS = 6
#: Extra attempts @catch adds when a task's process keeps dying (Metaflow's NUM_FALLBACK_RETRIES).
CATCH_FALLBACK_ATTEMPTS = 3

_OPTIONS = "_cafstore_options"
_APPLIED = "_cafstore_decorators"  # the names of the decorators a step carries
_ERRORS = "_cafstore_option_errors"
_DEFERRED_ATTR = "_cafstore_deferred"
_SPECS = "_cafstore_decorator_specs"  # [(name, kwargs as written)], in the order applied
#: Functions with options that wait for the configurations (resolve_deferred applies them).
_DEFERRED: List[Callable] = []
#: The attribute ``@step`` sets to True on the function it marks: Metaflow's
#: own name for it, so tools written for Metaflow flows recognise these steps.
STEP_MARKER = "is_step"


def step(func: Callable) -> Callable:
    """Mark a method of a FlowSpec as a step of the flow."""
    if not callable(func):
        raise FlowError(f"@step decorates a method (def name(self): ...), not a {type(func).__name__}.")
    setattr(func, STEP_MARKER, True)
    func.name = func.__name__  # type: ignore[attr-defined]  # Metaflow's: iterating a flow gives steps with .name
    return func


def is_step(func: Any) -> bool:
    """True if ``func`` was marked by ``@step``: the one test for "is this a step", whoever asks."""
    return getattr(func, STEP_MARKER, False) is True


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """What the decorators of one step asked for (defaults: none of them)."""

    retries: int = 0
    minutes_between_retries: float = 0.0
    catch: bool = False
    catch_var: Optional[str] = None
    print_exception: bool = True
    timeout: float = 0.0  # seconds; 0 means none
    timeout_given: tuple = (0, 0, 0)  # (hours, minutes, seconds) as written, for the timeout's message
    cache: bool = False
    environment: Dict[str, str] = dataclasses.field(default_factory=dict)
    resources: Dict[str, float] = dataclasses.field(default_factory=dict)  # @resources, for remote executors

    @property
    def attempts(self) -> int:
        """Attempts that run the step's code: the first and its ``@retry`` retries."""
        return self.retries + 1

    @property
    def max_attempts(self) -> int:
        """Every attempt the scheduler may start: with ``@catch``, fallback attempts follow the
        last one whose process died (as Metaflow's runtime does), so the run can go on; never more
        than Metaflow's limit of attempts."""
        return min(MAX_ATTEMPTS, self.attempts + (CATCH_FALLBACK_ATTEMPTS if self.catch else 0))

    def is_fallback(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (0-based) runs @catch's fallback instead of the step."""
        return self.catch and attempt > self.retries


def _options(func: Callable) -> Dict[str, Any]:
    found = getattr(func, _OPTIONS, None)
    if found is None:
        found = {}
        setattr(func, _OPTIONS, found)
    return found


def _complain(func: Callable, text: str) -> None:
    errors = getattr(func, _ERRORS, None)
    if errors is None:
        errors = []
        setattr(func, _ERRORS, errors)
    errors.append(text)


def _number(value: Any, minimum: float = 0.0) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum


def _whole(value: Any) -> Any:
    """A whole number given as text (``--with retry:times=2``) as an int; anything else unchanged."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _real(value: Any) -> Any:
    """A number given as text as a float; anything else unchanged."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _flag(value: Any) -> Any:
    """``True``/``False`` given as text (``--with catch:print_exception=False``) as a bool."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    return value


def _decorator(
    name: str,
    apply: Callable[[Callable, Dict[str, Any]], None],
    func: Optional[Callable],
    kwargs: Dict[str, Any],
    allowed: List[str],
) -> Callable:
    """Support both ``@name`` and ``@name(...)``."""

    def wrap(target: Callable) -> Callable:
        setattr(target, _APPLIED, applied(target) | {name})
        target.__dict__.setdefault(_SPECS, []).append((name, dict(kwargs)))
        from cafstore.runner.authoring import config_values

        if any(k.startswith(config_values.UNPACK_KEY) for k in kwargs) or config_values.is_delayed(kwargs):
            deferred = getattr(target, _DEFERRED_ATTR, None)
            if deferred is None:
                deferred = []
                setattr(target, _DEFERRED_ATTR, deferred)
                _DEFERRED.append(target)
            deferred.append((name, apply, dict(kwargs), allowed))
            return target
        _apply(name, apply, target, kwargs, allowed)
        return target

    if func is not None:
        if not callable(func):
            raise FlowError(f"@{name} takes keyword options only, e.g. @{name}({allowed[0]}=...).")
        return wrap(func)
    return wrap


def _apply(
    name: str,
    apply: Callable[[Callable, Dict[str, Any]], None],
    target: Callable,
    kwargs: Dict[str, Any],
    allowed: List[str],
) -> None:
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        _complain(
            target, f"@{name} has no option {', '.join(map(repr, unknown))} (its options are {', '.join(allowed)})."
        )
    apply(target, {k: v for k, v in kwargs.items() if k in allowed})


def has_deferred() -> bool:
    """True if some step option waits for the configurations."""
    return bool(_DEFERRED)


def resolve_deferred(flow_cls: type) -> None:
    """Apply the options that waited for the configurations, now that they are active.

    A configuration expression that fails names the step and decorator.
    """
    from cafstore.exception import ConfigError
    from cafstore.runner.authoring.config_values import resolve_kwargs

    mine = {id(value) for klass in flow_cls.__mro__ for value in vars(klass).values()}
    for target in _DEFERRED:
        if id(target) not in mine:
            continue
        for name, apply, kwargs, allowed in getattr(target, _DEFERRED_ATTR, []):
            try:
                resolved = resolve_kwargs(kwargs)
            except ConfigError as exc:
                step_name = getattr(target, "__name__", "?")
                raise ConfigError(f"In @{name} of step {step_name!r} of {flow_cls.__name__}: {exc}") from exc
            _apply(name, apply, target, resolved, allowed)


def retry(func: Optional[Callable] = None, **kwargs: Any) -> Callable:
    """``@retry(times=3, minutes_between_retries=2)``: run a failing step again.

    Each attempt is a fresh task process (so a crash or a timeout is retried
    too); only the last attempt's artifacts are kept.  Metaflow's local runtime
    retries at once whatever the delay says; here a delay given explicitly is
    honoured and the default (Metaflow's 2 minutes, meant for remote schedulers)
    is not, so a ported flow that leaves it out behaves as it did locally.
    """

    def apply(target: Callable, opts: Dict[str, Any]) -> None:
        times = _whole(opts.get("times", 3))
        minutes = _real(opts.get("minutes_between_retries", 0))
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            _complain(target, f"@retry(times={times!r}): times must be a whole number of at least 0.")
            times = 0
        elif times + 2 > MAX_ATTEMPTS:
            _complain(
                target,
                f"@retry(times={times}): the maximum number of retries is @retry(times={MAX_ATTEMPTS - 2}) "
                f"(a task has at most {MAX_ATTEMPTS} attempts, counting the first and @catch's fallback).",
            )
            times = MAX_ATTEMPTS - 2
        if not _number(minutes):
            _complain(target, f"@retry(minutes_between_retries={minutes!r}) must be a number of at least 0.")
            minutes = 0
        _options(target).update(retries=times, minutes_between_retries=float(minutes))

    return _decorator("retry", apply, func, kwargs, ["times", "minutes_between_retries"])


def catch(func: Optional[Callable] = None, **kwargs: Any) -> Callable:
    """``@catch(var='error', print_exception=True)``: let the flow go on when the step fails.

    When the step raises on its last attempt, the task succeeds with the
    artifacts the step had set before the exception, and the exception (a
    :class:`~cafstore.exception.MetaflowExceptionWrapper`) is stored in ``var``
    (None when the step succeeds). When the task's process dies instead, a
    fallback attempt stores :class:`~cafstore.exception.FailureHandledByCatch`.
    """

    def apply(target: Callable, opts: Dict[str, Any]) -> None:
        var = opts.get("var")
        if var is not None and (not isinstance(var, str) or not var.isidentifier() or var.startswith("_")):
            _complain(target, f"@catch(var={var!r}): var must name an artifact, like var='error'.")
            var = None
        _options(target).update(
            catch=True, catch_var=var, print_exception=bool(_flag(opts.get("print_exception", True)))
        )

    return _decorator("catch", apply, func, kwargs, ["var", "print_exception"])


def timeout(func: Optional[Callable] = None, **kwargs: Any) -> Callable:
    """``@timeout(seconds=, minutes=, hours=)``: fail the attempt when the step runs longer (the sum)."""

    def apply(target: Callable, opts: Dict[str, Any]) -> None:
        total = 0.0
        for unit, factor in (("seconds", 1), ("minutes", 60), ("hours", 3600)):
            value = _real(opts.get(unit, 0))
            if not _number(value):
                _complain(target, f"@timeout({unit}={value!r}): {unit} must be a number of at least 0.")
                continue
            total += value * factor
        if total <= 0 and not getattr(target, _ERRORS, None):
            _complain(target, "@timeout needs a positive duration, e.g. @timeout(seconds=30).")
        _options(target).update(
            timeout=total, timeout_given=tuple(_real(opts.get(unit, 0)) for unit in ("hours", "minutes", "seconds"))
        )

    return _decorator("timeout", apply, func, kwargs, ["seconds", "minutes", "hours"])


def cache(func: Optional[Callable] = None, **kwargs: Any) -> Callable:
    """``@cache``: reuse an earlier task with the same code and inputs (runner/reuse/memo.py), even without ``run --cache``."""

    def apply(target: Callable, opts: Dict[str, Any]) -> None:
        _options(target)["cache"] = True

    return _decorator("cache", apply, func, kwargs, [])


def environment(func: Optional[Callable] = None, **kwargs: Any) -> Callable:
    """``@environment(vars={'NAME': value})``: set environment variables in the task before the step runs.

    Values are turned into strings with ``str()``, as Metaflow does.
    """

    def apply(target: Callable, opts: Dict[str, Any]) -> None:
        found = opts.get("vars", {})
        if not isinstance(found, dict) or not all(isinstance(k, str) and k for k in found):
            _complain(target, f"@environment(vars={found!r}): vars must be a dict of variable names to values.")
            return
        merged = dict(_options(target).get("environment", {}))
        merged.update({key: str(value) for key, value in found.items()})
        _options(target)["environment"] = merged

    return _decorator("environment", apply, func, kwargs, ["vars"])


def resources(func: Optional[Callable] = None, **kwargs: Any) -> Callable:
    """``@resources(cpu=, gpu=, disk=, memory=, shared_memory=)``: accepted and ignored locally, as in Metaflow.

    Local runs use this machine as it is; the options only matter to remote compute: the
    ``dask`` executor asks Dask for a worker that declares them (docs/scale-out.md).
    Numbers (``memory``/``disk`` in MB, as in Metaflow); None leaves one out.
    """

    def apply(target: Callable, opts: Dict[str, Any]) -> None:
        found: Dict[str, float] = {}
        for key, value in opts.items():
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = -1.0
            if not number >= 0:
                _complain(target, f"@resources({key}={value!r}): {key} must be a number of at least 0.")
                return
            found[key] = number
        _options(target)["resources"] = found

    return _decorator("resources", apply, func, kwargs, ["cpu", "gpu", "disk", "memory", "shared_memory"])


def parallel(func: Optional[Callable] = None, **kwargs: Any) -> Callable:
    """``@parallel``: importable so flows load, but refused when the flow is checked (not supported)."""

    def apply(target: Callable, opts: Dict[str, Any]) -> None:
        _complain(
            target,
            "@parallel (multi-node gang steps, with self.next(..., num_parallel=N)) is not supported by "
            "cafstore; use a foreach over a list of the node indices instead.",
        )

    return _decorator("parallel", apply, func, kwargs, [])


def applied(func: Callable) -> frozenset:
    """The names of the step decorators on ``func`` (``--with`` skips the ones it already has)."""
    return frozenset(getattr(func, _APPLIED, ()))


def written_specs(func: Callable) -> List[tuple]:
    """``(name, kwargs)`` of each step decorator on ``func``, in the order applied (mutators list them)."""
    return [(name, dict(kwargs)) for name, kwargs in getattr(func, _SPECS, ())]


def forget_decorators(func: Callable) -> None:
    """Drop every step decorator's options from ``func``, so the ones kept can be applied afresh
    (a mutator's ``remove_decorator``); options waiting for configurations are dropped too."""
    for attr in (_OPTIONS, _APPLIED, _ERRORS, _DEFERRED_ATTR, _SPECS):
        func.__dict__.pop(attr, None)
    if func in _DEFERRED:
        _DEFERRED.remove(func)


def step_options(func: Callable) -> StepOptions:
    """The options the decorators of ``func`` recorded."""
    return StepOptions(**getattr(func, _OPTIONS, {}))


def check_options(flow_cls: type, graph: Any) -> None:
    """Raise FlowError for the first bad decorator option of any step (file:line and step).

    ``@catch`` on a foreach split or a switch is refused here, before anything
    runs, as Metaflow does: a caught split would have no list of items to split
    over, a caught switch no value to choose by.
    """
    for node in graph:
        func = getattr(flow_cls, node.name, None)
        errors = getattr(func, _ERRORS, None)
        if errors:
            raise FlowError(f"{node.file}:{node.lineno}: step {node.name!r}: {errors[0]}")
        if func is not None and node.type == "foreach" and step_options(func).catch:
            raise FlowError(
                f"{node.file}:{node.lineno}: step {node.name!r}: @catch is not supported on a foreach split "
                "step (a caught split would have no list of items to split over). Move the risky code to "
                "a step before the split, or catch the exception inside the step."
            )
        if func is not None and node.type == "split-switch" and step_options(func).catch:
            raise FlowError(
                f"{node.file}:{node.lineno}: step {node.name!r}: @catch is not supported on a switch step "
                "(a caught switch would have no condition value to choose its next step by). Move the risky "
                "code to a step before the switch, or catch the exception inside the step."
            )
