"""Loading a flow file by path, as ``python flow.py`` would.

The file runs as the ``__main__`` module, with its directory first on
``sys.path``, so that classes it defines pickle (by value, through
cloudpickle) exactly as they would under ``python flow.py``.  Used by
``cafstore run FLOWFILE`` and by spawned task processes.
"""

from __future__ import annotations

import os
import sys
import types

from cafstore.exception import CommandLineError, GraphError


def compile_flow_file(path: str) -> types.CodeType:
    """The compiled flow file; a syntax error becomes a GraphError with file:line."""
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError as exc:
        raise CommandLineError(f"Cannot read the flow file {path!r}: {exc.strerror or exc}.") from exc
    try:
        return compile(source, path, "exec")
    except SyntaxError as exc:
        line = exc.lineno or 0
        raise GraphError(
            f"{path}:{line}: the flow file is not valid Python ({exc.msg}). Fix the syntax error on that line first.",
            file=path,
            line=line,
        ) from exc


def new_main_module(path: str) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    sys.path.insert(0, os.path.dirname(path))
    return module


def load_flow_class(path: str, class_name: str) -> type:
    """Import the flow file as ``__main__`` without starting its command line; return the class."""
    from cafstore.runner.authoring.flowspec import loading_for_task

    code = compile_flow_file(path)
    module = new_main_module(path)
    with loading_for_task():
        exec(code, module.__dict__)
    return getattr(module, class_name)
