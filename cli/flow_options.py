"""The options of a flow's command line that do not depend on the run being made: one ``--name`` per
parameter, ``--executor`` (and ``--dask-scheduler``), ``@project``'s ``--branch``/``--production``, and the Metaflow top-level
options cafstore accepts and ignores (so a script written for Metaflow's local mode runs unchanged).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import click

from cafstore.runner.authoring.parameters import IncludeFile, flow_parameters


def parameter_options(group: click.Group, flow_cls: type) -> None:
    """``run``'s ``--name`` option for each parameter of the flow as it is now (mutators may add
    some once the configurations are read, before ``run``'s own options are parsed)."""
    run, resume = group.commands["run"], group.commands["resume"]
    for command in (run, resume):
        command.params[:] = [p for p in command.params if not (p.name or "").startswith("param__")]
    taken = {opt for p in run.params for opt in getattr(p, "opts", [])}
    for attr, param in reversed(flow_parameters(flow_cls)):
        if param.IS_CONFIG_PARAMETER:
            continue  # set by the top-level --config/--config-value options
        if not param.errors and param.option not in taken:  # bad ones are reported by check_declarations
            taken.add(param.option)
            run.params.insert(0, parameter_option(attr, param))
            # resume accepts them only to refuse them clearly: parameters cannot change on resume.
            resume.params.insert(0, parameter_option(attr, param, hidden=True))


def executor_option(command: Any) -> Any:
    """``--executor NAME``; the names come from the executors' registry (checked by RunnerConfig, with the
    same message as a bad ``CAFSTORE_EXECUTOR``)."""
    from cafstore.runner.execution import executors

    choices = ", ".join(executors.names())
    command = click.option(
        "--dask-scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        expose_value=False,
        callback=_dask_scheduler,
        help="With --executor dask: the scheduler of the cluster to run on [default: $CAFSTORE_DASK_SCHEDULER, "
        "else a local cluster started for the run].",
    )(command)
    return click.option(
        "--executor",
        metavar="NAME",
        default=None,
        help=f"Where tasks run: {choices} [default: {executors.default_name()}, or $CAFSTORE_EXECUTOR].",
    )(command)


def _dask_scheduler(ctx: Any, param: Any, value: Optional[str]) -> None:
    """``--dask-scheduler`` is the command-line spelling of CAFSTORE_DASK_SCHEDULER (what the runner reads)."""
    if value:
        os.environ["CAFSTORE_DASK_SCHEDULER"] = value


# Top-level options of Metaflow's command line that choose services cafstore
# does not have (a metadata service, a remote datastore, an environment
# manager, an event logger, a monitor): a flow run by a script written for
# Metaflow's local mode passes them, so they are accepted and have no effect.
_IGNORED_TOP_OPTIONS = ("--metadata", "--datastore", "--datastore-root", "--environment", "--event-logger", "--monitor")


def metaflow_top_options(command: Any) -> Any:
    for name in _IGNORED_TOP_OPTIONS:
        command = click.option(name, default=None, metavar="NAME", hidden=True, expose_value=False)(command)
    return click.option(
        "--quiet/--not-quiet", default=False, help="Suppress unnecessary messages (the banner, headers)."
    )(command)


def add_project_options(group: click.Group) -> None:
    """``--branch`` / ``--production``, top-level options of a ``@project`` flow only, as in Metaflow."""
    group.params.append(
        click.Option(
            ["--branch", "project_branch"],
            default=None,
            metavar="NAME",
            envvar=["CAFSTORE_BRANCH", "METAFLOW_BRANCH"],
            help="The @project branch: test.NAME (prod.NAME with --production) [default: user.<you>].",
        )
    )
    group.params.append(
        click.Option(
            ["--production", "project_production"],
            is_flag=True,
            default=False,
            envvar=["CAFSTORE_PRODUCTION", "METAFLOW_PRODUCTION"],
            help="Use the @project's production branch (prod, or prod.NAME with --branch).",
        )
    )


def parameter_option(attr: str, param: Any, hidden: bool = False) -> click.Option:
    """A ``--name`` option for a parameter; values stay strings until the run converts them."""
    kind = "PATH" if isinstance(param, IncludeFile) else param.type_name.upper()
    parts = [param.help or ""]
    if param.required:
        parts.append("[required]")
    elif param.default is not None and param.show_default and not callable(param.default):
        parts.append(f"[default: {param.default}]")
    parts.append(f"[env: {param.env_var}]")
    return click.Option(
        [param.option, "param__" + attr],
        type=str,
        default=None,
        metavar=kind,
        help=" ".join(p for p in parts if p),
        hidden=hidden,
    )
