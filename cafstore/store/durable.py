"""fsync of a file or a directory by path: the two steps every atomic write of the store ends with.

A rename is only durable once the directory that holds the new name is
fsynced, and a file's bytes once the file is; writers of objects, of the
store's settings and of temp files all need one or both.
"""

from __future__ import annotations

import os


def fsync_path(path: "os.PathLike | str", directory: bool = False) -> None:
    """fsync ``path``: a regular file, or with ``directory=True`` a directory (making renames into it durable)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
