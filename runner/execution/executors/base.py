"""The executor interface: the one thing the scheduler knows about where tasks run (design §5).

The scheduler talks to an :class:`Executor` only through ``submit``,
``wait``, ``running``, ``kill`` and ``shutdown``, with plain picklable
:class:`~cafstore.runner.execution.spec.TaskSpec` /
:class:`~cafstore.runner.execution.spec.TaskResult` objects, so a local
process, a fresh interpreter or a distributed worker can run a task without
the scheduler changing.  ``tests/contracts/test_executor_contract.py`` runs
the same contract over every registered executor.
"""

from __future__ import annotations

import abc
from typing import List, Optional

from cafstore.runner.execution.spec import TaskResult, TaskSpec


class Executor(abc.ABC):
    """Runs task attempts and reports how they ended.

    The contract, which every implementation must keep:

    - ``submit(spec, timeout)`` starts one attempt and returns at once; the
      attempt counts in :attr:`running` until :meth:`wait` returns its result.
    - ``wait(timeout)`` returns the results of attempts that ended (at least
      one, unless ``timeout`` seconds passed first or nothing is running), each
      exactly once.  A result is a :class:`TaskResult` of plain data (strings,
      numbers, lists, dicts), whatever happened to the attempt.
    - An attempt that ends normally reports what the task itself returned: the
      record it committed, ``ok`` or ``failed`` with the step's error.
    - An attempt that ends *without* reporting (its process was killed by a
      signal, called ``os._exit``, crashed in C, ran past ``timeout`` and was
      killed) is reported as :func:`lost_attempt` builds it: ``failed``, no
      record (the scheduler writes one), and an error whose message says how
      it died, with ``"lost": True``.
    - A failure of cafstore's own inside the attempt (not the step's) is a
      ``failed`` result whose error has ``user_error: False``, ``internal:
      True`` and the full traceback, never a bare "it died".
    - ``kill()`` stops every running attempt now, including anything the
      attempts started, and forgets them: their results are never returned.
    - ``shutdown()`` releases what the executor holds once the run is over;
      it kills attempts still running.
    """

    @abc.abstractmethod
    def submit(self, spec: TaskSpec, timeout: Optional[float] = None) -> None:
        """Start one attempt. ``timeout``: wall-clock seconds after which it is killed and reported failed."""

    @abc.abstractmethod
    def wait(self, timeout: Optional[float] = None) -> List[TaskResult]:
        """Results of attempts that ended; blocks until at least one did or ``timeout`` seconds passed."""

    @property
    @abc.abstractmethod
    def running(self) -> int:
        """Attempts submitted and not yet returned by :meth:`wait`."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop every running attempt now; their results are discarded."""

    def prepare(self, store_path: str) -> None:  # noqa: B027 - an optional hook: local executors need nothing
        """Check, before the run exists, that attempts can run against the store at ``store_path``
        (a remote executor: that its workers reach the store's blobs); raise a CafstoreError if not."""

    def shutdown(self) -> None:  # noqa: B027 - an optional hook: most executors hold nothing
        """Release resources once the run is over."""


def lost_attempt(
    spec: TaskSpec,
    pid: int,
    message: str,
    traceback: str = "",
    internal: bool = False,
    signal: Optional[int] = None,
    exit_code: Optional[int] = None,
) -> TaskResult:
    """The result of an attempt that ended without reporting one, as every executor must build it.

    ``message`` says how it died (one sentence for the user).  ``internal``:
    the attempt's process reported a failure of cafstore's own (``traceback``
    is then printed in full) instead of just disappearing.  ``signal`` /
    ``exit_code``: what ended the process, for the line the task's stderr log
    gets (``logs.crash_note``).
    """
    error = {
        "type": "cafstore.exception.TaskFailed",
        "message": message,
        "traceback": traceback,
        "headline": "internal error" if internal else "task died",
        "where": "",
        "user_error": not internal,
        "lost": True,
    }
    if internal:
        error["internal"] = True
    if signal is not None:
        error["signal"] = signal
    if exit_code is not None:
        error["exit_code"] = exit_code
    return TaskResult(spec.task_id, spec.step, spec.attempt, "failed", error=error, pid=pid)
