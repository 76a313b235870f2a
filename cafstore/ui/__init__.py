"""The web UI (``cafstore ui``), the one-file run report (``cafstore report``) and the DAG picture.

Reads the store through cafstore.client only and never writes. Needs the
``ui`` extra (Starlette, uvicorn, Jinja2, grandalf): :func:`require` says
how to install it when it is missing. Nothing here is imported by
``import cafstore``.
"""

from __future__ import annotations

import importlib.util

from cafstore.exception import MissingExtra

#: module -> the PyPI package that provides it
UI_MODULES = {"starlette": "starlette", "uvicorn": "uvicorn", "jinja2": "jinja2", "grandalf": "grandalf"}


def require(*modules: str) -> None:
    """Raise MissingExtra naming what to install when a module of the ``ui`` extra is missing."""
    missing = [UI_MODULES.get(m, m) for m in modules or UI_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(
            f"The web UI and the run report need the 'ui' extra ({', '.join(missing)} missing here): "
            "install it with `pip install 'cafstore[ui]'`."
        )
