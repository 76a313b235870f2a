"""Which store the client reads: found like Git finds a repository, opened once per process.

``Flow('X')`` and friends use the store ``discover_path()`` finds
(``$CAFSTORE_HOME``, else the nearest ``.cafstore/`` upward). The command
line passes its own ``--store`` explicitly; a notebook can call
``use_store(path)`` to pin one. Looking a store up never creates one: a
client with nothing to read raises NotFound instead of leaving an empty
``.cafstore/`` behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from cafstore.exception import NotFound

_pinned: Optional[Any] = None
_cache: Dict[Tuple[Optional[str], str], Any] = {}


def use_store(store: "Union[str, os.PathLike, Any, None]") -> None:
    """Make every client object read ``store`` (a Store or a path); ``None`` goes back to discovery."""
    global _pinned
    if store is None or hasattr(store, "get_ref"):
        _pinned = store
    else:
        from cafstore.store import Store

        _pinned = Store(_existing(Path(store).expanduser()))


def get_store() -> Any:
    """The store client objects read when none was given: pinned, else discovered (cached per place)."""
    if _pinned is not None:
        return _pinned
    key = (os.environ.get("CAFSTORE_HOME"), os.getcwd())
    store = _cache.get(key)
    if store is None:
        from cafstore.store import Store
        from cafstore.store.discover import discover_path

        store = _cache[key] = Store(_existing(discover_path()))
    return store


def find_store() -> Optional[Any]:
    """Like ``get_store()`` but None when there is no store yet (for reading optional settings)."""
    try:
        return get_store()
    except NotFound:
        return None


def _existing(path: Path) -> Path:
    if not (path / "index").is_dir():
        raise NotFound(
            f"There is no cafstore store at {path}, so there are no runs to read. Run a flow first, "
            "or point at a store with CAFSTORE_HOME (or --store on the command line)."
        )
    return path


def store_at(path: "Union[str, os.PathLike]") -> Any:
    """The store at ``path``, shared with ``get_store()`` when it is the same one."""
    resolved = Path(path).expanduser().absolute()
    for store in (_pinned, *_cache.values()):
        if store is not None and store.path == resolved:
            return store
    from cafstore.store import Store

    store = _cache[(str(resolved), "")] = Store(_existing(resolved))
    return store


def reopen(kind: str, pathspec: str, path: str) -> Any:
    """Unpickle a client object: the same pathspec in the same store (no namespace check)."""
    from cafstore import client

    if kind == "Metaflow":
        return client.Metaflow(store=store_at(path))
    return getattr(client, kind)(pathspec, _namespace_check=False, store=store_at(path))


# -- Metaflow's metadata provider switch ---------------------------------------------------------
# Metaflow names where its client reads runs "the metadata provider", described as "<type>@<info>"
# ("local@/home/anne/project"). cafstore has one kind, the local store, so the description is
# "local@<store path>" and switching providers is switching stores.
METADATA_TYPE = "local"


def get_metadata() -> str:
    """Where client calls read runs, as Metaflow describes it: ``local@<store path>``."""
    store = find_store()
    if store is None:
        return f"{METADATA_TYPE}@<no cafstore store found: set CAFSTORE_HOME or run a flow first>"
    return f"{METADATA_TYPE}@{store.path}"


def metadata(ms: str) -> str:
    """Make the client read another store: ``local@<path>`` or a plain path (the store directory, or
    a directory holding a ``.cafstore/`` store). Returns ``get_metadata()``, like Metaflow's."""
    if not isinstance(ms, str) or not ms:
        from cafstore.exception import ClientError

        raise ClientError(f"metadata() takes 'local@<path>' or a store path, not {ms!r}.")
    kind, sep, info = ms.partition("@")
    if sep and kind != METADATA_TYPE:
        from cafstore.exception import ClientError

        raise ClientError(
            f"Cannot use metadata provider {kind!r} ({ms!r}): cafstore reads runs from a local store only; "
            "pass 'local@<path of the store>'."
        )
    path = Path(info if sep else ms).expanduser()
    if not (path / "index").is_dir() and (path / ".cafstore" / "index").is_dir():
        path = path / ".cafstore"
    use_store(path)
    return get_metadata()


def default_metadata() -> str:
    """Back to the store found by discovery (undoing ``metadata()``); returns ``get_metadata()``."""
    use_store(None)
    return get_metadata()
