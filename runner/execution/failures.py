"""What a task process does about failure: ``@timeout``, ``@catch`` and its fallback attempt.

Retries themselves are the scheduler's (each attempt is a fresh process);
this module decides, inside one attempt, what the step's code runs under and
what becomes of what it raised. The rules are Metaflow's local runtime's:

- ``@timeout`` raises :class:`~cafstore.exception.TimeoutException` inside the
  step when it runs too long, so ``@retry`` retries it and ``@catch`` catches it.
- ``@catch`` acts only on the last attempt that runs the step's code: the task
  then succeeds with every artifact the step set before raising, the exception
  stored in ``var`` as a :class:`~cafstore.exception.MetaflowExceptionWrapper`.
  A step that succeeds gets ``var = None``.
- An attempt after that last one exists only because the process died (killed,
  segfault, ``os._exit``): it runs a fallback instead of the step, which raises
  :class:`~cafstore.exception.FailureHandledByCatch`, caught like any other.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Dict, Iterator

from cafstore.exception import FailureHandledByCatch, MetaflowExceptionWrapper, TimeoutException
from cafstore.runner.authoring.artifacts import TaskState
from cafstore.runner.authoring.decorators import StepOptions

_HERE = os.path.abspath(__file__)


def step_body(flow: Any, spec: Any, options: StepOptions) -> Callable[[], None]:
    """The callable the attempt runs: the step, or @catch's fallback on an attempt after the last."""
    if options.is_fallback(spec.attempt):

        def fallback() -> None:
            raise FailureHandledByCatch(spec.attempt)

        return fallback
    method = getattr(flow, spec.step)
    if spec.is_join:
        inputs = flow.__dict__["_cafstore_state"].inputs
        return lambda: method(inputs)
    return method


def call_with_timeout(body: Callable[[], None], spec: Any, options: StepOptions) -> None:
    """Run ``body`` under the step's ``@timeout`` (a SIGALRM in the main thread; the executor's hard
    limit, a little later, covers a step that swallows the exception or blocks signals)."""
    if (
        options.timeout <= 0
        or options.is_fallback(spec.attempt)
        or threading.current_thread() is not threading.main_thread()
    ):
        body()
        return

    def on_alarm(signum: int, frame: Any) -> None:
        hours, minutes, seconds = (_plain(v) for v in options.timeout_given)
        head = f"Step {spec.step} timed out after {hours} hours, {minutes} minutes, {seconds} seconds"
        stack = "\n".join(f">  {part}" for part in _user_stack(frame))
        raise TimeoutException(f"{head}\nStack when the timeout was raised:\n{stack}")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, options.timeout)
    try:
        body()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def catches(spec: Any, options: StepOptions) -> bool:
    """Whether a failure of this attempt is caught: @catch, and no step-code attempt is left."""
    return options.catch and spec.attempt >= options.retries


def rescue(
    flow: Any, state: TaskState, spec: Any, options: StepOptions, exc: BaseException, error: Dict[str, Any]
) -> None:
    """Turn the failed attempt into a successful one, as ``@catch`` does.

    The artifacts the step set before it raised stay (``flow`` is kept as it
    is); the task goes on to the step's successors as if ``self.next`` had
    been called.
    """
    if options.print_exception:
        lines = "".join(f">  {line}\n" for line in error["traceback"].rstrip("\n").splitlines())
        sys.stderr.write(f"@catch caught an exception from {spec.pathspec}\n{lines}")
    wrapper = MetaflowExceptionWrapper(exc, stacktrace=error["traceback"] or None)
    if options.catch_var:
        setattr(flow, options.catch_var, wrapper)
    state.transition = (list(spec.node.get("out_funcs", [])), None)


def succeeded(flow: Any, options: StepOptions) -> None:
    """A step under ``@catch(var=...)`` that did not raise stores ``var = None``, as Metaflow's does."""
    if options.catch and options.catch_var:
        setattr(flow, options.catch_var, None)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _user_stack(frame: Any) -> Iterator[str]:
    for line in traceback.format_stack(frame):
        if _HERE not in line:
            yield from line.rstrip("\n").splitlines()
