"""Named remotes of a store (``cafstore remote add|list|remove``), kept as refs ``remotes/<name>``.

A ref, like everything mutable in a store: written atomically, read by
every process, and carried by the store's own backups.
"""

from __future__ import annotations

import re
import time
from typing import Any, Optional

from cafstore import schema
from cafstore.exception import RemoteError
from cafstore.remote.transport import Transport, normalize_url, open_transport

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise RemoteError(
            f"{name!r} cannot name a remote: use letters, digits, '.', '_' and '-' (at most 64), e.g. origin."
        )
    return name


def add(store: Any, name: str, url: str, endpoint_url: Optional[str] = None) -> dict:
    """Record remote ``name``; a RemoteError if the name is taken or the URL of no known form."""
    check_name(name)
    value = {"url": normalize_url(url), "endpoint_url": endpoint_url, "added": time.time()}
    with store.transaction() as txn:
        existing = txn.get_ref(schema.remote_ref(name))
        if existing is not None:
            raise RemoteError(
                f"A remote named {name!r} exists already ({existing.get('url')}); `cafstore remote remove {name}` first."
            )
        txn.set_ref(schema.remote_ref(name), value)
    return value


def remove(store: Any, name: str) -> None:
    """Forget remote ``name`` and what was last synced with it; the remote itself is not touched."""
    get(store, name)
    tracking = [ref for ref, _ in store.list_refs(f"{schema.REMOTE_TRACKING_PREFIX}{name}/")]
    with store.transaction() as txn:  # no index reads inside: it may be this process's first write
        txn.delete_ref(schema.remote_ref(name))
        for ref in tracking:
            txn.delete_ref(ref)


def listing(store: Any) -> list:
    """[(name, settings)] of every remote, by name."""
    return [(ref[len(schema.REMOTES_PREFIX) :], value) for ref, value in store.list_refs(schema.REMOTES_PREFIX)]


def get(store: Any, name: str) -> dict:
    value = store.get_ref(schema.remote_ref(check_name(name)))
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        known = ", ".join(n for n, _ in listing(store)) or "none"
        raise RemoteError(
            f"There is no remote named {name!r} in the store at {store.path} (known: {known}). "
            f"Add it with `cafstore remote add {name} URL`."
        )
    return value


def transport_of(store: Any, name: str) -> Transport:
    """Remote ``name``'s transport; the caller closes it (``contextlib.closing``)."""
    settings = get(store, name)
    transport = open_transport(settings["url"], settings.get("endpoint_url"), store.path / "cache" / "remotes")
    transport.name = name
    return transport
