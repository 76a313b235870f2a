"""``cafstore``: the global command. Subcommands live in small modules and register here."""

from __future__ import annotations

from typing import Optional

import click

import cafstore
from cafstore.cli import (
    client_commands,
    maintenance_commands,
    remote_commands,
    run_commands,
    show_commands,
    store_commands,
    ui_commands,
)
from cafstore.cli.context import CliState


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(cafstore.__version__, prog_name="cafstore")
@click.option(
    "--store",
    "store_path",
    metavar="PATH",
    envvar=None,
    help="Store directory (default: $CAFSTORE_HOME, else the nearest .cafstore/ upward, else ./.cafstore).",
)
@click.pass_context
def cli(ctx: click.Context, store_path: Optional[str]) -> None:
    """cafstore: Metaflow-style flows on a content-addressed artifact store."""
    ctx.obj = CliState(store_path)


# Each module lists its commands in COMMANDS; the group is assembled here, in one place.
for module in (
    store_commands,
    run_commands,
    client_commands,
    maintenance_commands,
    remote_commands,
    show_commands,
    ui_commands,
):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    cli(prog_name="cafstore")


if __name__ == "__main__":
    main()
