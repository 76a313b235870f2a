"""``@step`` and the step decorators ``@retry``, ``@catch``, ``@timeout``, ``@cache``.

Each decorator only writes down its options on the function it decorates
and returns that same function, so they stack in any order with ``@step``.
The runner reads the options back with :func:`step_options`; whether a
function is a step at all is :func:`is_step`.  Bad options are not raised
while the flow file is being imported (that would print a bare traceback
before cafstore's command line runs); they are kept on the function and
reported by :func:`check_options` as one clear error naming the file, line
and step.
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
#: The attribute ``@step`` sets to True on the function it marks: Metaflow's
#: own name for it, so tools written for Metaflow flows recognise these steps.
STEP_MARKER = "is_step"


def step(func: Callable) -> Callable:
    """Mark a method of a FlowSpec as a step of the flow."""
    if not callable(func):
        raise FlowError(f"@step decorates a method (def name(self): ...), not a {type(func).__name__}.")
    setattr(func, STEP_MARKER, True)
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
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            _complain(
                target, f"@{name} has no option {', '.join(map(repr, unknown))} (its options are {', '.join(allowed)})."
            )
        apply(target, {k: v for k, v in kwargs.items() if k in allowed})
        setattr(target, _APPLIED, applied(target) | {name})
        return target

    if func is not None:
        if not callable(func):
            raise FlowError(f"@{name} takes keyword options only, e.g. @{name}({allowed[0]}=...).")
        return wrap(func)
    return wrap


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


def applied(func: Callable) -> frozenset:
    """The names of the step decorators on ``func`` (``--with`` skips the ones it already has)."""
    return frozenset(getattr(func, _APPLIED, ()))


def step_options(func: Callable) -> StepOptions:
    """The options the decorators of ``func`` recorded."""
    return StepOptions(**getattr(func, _OPTIONS, {}))


def check_options(flow_cls: type, graph: Any) -> None:
    """Raise FlowError for the first bad decorator option of any step (file:line and step).

    ``@catch`` on a foreach split is refused here, before anything runs, as
    Metaflow does: a caught split would have no list of items to split over.
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
