"""The client's commands on a flow's own command line (`python flow.py logs|dump|tag`)."""

from __future__ import annotations

import click


def add_client_commands(group: click.Group, flow_name: str) -> None:
    """Attach logs, dump and tag for ``flow_name`` to the flow's click group."""
