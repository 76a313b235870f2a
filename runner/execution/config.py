"""Tunables of the runner, in one object instead of module globals.

Each field has a default, an environment variable, and (for the ones a
user picks per run) a command-line option of ``run`` that wins over both.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

from cafstore.exception import CommandLineError
from cafstore.runner.execution import executors


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """How a run is executed.

    ``max_workers``: tasks running at once (``--max-workers``,
    ``CAFSTORE_RUN_MAX_WORKERS``).  ``max_num_splits``: the widest foreach a
    run may start (``--max-num-splits``, ``CAFSTORE_RUN_MAX_NUM_SPLITS``).
    ``executor``: the registered executor that runs the tasks
    (``--executor``, ``CAFSTORE_EXECUTOR``, or its old spelling
    ``CAFSTORE_START_METHOD``, which ``CAFSTORE_EXECUTOR`` overrides): ``fork``
    (a task is a fork of the warm scheduler; the default where fork exists)
    or ``spawn`` (a fresh interpreter per task); see
    :mod:`cafstore.runner.execution.executors`.  ``recheck_max_bytes``: an
    inherited artifact a step *read* but did not assign is re-serialised at
    the end of the task, to catch in-place changes
    (``self.items.append(x)``), if it is at most this big
    (``CAFSTORE_RECHECK_MAX_BYTES``; docs/runner.md explains the trade-off).
    ``kill_grace``: seconds between SIGTERM and SIGKILL when tasks are stopped,
    and the slack a hung task gets past its ``@timeout`` before it is killed
    (``CAFSTORE_RUN_KILL_GRACE``).  ``dask_scheduler``: with the ``dask`` executor, the
    scheduler to run on (``--dask-scheduler``, ``CAFSTORE_DASK_SCHEDULER``); None starts a local
    cluster for the run.
    """

    max_workers: int = 16
    max_num_splits: int = 100
    executor: str = dataclasses.field(default_factory=executors.default_name)
    recheck_max_bytes: int = 1 << 20
    kill_grace: float = 3.0
    dask_scheduler: Optional[str] = None

    @classmethod
    def from_env(
        cls, environ: Optional[Mapping[str, str]] = None, executor: Optional[str] = None, **overrides: Optional[int]
    ) -> "RunnerConfig":
        """Defaults, then the environment, then ``executor`` and ``overrides`` that are not None (the command line)."""
        env = os.environ if environ is None else environ
        kwargs: dict = {}
        for field, var in (
            ("max_workers", "CAFSTORE_RUN_MAX_WORKERS"),
            ("max_num_splits", "CAFSTORE_RUN_MAX_NUM_SPLITS"),
            ("recheck_max_bytes", "CAFSTORE_RECHECK_MAX_BYTES"),
        ):
            raw = env.get(var)
            if raw:
                kwargs[field] = _positive_int(raw, var, allow_zero=field == "recheck_max_bytes")
        raw = env.get("CAFSTORE_RUN_KILL_GRACE")
        if raw:
            kwargs["kill_grace"] = _seconds(raw, "CAFSTORE_RUN_KILL_GRACE")
        for where, name in (
            ("CAFSTORE_START_METHOD", env.get("CAFSTORE_START_METHOD")),
            ("CAFSTORE_EXECUTOR", env.get("CAFSTORE_EXECUTOR")),
            ("--executor", executor),
        ):
            if name:  # later ones win: the old variable, the new one, the command line
                if name not in executors.names():
                    raise executors.unknown_executor(name, where)
                kwargs["executor"] = name
        if env.get("CAFSTORE_DASK_SCHEDULER"):
            kwargs["dask_scheduler"] = env["CAFSTORE_DASK_SCHEDULER"]
        for field, value in overrides.items():
            if value is not None:
                option = "--" + field.replace("_", "-")
                kwargs[field] = _positive_int(str(value), option)
        return cls(**kwargs)


def _seconds(raw: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise CommandLineError(f"{where} is {raw!r}, but it must be a number of seconds (0 or more), e.g. 3.")
    return value


def _positive_int(raw: str, where: str, allow_zero: bool = False) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not allow_zero):
        raise CommandLineError(
            f"{where} is {raw!r}, but it must be a whole number of at least {0 if allow_zero else 1}."
        )
    return value
