"""A flow's top-level ``--config NAME FILE`` / ``--config-value NAME JSON`` options, as Metaflow has them.

They are read before any command runs (the flow's decorators may depend on them), so a bad
configuration fails ``run``, ``show`` and the client commands alike, as in Metaflow.
"""

from __future__ import annotations

from typing import Any

import click


def keep_origin_configs(flow_cls: type, values: Any) -> None:
    """A resumed run keeps the origin run's configurations (as Metaflow's resume does)."""
    from cafstore.runner.authoring.configs import configure, flow_configs

    found = flow_configs(flow_cls)
    if found:
        configure(flow_cls, {param.name: (values.get(attr), param.plain) for attr, param in found})


def config_options(command: Any) -> Any:
    """Metaflow's top-level ``--config NAME FILE`` and ``--config-value NAME JSON`` (repeatable)."""
    command = click.option(
        "--config-value",
        "config_values",
        nargs=2,
        multiple=True,
        metavar="NAME JSON",
        help="A configuration's value as JSON (repeatable) [env: METAFLOW_FLOW_CONFIG_VALUE, a JSON object].",
    )(command)
    return click.option(
        "--config",
        "config_files",
        nargs=2,
        multiple=True,
        metavar="NAME FILE",
        help="Read a configuration from FILE (repeatable) [env: METAFLOW_FLOW_CONFIG, a JSON object].",
    )(command)


def read_flow_configs(flow_cls: type, files: Any, values: Any) -> None:
    """Read the flow's configurations (even when it has none: options may wait on config_expr)."""
    from cafstore.runner.authoring.configs import configure, read_configs
    from cafstore.schema import current_user

    configure(flow_cls, read_configs(flow_cls, list(files or ()), list(values or ()), current_user()))
