"""User-defined step decorators: ``UserStepDecorator`` and ``@user_step_decorator``.

A user decorator does not replace the step function: it is recorded on it
(so the graph, ``@retry`` and the other options still see the step as
written) and the task wraps the step call in it (:func:`call_wrapped`).
Outermost first, each decorator's ``pre_step`` runs, then what it wraps,
then its ``post_step``, which sees the exception (if any) and decides
whether it stands.

Mutators (``StepMutator``, ``FlowMutator``), which add and remove these
decorators before the flow runs, live in :mod:`.mutators`; they find the
decorator classes by name (:func:`.mutable.subclass_named`).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from cafstore.exception import FlowError

_USER = "_cafstore_user_decorators"


def _is_step_function(obj: Any) -> bool:
    return callable(obj) and getattr(obj, "is_step", False) is True


class UserStepDecorator:
    """Subclass it and override ``init``, ``pre_step`` and/or ``post_step``.

    Use it as ``@MyDecorator`` or ``@MyDecorator(key=value)`` above ``@step``; the keyword
    arguments reach ``init(**kwargs)``. Each task gets its own copy (``copy.copy``).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        if len(args) == 1 and not kwargs and _is_step_function(args[0]):
            self._setup((), {})
            return self(args[0])  # bare @MyDecorator: register and give the step back
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not hasattr(self, "_kwargs"):
            self._setup(args, kwargs)

    def _setup(self, args: Any, kwargs: Dict[str, Any]) -> None:
        self._args = tuple(args)
        self._kwargs = dict(kwargs)
        self._skip_step: Any = False
        self.init(*args, **kwargs)

    def __call__(self, step: Callable) -> Callable:
        if not _is_step_function(step):
            raise FlowError(f"@{type(self).__name__} decorates a step: put it above @step.")
        found = step.__dict__.setdefault(_USER, [])
        found.append(self)
        return step

    @property
    def decorator_name(self) -> str:
        return type(self).__name__

    def get_args_kwargs(self) -> Tuple[List[Any], Dict[str, Any]]:
        """The decorator's arguments as written (Metaflow's name for it)."""
        return list(self._args), dict(self._kwargs)

    def init(self, *args: Any, **kwargs: Any) -> None:
        """Called once with the decorator's arguments; override to check or keep them."""

    def pre_step(self, step_name: str, flow: Any, inputs: Any = None) -> Optional[Callable]:
        """Before the step: return None to run it, or a function to run instead (same arguments)."""
        return None

    def post_step(self, step_name: str, flow: Any, exception: Optional[BaseException] = None) -> Any:
        """After the step: return the exception that stands (None: the step succeeded), or a tuple
        ``(exception, next_kwargs)``."""
        return exception, None

    @property
    def skip_step(self) -> Any:
        """Set in ``pre_step`` to True (or a dict) to skip what this decorator wraps."""
        return self._skip_step

    @skip_step.setter
    def skip_step(self, value: Any) -> None:
        self._skip_step = value


