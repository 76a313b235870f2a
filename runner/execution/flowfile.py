"""Loading a flow file by path, as ``python flow.py`` would.

The file runs as the ``__main__`` module, with its directory first on
``sys.path``, so that classes it defines pickle (by value, through
cloudpickle) exactly as they would under ``python flow.py``.  Used by
``cafstore run FLOWFILE`` and by spawned task processes.
"""

from __future__ import annotations

import os
import sys
import traceback
import types
from typing import List, Optional

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
        raise GraphError(f"{path}:{line}: the flow file is not valid Python ({exc.msg}). Fix the syntax error "
                         "on that line first.", file=path, line=line) from exc


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


def run_flow_file(path: str, argv: List[str]) -> int:
    """``python FLOWFILE ARGV...`` in this process; the exit status."""
    from cafstore.cli.flow_commands import run_cli
    from cafstore.runner.authoring.flowspec import FlowSpec

    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise CommandLineError(f"There is no flow file {path!r}.")
    code = compile_flow_file(path)
    saved_main, saved_argv = sys.modules.get("__main__"), sys.argv
    module = new_main_module(path)
    sys.argv = [path, *argv]
    try:
        try:
            exec(code, module.__dict__)
        except SystemExit as exc:  # the flow's MyFlow() ran its command line and exited
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:  # noqa: BLE001 - the user's module failed to import: show where
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            user = [line for line in lines if __file__ not in line]
            sys.stderr.write(f"Error: running {os.path.basename(path)} failed before the flow started:\n"
                             + "".join(user))
            return 1
        flows = [value for value in vars(module).values()
                 if isinstance(value, type) and issubclass(value, FlowSpec) and value is not FlowSpec
                 and value.__module__ == "__main__"]
        if len(flows) != 1:
            names = ", ".join(cls.__name__ for cls in flows) or "none"
            raise CommandLineError(f"{path} defines {len(flows)} flow classes ({names}) and does not start one "
                                   "itself; add `if __name__ == '__main__': MyFlow()` at the end of the file.")
        return run_cli(flows[0], list(argv), os.path.basename(path))
    finally:
        sys.argv = saved_argv
        if saved_main is not None:
            sys.modules["__main__"] = saved_main


def flow_file_argv(store: Optional[str], args: List[str]) -> List[str]:
    """The flow command line for ``cafstore [--store S] run FLOWFILE ARGS``."""
    return (["--store", store] if store else []) + ["run", *args]
