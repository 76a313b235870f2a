"""``cafstore ui`` (a local, read-only web app over the store) and ``cafstore report`` (one run as a file).

Both need the ``ui`` extra; without it they say how to install it. The
server binds to 127.0.0.1 unless told otherwise: the store's artifacts,
logs and code are readable by anyone who reaches the port, so binding to
another address needs ``--allow-remote`` and prints a warning.
"""

from __future__ import annotations

import os
import threading
from typing import Optional

import click

from cafstore.cli import checks
from cafstore.cli.client_commands import chosen_namespace, namespace_options
from cafstore.cli.context import CliState, friendly_errors, pass_state
from cafstore.exception import UIError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free).")
@click.option("--open", "open_browser", is_flag=True, help="Open the UI in the default browser.")
@click.option("--allow-remote", is_flag=True, help="Allow a --host other than this machine (prints a warning).")
@namespace_options
@pass_state
@friendly_errors
def ui_command(
    state: CliState,
    host: str,
    port: int,
    open_browser: bool,
    allow_remote: bool,
    ns: Optional[str],
    all_runs: bool,
) -> None:
    """Browse flows, runs and tasks in a web browser (read-only)."""
    from cafstore.ui import require

    require()
    if host not in LOCAL_HOSTS and not allow_remote:
        raise UIError(
            f"--host {host} would let other machines read every artifact, log and flow file in the store; "
            "add --allow-remote if that is what you want, or leave --host out (127.0.0.1)."
        )
    store = state.store
    namespace = chosen_namespace(store, ns, all_runs)
    import uvicorn

    from cafstore.ui.app import create_app

    if host not in LOCAL_HOSTS:
        click.echo(f"warning: serving the store at {store.path} to every machine that can reach {host}.", err=True)
    config = uvicorn.Config(create_app(store, namespace), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    started = threading.Thread(target=_announce, args=(server, host, open_browser), daemon=True)
    started.start()
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        raise UIError(f"cannot serve on {host}:{port} (is the port taken? try --port 0).") from exc


def _announce(server: object, host: str, open_browser: bool) -> None:
    """Print the URL once the server listens (with --port 0, the port it got), and open it if asked."""
    import time

    for _ in range(600):
        servers = getattr(server, "servers", None)
        if getattr(server, "started", False) and servers:
            port = servers[0].sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{port}/"
            click.echo(f"cafstore ui: serving {url} (read-only; Ctrl-C stops it)", err=False)
            if open_browser:
                import webbrowser

                webbrowser.open(url)
            return
        time.sleep(0.05)


@click.command("report")
@click.argument("pathspec", callback=checks.pathspec("run"))
@click.option("-o", "--output", metavar="FILE", default=None, help="Where to write it (default: Flow-N.html).")
@pass_state
@friendly_errors
def report_command(state: CliState, pathspec: str, output: Optional[str]) -> None:
    """Write run PATHSPEC's page as one self-contained HTML file (no network needed to open it)."""
    from cafstore.ui import require

    require("jinja2", "grandalf")
    from cafstore.client import Run
    from cafstore.ui.pages import run_page

    run = Run(pathspec, store=state.store, _namespace_check=False)
    path = output or f"{run.pathspec.replace('/', '-')}.html"
    html = run_page(state.store, run, report=True)
    temp = f"{path}.tmp{os.getpid()}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.replace(temp, path)
    except OSError as exc:
        raise UIError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    click.echo(f"Wrote {path} ({len(html.encode()) // 1024} KiB).")


COMMANDS = [ui_command, report_command]
