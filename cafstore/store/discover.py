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
        return check_store_path(Path(explicit).expanduser(), "--store")
    env = os.environ.get(ENV_HOME)
    if env:
        return check_store_path(Path(env).expanduser(), ENV_HOME)
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return check_store_path(here / STORE_DIRNAME, "the default store path")


def check_store_path(path: Path, source: str) -> Path:
    """``path`` if a store can be there (a directory, or nothing yet); else StoreNotFound saying what
    is in the way and where the path came from (``source``: ``--store``, ``CAFSTORE_HOME``...).

    Without this a file or a dangling symlink there would surface as "no store" or as
    "cannot create ...: File exists", neither of which tells the user what to fix.
    """
    from cafstore.exception import StoreNotFound

    if path.is_symlink() and not path.exists():
        target = os.readlink(path)
        raise StoreNotFound(
            f"{source} is {path}, a symbolic link to {target}, which does not exist (a dangling link). "
            f"Create the directory it points to, fix the link, or point {source} at a store directory."
        )
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else "not a directory"
        raise StoreNotFound(
            f"{source} is {path}, which is {kind}, not a store directory. Point {source} at a store "
            "directory (or at a new path, where `cafstore init` or the first run creates one)."
        )
    return path
