"""What every ``cafstore`` subcommand shares: the store it works on, and how errors are shown.

``friendly_errors`` is also what a flow's own ``logs``/``dump``/``tag`` print errors with
(cli/flow_client_commands.py), so both command lines fail the same way.
"""

from __future__ import annotations

import functools
import sys
import warnings
from typing import Any, Callable, NoReturn, Optional

import click

from cafstore.exception import CafstoreError, DamagedRefWarning


class CliState:
    """Global options, resolved lazily so ``--help`` never touches the disk."""

    def __init__(self, store_path: Optional[str]) -> None:
        self.store_path = store_path
        self._store = None

    @property
    def store(self):
        """The existing store; reading commands never create one where there is none (like git)."""
        if self._store is None:
            from cafstore.exception import StoreNotFound
            from cafstore.store import Store
            from cafstore.store.discover import discover_path
            from cafstore.store.settings import SETTINGS_FILE

            path = discover_path(explicit=self.store_path)
            # Any of these means a store (its index may be lost: identity.py says so, not "no store").
            if not any(p.exists() for p in (path / "index", path / SETTINGS_FILE, path / "objects")):
                raise StoreNotFound(
                    f"There is no cafstore store at {path}. Run a flow (which creates one), `cafstore init`, "
                    "or point at an existing store with --store PATH or CAFSTORE_HOME."
                )
            self._store = Store(path)
        return self._store


pass_state = click.make_pass_decorator(CliState, ensure=True)


def fail(message: str, code: int = 1) -> "NoReturn":  # type: ignore[name-defined]
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _runs_hit(exc: CafstoreError) -> str:
    """For a corrupt object: the runs that use it (a scan of the runs' records; only on this error path)."""
    from cafstore.exception import CorruptObject

    state = click.get_current_context(silent=True)
    state = state.find_object(CliState) if state else None
    if not isinstance(exc, CorruptObject) or not exc.oid or exc.runs or state is None:
        return ""  # exc.runs: the client has named them already
    from cafstore.maintenance.repair import runs_using

    runs = runs_using(state.store, [exc.oid])
    return f" Runs that use it: {', '.join(runs)}." if runs else ""


def friendly_errors(func: Callable) -> Callable:
    """Turn a CafstoreError into one paragraph on stderr and its exit code (1; 2 for a bad command
    line, as click's usage errors): never a bare traceback.

    A damaged ref a listing skipped (``DamagedRefWarning``) is one ``warning:`` line on
    stderr, once per ref, and the command goes on.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", DamagedRefWarning)
                warnings.showwarning = _one_line_warning(warnings.showwarning)
                return func(*args, **kwargs)
        except CafstoreError as exc:
            fail(f"{exc.headline}: {exc}{_runs_hit(exc)}", exc.exit_code)

    return wrapper


def _one_line_warning(fallback: Callable) -> Callable:
    shown: set = set()

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        if not issubclass(category, DamagedRefWarning):
            fallback(message, category, *args, **kwargs)
        elif str(message) not in shown:
            shown.add(str(message))
            click.echo(f"warning: {message}", err=True)

    return show
