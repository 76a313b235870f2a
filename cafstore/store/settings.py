"""The settings a store carries with it (``store.json``): which blob backend it uses, and its id.

Many processes open one store by path alone (task processes, spawned
children, every CLI command), so a choice that must hold for all of them --
where large objects' bytes live -- is written into the store directory when
the store is created, and read back by each ``Store(path)``. The file is
created once, atomically and put-if-absent (two processes creating the same
store agree on one choice), and never rewritten. A store without one, made
before settings existed, is a local store.

The one exception to "never rewritten" is the store's id (identity.py): a
store made before ids existed gets one the first time a process opens its
index, by an atomic replace of the whole file that keeps every other field.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Mapping, Optional

from cafstore.exception import StoreError
from cafstore.store.backends import DEFAULT_BACKEND, shared_backend_class
from cafstore.store.durable import fsync_path

SETTINGS_FILE = "store.json"
FORMAT = 1


def backend_choice(store_dir: Path, config: Any) -> tuple[str, dict]:
    """(backend name, options) of the store at ``store_dir``, creating its settings if it is new.

    ``config.blob_backend`` (None: the store's own choice) must agree with
    what the store says; a new store records it (default: local).
    """
    persisted = read_settings(store_dir)
    if persisted is None:
        if (store_dir / "index").exists():  # a store from before settings existed
            persisted = {"backend": DEFAULT_BACKEND, "options": {}}
        else:
            name = config.blob_backend or DEFAULT_BACKEND
            shared_backend_class(name)  # refuse a per-process backend before recording it
            persisted = create_settings(store_dir, name, config.blob_options)
    name, options = persisted["backend"], persisted["options"]
    if config.blob_backend is not None and (config.blob_backend, dict(config.blob_options)) != (name, options):
        raise StoreError(
            f"The store at {store_dir} keeps its large objects in the {name!r} blob backend "
            f"(options {options}), but it was opened with blob_backend={config.blob_backend!r} "
            f"(options {dict(config.blob_options)}). A store's backend is fixed when it is created."
        )
    return name, options


_texts: dict = {}  # (path, device, inode, mtime, size) of a store.json -> its text, as last read


def read_settings(store_dir: Path) -> Optional[dict]:
    """The parsed ``store.json`` (``{"backend": ..., "options": {...}, "id": ... or None}``), or None if there is none.

    Every task process reads it when it opens the index (identity.py), so a file already read by
    this process or by the scheduler it was forked from costs one ``stat``: the file only changes
    by an atomic replace (a new inode), which the key sees.
    """
    path = store_dir / SETTINGS_FILE
    try:
        st = os.stat(path)
        key = (str(path), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        text = _texts.get(key)
        if text is None:
            text = path.read_text(encoding="utf-8")
            _texts.clear()  # one store.json per process is the common case: keep one entry
            _texts[key] = text
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"Cannot read the store's settings {path}: {exc.strerror or exc}.") from exc
    try:
        raw = json.loads(text)
        blobs = raw["blobs"]
        settings: dict = {"backend": str(blobs["backend"]), "options": dict(blobs.get("options") or {})}
        settings["id"] = str(raw["id"]) if raw.get("id") else None
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"The store's settings {path} are unreadable ({exc}); it should hold "
            '{"format": 1, "blobs": {"backend": "local", "options": {}}}.'
        ) from exc
    return settings


def create_settings(store_dir: Path, backend: str, options: Mapping[str, Any], store_id: Optional[str] = None) -> dict:
    """Write ``store.json`` unless it exists; returns the settings on disk (ours, or a racing creator's).

    Written to a temp file, fsynced, then hard-linked into place: the link
    fails if another process created the file first, so nobody overwrites a
    choice already made, and nobody ever reads a half-written file.
    """
    _write(store_dir, backend, options, store_id, replace=False)
    settings = read_settings(store_dir)
    if settings is None:
        raise StoreError(f"The store's settings {store_dir / SETTINGS_FILE} vanished right after being written.")
    return settings


def record_id(store_dir: Path, store_id: str) -> None:
    """Give a store made before ids existed its id (identity.py), keeping its backend choice.

    Idempotent and race-free among processes adopting one store: they all
    write the id already stamped in the index (which LMDB's writer lock made
    one), so whichever replace lands last writes the same file.
    """
    settings = read_settings(store_dir)
    if settings is None:
        settings = {"backend": DEFAULT_BACKEND, "options": {}, "id": None}
    if settings["id"] == store_id:
        return
    if settings["id"] is not None:
        raise StoreError(
            f"The store's settings {store_dir / SETTINGS_FILE} name the store {settings['id']}, "
            f"not {store_id}; refusing to change a store's id."
        )
    _write(store_dir, settings["backend"], settings["options"], store_id, replace=True)


def _write(store_dir: Path, backend: str, options: Mapping[str, Any], store_id: Optional[str], replace: bool) -> None:
    """temp file -> fsync -> link (put-if-absent) or rename (replace) -> fsync the directory."""
    path = store_dir / SETTINGS_FILE
    content: dict = {"format": FORMAT, "blobs": {"backend": backend, "options": dict(options)}}
    if store_id is not None:
        content["id"] = store_id
    try:
        body = json.dumps(content, indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"The options of the {backend!r} blob backend must be JSON values (they are saved in {path}): {exc}."
        ) from exc
    temp = store_dir / f".{SETTINGS_FILE}.{os.getpid()}-{uuid.uuid4().hex}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
            fsync_path(store_dir, directory=True)
            return
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process created the store first: its choice stands (checked by the caller)
        else:
            fsync_path(store_dir, directory=True)
    except OSError as exc:
        raise StoreError(f"Cannot write the store's settings {path}: {exc.strerror or exc}.") from exc
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