def user_step_decorator(func: Optional[Callable] = None, **kwargs: Any) -> Any:
    """Turn a generator ``f(step_name, flow, inputs[, attributes])`` into a step decorator.

    Code before its one ``yield`` runs before the step, code after it after; the ``yield``
    raises the step's exception (catch it to let the step succeed). Yielding a function runs
    it instead of the step; yielding a dict skips the step. Not yielding at all skips it too.
    """
    import inspect  # only here: it costs ~15 ms to import

    if func is None:
        return lambda f: user_step_decorator(f, **kwargs)
    if not inspect.isgeneratorfunction(func):
        raise FlowError(f"@user_step_decorator decorates a generator function (with one yield), not {func!r}.")
    arg_count = len(inspect.signature(func).parameters)
    if arg_count not in (3, 4):
        raise FlowError(
            f"@user_step_decorator: {func.__name__} must take (step_name, flow, inputs) or "
            "(step_name, flow, inputs, attributes)."
        )

    class _GeneratorDecorator(UserStepDecorator):
        def init(self, *args: Any, **attributes: Any) -> None:
            if args:
                raise FlowError(f"@{func.__name__} takes keyword arguments only.")
            if attributes and arg_count != 4:
                raise FlowError(
                    f"@{func.__name__}(...) has arguments, so {func.__name__} must take a fourth parameter, attributes."
                )
            self._attributes = attributes
            self._running: Any = None

        @property
        def decorator_name(self) -> str:
            return func.__name__

        def pre_step(self, step_name: str, flow: Any, inputs: Any = None) -> Optional[Callable]:
            args = (step_name, flow, inputs) + ((self._attributes,) if arg_count == 4 else ())
            self._running = func(*args)
            try:
                value = next(self._running)
            except StopIteration:
                self.skip_step = True  # never yielded: the step does not run
                return None
            if isinstance(value, dict):
                self.skip_step = value or True
                return None
            return value

        def post_step(self, step_name: str, flow: Any, exception: Optional[BaseException] = None) -> Any:
            if self._running is None:
                return exception
            try:
                if exception is not None:
                    self._running.throw(exception)
                else:
                    next(self._running)
            except StopIteration as stop:
                return stop.value  # what the generator returned (None: no exception stands)
            except Exception as raised:  # noqa: BLE001 - re-raised or replaced by the generator
                return raised
            raise FlowError(f"@{func.__name__} yielded more than once; a user step decorator yields once.")

    _GeneratorDecorator.__name__ = _GeneratorDecorator.__qualname__ = func.__name__
    _GeneratorDecorator.__module__ = func.__module__

    def apply(*args: Any, **attributes: Any) -> Any:
        if len(args) == 1 and not attributes and _is_step_function(args[0]):
            return _GeneratorDecorator()(args[0])
        return _GeneratorDecorator(*args, **attributes)

    apply.__name__ = func.__name__
    apply.__doc__ = func.__doc__
    apply.decorator_class = _GeneratorDecorator  # type: ignore[attr-defined]  # mutators add it by this
    return apply


def user_decorators(func: Callable) -> List[UserStepDecorator]:
    """The user decorators of a step, outermost first."""
    return list(reversed(getattr(func, _USER, [])))


def attached(func: Callable) -> List[UserStepDecorator]:
    """The step's own list of user decorators, innermost first: mutators edit it in place."""
    found: List[UserStepDecorator] = func.__dict__.setdefault(_USER, [])
    return found


def call_wrapped(flow: Any, step_name: str, call: Callable[[], Any], inputs: Any = None) -> bool:
    """Run ``call`` (the step) inside the step's user decorators, as Metaflow's task does.

    ``pre_step`` runs outermost first until one skips the step or returns a replacement; then
    the step (or the replacement) runs; then the ``post_step`` of each decorator that ran, in
    reverse, each seeing the exception so far and returning the one that stands.  Returns True
    when the step's own ``self.next`` must be taken as called: the step was skipped or replaced
    with such a request, or an exception was raised and then gobbled.
    """
    import copy

    ran: List[UserStepDecorator] = []
    replacement: Optional[Callable] = None
    next_request: Any = None
    for deco in (copy.copy(d) for d in user_decorators(getattr(type(flow), step_name))):
        deco.skip_step = False
        replacement = deco.pre_step(step_name, flow, inputs)
        ran.append(deco)
        if deco.skip_step:
            next_request = deco.skip_step
            break
        if replacement is not None:
            break
    raised: Optional[BaseException] = None
    had_raised = False
    try:
        if next_request is None:
            if replacement is not None:
                args = (flow,) if inputs is None else (flow, inputs)
                next_request = replacement(*args) or None
            else:
                call()
    except Exception as exc:  # noqa: BLE001 - handed to the post_steps, which decide
        raised, had_raised = exc, True
    for deco in reversed(ran):
        try:
            result = deco.post_step(step_name, flow, raised)
        except Exception as exc:  # noqa: BLE001
            result = exc
        if result is None:
            raised = None
        elif isinstance(result, BaseException):
            raised = result
        elif isinstance(result, tuple) and len(result) == 2:
            raised, next_request = result
        else:
            raise FlowError(
                f"post_step of @{deco.decorator_name} on step {step_name!r} returned {result!r}; it must "
                "return an exception (or None), or a tuple (exception, next_arguments)."
            )
    if raised is not None:
        raise raised
    if next_request not in (None, False) and next_request not in (True, {}):
        raise FlowError(
            f"A user decorator of step {step_name!r} asked for self.next(**{next_request!r}); cafstore only "
            "takes the step's own transition (skip with True or {})."
        )
    return next_request not in (None, False) or had_raised
