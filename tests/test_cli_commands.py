"""The global command loads a subcommand's module only when that command runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cafstore.cli import main


@pytest.mark.parametrize("module", sorted(main.SUBCOMMANDS))
def test_the_table_of_subcommands_matches_each_module(module: str) -> None:
    assert list(main.load_commands(module)) == main.SUBCOMMANDS[module]


def test_every_command_is_listed_and_reachable() -> None:
    import click

    ctx = click.Context(main.cli)
    names = main.cli.list_commands(ctx)
    assert names == sorted(name for names in main.SUBCOMMANDS.values() for name in names)
    for name in names:
        assert main.cli.get_command(ctx, name) is not None, name
    assert main.cli.get_command(ctx, "no-such-command") is None


def test_log_does_not_import_the_other_commands(tmp_path) -> None:
    store = str(tmp_path / "store")
    subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", store, "init"], check=True, capture_output=True
    )
    probe = textwrap.dedent(
        f"""
        import sys
        from cafstore.cli.main import main
        try:
            main(args=["--store", {store!r}, "log", "-n", "1", "--all"], standalone_mode=False)
        finally:
            loaded = sorted(m for m in sys.modules if m.startswith("cafstore.cli.") and m.endswith("_commands"))
            print("LOADED", " ".join(loaded))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = out.split("LOADED", 1)[1].split()
    assert "cafstore.cli.client_commands" in loaded
    for heavy in ("maintenance_commands", "remote_commands", "ui_commands", "run_commands"):
        assert f"cafstore.cli.{heavy}" not in loaded


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for names in main.SUBCOMMANDS.values():
        for name in names:
            assert f"  {name} " in out or f"  {name}\n" in out, name
