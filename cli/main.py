"""``cafstore``: the global command. Subcommands live in small modules and register here.

A command's module is imported only when that command runs (or ``--help`` lists them all):
``cafstore log`` should not pay for importing gc, remotes and the UI. ``SUBCOMMANDS`` names
each module's commands; tests/test_cli_commands.py checks it against the modules' own
``COMMANDS`` lists, so the two cannot drift apart.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional

import click

import cafstore
from cafstore.cli.context import CliState

#: module of cafstore.cli -> the names of the commands it lists in COMMANDS, in help order.
SUBCOMMANDS: Dict[str, List[str]] = {
    "store_commands": ["init", "fsck", "stats"],
    "run_commands": ["run", "resume"],
    "client_commands": ["logs", "log", "dump", "ls", "tag", "namespace"],
    "maintenance_commands": ["gc", "pin", "unpin", "rm", "undelete", "dedup"],
    "remote_commands": ["remote", "push", "pull", "clone"],
    "show_commands": ["show"],
    "ui_commands": ["ui", "report"],
}
_MODULE_OF = {name: module for module, names in SUBCOMMANDS.items() for name in names}


def load_commands(module: str) -> Dict[str, click.Command]:
    """The commands ``cafstore.cli.<module>`` lists in its COMMANDS, by name."""
    return {command.name or "": command for command in importlib.import_module(f"cafstore.cli.{module}").COMMANDS}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (see the module's docstring)."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted({*_MODULE_OF, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name not in self.commands and cmd_name in _MODULE_OF:
            for name, command in load_commands(_MODULE_OF[cmd_name]).items():
                self.add_command(command, name)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def main(**kwargs: Any) -> None:
    cli(prog_name="cafstore", **kwargs)


if __name__ == "__main__":
    main()
