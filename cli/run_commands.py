"""Commands that run flows: ``cafstore run FLOWFILE [ARGS]...``, ``cafstore resume FLOWFILE [ARGS]...``."""

from __future__ import annotations

from typing import Tuple

import click

from cafstore.cli.context import CliState, friendly_errors, pass_state


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("flowfile", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_state
@friendly_errors
def run(state: CliState, flowfile: str, args: Tuple[str, ...]) -> None:
    """Run FLOWFILE: the same as `python FLOWFILE run ARGS...` (see `cafstore run FLOWFILE --help`)."""
    from cafstore.runner.execution.flowfile import flow_file_argv, run_flow_file

    raise SystemExit(run_flow_file(flowfile, flow_file_argv(state.store_path, list(args))))


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("flowfile", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_state
@friendly_errors
def resume(state: CliState, flowfile: str, args: Tuple[str, ...]) -> None:
    """Resume a run of FLOWFILE: the same as `python FLOWFILE resume [STEP] ARGS...`
    (see `cafstore resume FLOWFILE --help`)."""
    from cafstore.runner.execution.flowfile import run_flow_file

    argv = (["--store", state.store_path] if state.store_path else []) + ["resume", *args]
    raise SystemExit(run_flow_file(flowfile, argv))


COMMANDS = [run, resume]
