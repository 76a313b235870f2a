"""Option values checked where click parses them, so a bad one is a usage error (exit 2) everywhere.

A malformed pathspec, a run id that is not a number, or a tag the schema
refuses is reported before any command body runs, as click reports its own
type errors (``Error: Invalid value for ...``, exit status 2), and the same
on ``cafstore`` and on ``python flow.py``. A well-formed value that names
nothing (a run that does not exist) is not a usage error: that is
``not found``, exit 1.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import click

from cafstore.exception import NotFound, TaggingError


def user_tags(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Callback of ``--tag`` (run, resume) and of the TAGS/NEW arguments of ``tag add|replace``."""
    from cafstore import schema

    if value is None:
        return value
    what = "--tag" if isinstance(param, click.Option) else "tag"
    try:
        schema.check_user_tags([value] if isinstance(value, str) else list(value), what)
    except TaggingError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return value


def pathspec(level: Optional[str] = None, prefix: Callable[[str], str] = str) -> Callable:
    """A callback refusing a malformed pathspec (of ``level``, else of any depth); ``prefix`` turns the
    value into a full pathspec first (a flow's own command line takes them relative to the flow)."""

    def check(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
        from cafstore.client import pathspecs

        if value is not None and (value or param.required):  # an optional one may be given empty: none
            try:
                pathspecs.check(prefix(value), level)
            except NotFound as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
        return value

    return check


def run_id(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    """Callback of a flow's ``--run-id N``: a whole number."""
    from cafstore.client import pathspecs

    if value is not None:
        try:
            pathspecs.number(value, "run", f"--run-id {value}")
        except NotFound as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return value
