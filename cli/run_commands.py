"""Commands that run flows: ``cafstore run FLOWFILE [ARGS]...``, ``cafstore resume FLOWFILE [ARGS]...``.

Both load the flow file as ``python FLOWFILE`` would and hand the rest of the
command line to the flow's own command line (cli/flow_commands.py), so the
two spellings can never drift apart.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import List, Tuple

import click

from cafstore.cli.context import CliState, friendly_errors, pass_state
from cafstore.exception import CommandLineError


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("flowfile", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_state
@friendly_errors
def run(state: CliState, flowfile: str, args: Tuple[str, ...]) -> None:
    """Run FLOWFILE: the same as `python FLOWFILE run ARGS...` (see `cafstore run FLOWFILE --help`)."""
    raise SystemExit(run_flow_file(flowfile, _flow_argv(state, "run", args)))


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("flowfile", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_state
@friendly_errors
def resume(state: CliState, flowfile: str, args: Tuple[str, ...]) -> None:
    """Resume a run of FLOWFILE: the same as `python FLOWFILE resume [STEP] ARGS...`
    (see `cafstore resume FLOWFILE --help`)."""
    raise SystemExit(run_flow_file(flowfile, _flow_argv(state, "resume", args)))


COMMANDS = [run, resume]


def _flow_argv(state: CliState, command: str, args: Tuple[str, ...]) -> List[str]:
    """The flow command line for ``cafstore [--store S] COMMAND FLOWFILE ARGS``."""
    return (["--store", state.store_path] if state.store_path else []) + [command, *args]


def run_flow_file(path: str, argv: List[str]) -> int:
    """``python FLOWFILE ARGV...`` in this process; the exit status."""
    from cafstore.cli.flow_commands import run_cli
    from cafstore.runner.authoring.flowspec import FlowSpec
    from cafstore.runner.execution.flowfile import compile_flow_file, new_main_module

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
            sys.stderr.write(
                f"Error: running {os.path.basename(path)} failed before the flow started:\n" + "".join(user)
            )
            return 1
        flows = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, FlowSpec)
            and value is not FlowSpec
            and value.__module__ == "__main__"
        ]
        if len(flows) != 1:
            names = ", ".join(cls.__name__ for cls in flows) or "none"
            raise CommandLineError(
                f"{path} defines {len(flows)} flow classes ({names}) and does not start one "
                "itself; add `if __name__ == '__main__': MyFlow()` at the end of the file."
            )
        return run_cli(flows[0], list(argv), os.path.basename(path))
    finally:
        sys.argv = saved_argv
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
