"""Namespaces: which runs the client shows by default (the namespaces-and-tags seed).

A namespace is a tag. The default is ``user:<username>``, so ``latest_run``
means *my* latest run; ``namespace('user:will')`` looks at Will's,
``namespace('production:<token>')`` at a production deployment's, any other
tag at the runs carrying it, and ``namespace(None)`` at every run.

Where the default comes from, first match wins:

1. ``CAFSTORE_NAMESPACE`` in the environment (an empty value means global):
   how ``python flow.py --namespace NS run`` hands the namespace to its tasks;
2. the per-user default saved by ``cafstore namespace set`` (the ref
   ``schema.default_namespace_ref(user)``, see docs/client.md);
3. ``user:<username>``.

Namespaces organise results; they are not access control.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable, List, Optional

from cafstore.schema import ENV_USER, current_user, default_namespace_ref  # noqa: F401 - re-exported

ENV_NAMESPACE = "CAFSTORE_NAMESPACE"
# "No namespace chosen": distinct from None, which is the global namespace. Client objects keep it to
# mean "follow namespace() at call time"; save_default takes it to forget a saved default.
UNSET: Any = object()
_current: Any = UNSET


def user_namespace(user: Optional[str] = None) -> str:
    return f"user:{user or current_user()}"


def saved_default(store: Any, user: Optional[str] = None) -> Any:
    """The namespace ``cafstore namespace set`` saved for ``user``: a tag, None (global), or UNSET."""
    if store is None:
        return UNSET
    value = store.get_ref(default_namespace_ref(user or current_user()))
    if not isinstance(value, dict) or "namespace" not in value:
        return UNSET
    return value["namespace"]


def save_default(store: Any, ns: Any, user: Optional[str] = None) -> None:
    """Persist ``ns`` as ``user``'s default (None: global); ``UNSET`` forgets it (back to user:<name>)."""
    name = default_namespace_ref(user or current_user())
    if ns is UNSET:
        store.delete_ref(name)
    else:
        store.set_ref(name, {"namespace": ns, "set": time.time()})


def resolve_default(store: Any = None) -> Optional[str]:
    """The default namespace for this process (environment, saved default, user:<name>)."""
    env = os.environ.get(ENV_NAMESPACE)
    if env is not None:
        return env or None
    if store is None:
        from cafstore.client.connection import find_store

        store = find_store()
    saved = saved_default(store)
    return user_namespace() if saved is UNSET else saved


def namespace(ns: Optional[str]) -> Optional[str]:
    """Switch the namespace of every client call in this process; ``None`` is the global namespace.

    Returns the namespace now in effect (like Metaflow's ``namespace``).
    """
    global _current
    if ns is not None and (not isinstance(ns, str) or not ns):
        from cafstore.exception import ClientError

        raise ClientError(f"A namespace is a tag (a non-empty string) or None for all runs, not {ns!r}.")
    _current = ns
    return ns


def get_namespace() -> Optional[str]:
    """The namespace client calls filter by now (None: global)."""
    global _current
    if _current is UNSET:
        _current = resolve_default()
    return _current


def default_namespace() -> Optional[str]:
    """Go back to the default namespace (see the module docstring) and return it."""
    global _current
    _current = resolve_default()
    return _current


def apply_flow_namespace(ns: Optional[str]) -> None:
    """What ``--namespace NS`` on a flow's command line does: this process and the tasks it starts.

    ``ns`` None or empty means global. The environment variable carries it
    into task processes however they are started (fork or spawn).
    """
    os.environ[ENV_NAMESPACE] = ns or ""
    namespace(ns or None)


def namespace_tags(tags: Iterable[str]) -> List[str]:
    """The tags of a run that name a namespace one would switch to (user: and production:)."""
    return sorted(t for t in tags if t.startswith(("user:", "production:")))
