"""Tunables of the runner, in one object instead of module globals.

Each field has a default, an environment variable, and (for the two that
Metaflow users know) a command-line option of ``run`` that wins over both.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

from cafstore.exception import CommandLineError

START_METHODS = ("fork", "spawn")


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """How a run is executed.

    ``max_workers``: tasks running at once (``--max-workers``,
    ``CAFSTORE_RUN_MAX_WORKERS``).  ``max_num_splits``: the widest foreach a
    run may start (``--max-num-splits``, ``CAFSTORE_RUN_MAX_NUM_SPLITS``).
    ``start_method``: ``fork`` (a task is a fork of the warm scheduler) or
    ``spawn`` (a fresh ``python -m cafstore.runner.execution.executors.spawn_main``), forced with
    ``CAFSTORE_START_METHOD``; spawn is the default only where fork does not
    exist.  ``recheck_max_bytes``: an inherited artifact a step *read* but did
    not assign is re-serialised at the end of the task, to catch in-place
    changes (``self.items.append(x)``), if it is at most this big
    (``CAFSTORE_RECHECK_MAX_BYTES``; docs/runner.md explains the trade-off).
    ``kill_grace``: seconds between SIGTERM and SIGKILL when tasks are stopped,
    and the slack a hung task gets past its ``@timeout`` before it is killed.
    """

    max_workers: int = 16
    max_num_splits: int = 100
    start_method: str = "fork" if hasattr(os, "fork") else "spawn"
    recheck_max_bytes: int = 1 << 20
    kill_grace: float = 3.0

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **overrides: Optional[int]) -> "RunnerConfig":
        """Defaults, then the environment, then ``overrides`` that are not None (the command line)."""
        env = os.environ if environ is None else environ
        kwargs: dict = {}
        for field, var in (("max_workers", "CAFSTORE_RUN_MAX_WORKERS"),
                           ("max_num_splits", "CAFSTORE_RUN_MAX_NUM_SPLITS"),
                           ("recheck_max_bytes", "CAFSTORE_RECHECK_MAX_BYTES")):
            raw = env.get(var)
            if raw:
                kwargs[field] = _positive_int(raw, var, allow_zero=field == "recheck_max_bytes")
        method = env.get("CAFSTORE_START_METHOD")
        if method:
            if method not in START_METHODS:
                raise CommandLineError(
                    f"CAFSTORE_START_METHOD is {method!r}; it must be one of {', '.join(START_METHODS)}."
                )
            if method == "fork" and not hasattr(os, "fork"):
                raise CommandLineError("CAFSTORE_START_METHOD=fork, but this platform cannot fork; use spawn.")
            kwargs["start_method"] = method
        for field, value in overrides.items():
            if value is not None:
                option = "--" + field.replace("_", "-")
                kwargs[field] = _positive_int(str(value), option)
        return cls(**kwargs)


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
