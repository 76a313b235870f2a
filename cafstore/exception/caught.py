"""A caught exception as picklable data, the way Metaflow's ``@catch`` stores it in ``var``.

Kept apart from the exception tree (``cafstore.exception``, which re-exports
both names): the tree says what can go wrong, this module how an exception a
step raised is written down so that any process can read it back.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Dict, Optional


def exception_type_name(exc: BaseException) -> str:
    """``module.Class`` of an exception, as Metaflow spells it (``builtins.KeyError`` stays so).

    The classes above that carry Metaflow's names report Metaflow's own path
    (``metaflow_path``, looked up on the class itself, never inherited), so a
    ported check like ``ex.type == "metaflow.exception.ExternalCommandFailed"``
    holds; a user's subclass of them reports its own module.
    """
    cls = type(exc)
    return cls.__dict__.get("metaflow_path") or f"{cls.__module__}.{cls.__name__}"


class MetaflowExceptionWrapper(Exception):
    """A caught exception as plain, picklable data: ``type``, ``exception`` (its message), ``stacktrace``.

    The exception object itself may not unpickle where the artifact is read
    (a class from the flow's file, an ``__init__`` with extra arguments), so
    only text is kept. ``str()`` is the traceback, as Metaflow's wrapper prints it.
    """

    def __init__(self, exc: Optional[BaseException] = None, stacktrace: Optional[str] = None) -> None:
        super().__init__()
        if exc is not None:
            self.exception = str(exc)
            self.type = exception_type_name(exc)
            if stacktrace is None and sys.exc_info()[0] is not None:
                stacktrace = traceback.format_exc()
            self.stacktrace = stacktrace

    @classmethod
    def from_fields(cls, type_name: str, message: str, stacktrace: Optional[str]) -> "MetaflowExceptionWrapper":
        """The wrapper of an exception known only by its recorded fields (e.g. from another process)."""
        wrapper = cls()
        wrapper.type, wrapper.exception, wrapper.stacktrace = type_name, message, stacktrace or None
        return wrapper

    def __reduce__(self) -> Any:
        return MetaflowExceptionWrapper, (), self.__dict__

    def __getstate__(self) -> Dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: Optional[Dict[str, Any]]) -> None:
        self.__dict__ = dict(state or {})

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        stacktrace = getattr(self, "stacktrace", None)
        if stacktrace:
            return str(stacktrace)
        return f"[no stacktrace]\n{getattr(self, 'type', '')}: {getattr(self, 'exception', '')}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetaflowExceptionWrapper):
            return NotImplemented
        return (getattr(self, "type", None), getattr(self, "exception", None)) == (
            getattr(other, "type", None),
            getattr(other, "exception", None),
        )

    __hash__ = None  # type: ignore[assignment]
