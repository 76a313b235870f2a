"""Executors: where task attempts run, and the registry that names them.

``--executor NAME`` (or ``CAFSTORE_EXECUTOR``) picks one by name; the
runner builds it with :func:`create` and knows nothing else about it.
Registered here:

- ``fork`` (:mod:`.fork`): a fork of the warm scheduler per attempt; the
  default wherever ``os.fork`` exists;
- ``spawn`` (:mod:`.spawn`): a fresh interpreter per attempt;
- ``dask`` (:mod:`.dask`): a Dask distributed cluster (``pip install 'cafstore[dask]'``).

A new executor is one module with an :class:`~.base.Executor` subclass,
whose constructor takes the keywords :func:`create` passes, plus one
:func:`register` line below.  It then appears in ``--executor``'s choices
and the contract suite (``tests/contracts/test_executor_contract.py``) runs
over it.  Factories named as ``"module:attribute"`` are imported on first
use, so listing the executors (``--help``) imports none of them.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, Dict, List, Union

from cafstore.exception import CommandLineError
from cafstore.runner.execution.executors.base import Executor, lost_attempt

ExecutorFactory = Callable[..., Executor]
_FACTORIES: Dict[str, Union[str, ExecutorFactory]] = {}

__all__ = [
    "Executor",
    "ExecutorFactory",
    "create",
    "default_name",
    "lost_attempt",
    "names",
    "register",
    "unknown_executor",
    "unregister",
]


def register(name: str, factory: Union[str, ExecutorFactory], replace: bool = False) -> None:
    """Make an executor available as ``--executor NAME``.

    ``factory`` is called as ``factory(flow_cls=..., kill_grace=..., echo=...)``
    and returns an :class:`Executor`; give it as ``"package.module:Class"`` to
    import its module only when it is chosen.  A name is registered once
    (``replace=True`` to swap the implementation on purpose).
    """
    if name in _FACTORIES and not replace:
        raise ValueError(f"an executor named {name!r} is already registered (pass replace=True to replace it)")
    _FACTORIES[name] = factory


def unregister(name: str) -> None:
    """Forget the executor ``name`` (a test's or a plugin's own registration); unknown names are an error."""
    if _FACTORIES.pop(name, None) is None:
        raise ValueError(f"no executor named {name!r} is registered")


def names() -> List[str]:
    """The registered executors, in the order they were registered."""
    return list(_FACTORIES)


def default_name() -> str:
    """``fork`` where this platform can fork, else ``spawn``."""
    return "fork" if "fork" in _FACTORIES else "spawn"


def unknown_executor(name: str, where: str) -> CommandLineError:
    """The error for an executor name that is not registered; ``where`` says who asked for it."""
    return CommandLineError(
        f"{where} is {name!r}, but there is no executor of that name"
        + (" on this platform" if name == "fork" else "")
        + f". The available executors are: {', '.join(names())} (the default is {default_name()})."
    )


def create(name: str, *, flow_cls: type, kill_grace: float = 3.0, echo: bool = True, **settings: Any) -> Executor:
    """A new executor of the registered kind ``name`` for one run of ``flow_cls``.

    ``kill_grace``: seconds between SIGTERM and SIGKILL when attempts are
    stopped.  ``echo``: print the tasks' output live as well as storing it.
    ``settings``: options only that executor takes (``scheduler_address`` for
    ``dask``), passed on as keywords.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise unknown_executor(name, "The executor")
    if isinstance(factory, str):
        module_name, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
    return factory(flow_cls=flow_cls, kill_grace=kill_grace, echo=echo, **settings)


if hasattr(os, "fork"):
    register("fork", "cafstore.runner.execution.executors.fork:LocalForkExecutor")
register("spawn", "cafstore.runner.execution.executors.spawn:LocalSpawnExecutor")
register("dask", "cafstore.runner.execution.executors.dask:DaskExecutor")
