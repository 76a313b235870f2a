"""Fixtures for the client tests.

- ``cstore``: a fresh store that the client reads (pinned with ``use_store``),
  with the namespace reset and the user set to ``anne``.
- ``as_user(name)``: switch the current user (and reset the namespace to that user's default).
- ``real_store``: a private copy of a store holding real runs of tests/client/flows (TagFlow 1-2
  and FailFlow 1 by anne, TagFlow 3 by will), made once per session by the real runner in
  subprocesses, and read by the client.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from client_helpers import FLOWS, run_flow

from cafstore.client import connection, namespaces
from cafstore.store import Store, StoreConfig

_CLIENT_ENV = ("CAFSTORE_USER", "CAFSTORE_NAMESPACE")


@pytest.fixture(autouse=True)
def _fresh_client_state(monkeypatch):
    for name in _CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAFSTORE_USER", "anne")
    namespaces._current = namespaces.UNSET
    yield
    connection.use_store(None)
    namespaces._current = namespaces.UNSET


@pytest.fixture
def cstore(tmp_path):
    store = Store(tmp_path / "store", StoreConfig(durable=False))
    connection.use_store(store)
    return store


@pytest.fixture
def as_user(monkeypatch):
    def switch(name: str) -> None:
        monkeypatch.setenv("CAFSTORE_USER", name)
        namespaces.default_namespace()

    return switch


def _build_history(root: Path) -> Path:
    """TagFlow 1 (anne, --tag crazy_test), 2 (anne), 3 (will); FailFlow 1 (anne, fails)."""
    store = root / "store"
    run_flow(FLOWS / "tagflow.py", store, "anne", "run", "--tag", "crazy_test")
    run_flow(FLOWS / "tagflow.py", store, "anne", "run", "--count", "2")
    run_flow(FLOWS / "tagflow.py", store, "will", "run")
    failed = run_flow(FLOWS / "failflow.py", store, "anne", "run", check=False)
    assert failed.returncode != 0, failed.stdout
    return store


@pytest.fixture(scope="session")
def _history(tmp_path_factory):
    return _build_history(tmp_path_factory.mktemp("history"))


@pytest.fixture
def real_store(_history, tmp_path):
    """A private copy of the real runs' store (tests may change tags), read by the client."""
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(_history, copy, ignore=shutil.ignore_patterns("lock.mdb"))
    store = Store(copy, StoreConfig(durable=False))
    connection.use_store(store)
    return store
