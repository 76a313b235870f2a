"""Fixtures for the resume and cache tests.

- ``flow(name)``: a :class:`~resume_helpers.FlowCopy` of ``flows/<name>`` in this test's
  tmp_path, run against the test's own store (``tmp_path/store``).
- ``client``: the ``cafstore`` client module reading that store, in the global namespace
  (call ``client.namespace(...)`` to narrow it).
"""

from __future__ import annotations

import pytest
from resume_helpers import FLOWS, FlowCopy


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def flow(tmp_path, store_path):
    def make(name: str, user: str = "tester") -> FlowCopy:
        source = FLOWS / name if (FLOWS / name).exists() else name
        return FlowCopy(source, tmp_path / "work", store_path, user)

    return make


@pytest.fixture
def client(store_path, monkeypatch):
    import cafstore
    from cafstore.client import connection, namespaces

    monkeypatch.setenv("CAFSTORE_HOME", str(store_path))
    monkeypatch.setenv("CAFSTORE_USER", "tester")
    monkeypatch.delenv("CAFSTORE_NAMESPACE", raising=False)
    connection.use_store(None)
    namespaces._current = namespaces.UNSET
    cafstore.namespace(None)
    yield cafstore
    connection.use_store(None)
    namespaces._current = namespaces.UNSET
