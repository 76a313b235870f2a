"""Finding the store, the way Git finds a repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

STORE_DIRNAME = ".cafstore"
ENV_HOME = "CAFSTORE_HOME"


def discover_path(start: "Union[str, os.PathLike, None]" = None, explicit: "Optional[str]" = None) -> Path:
    """``explicit`` (``--store``), else ``$CAFSTORE_HOME``, else the nearest ``.cafstore/``
    in ``start`` (default: the current directory) or a parent, else ``./.cafstore``.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return here / STORE_DIRNAME
