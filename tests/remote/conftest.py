"""A store of anne's with one run of each example the remote tests move, made once per session and
copied for each test (a copy is the same store: same id, same runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from remote_helpers import EXAMPLES, FLOWS, flow

from cafstore.client import namespace
from cafstore.client.connection import use_store
from cafstore.store.index import close_all


@pytest.fixture(scope="session")
def anne_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("anne") / "store"
    flow(store, "anne", FLOWS / "shared_flow.py", "run")  # SharedFlow/1
    flow(store, "anne", EXAMPLES / "helloworld.py", "run")  # HelloWorldFlow/1
    return store


@pytest.fixture
def anne_store(anne_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "anne"
    shutil.copytree(anne_template, copy)
    return copy


@pytest.fixture(autouse=True)
def _close_indexes():
    """After each test: the client back to no store and the global namespace, and every store the test
    opened closed. The process keeps a store's index (its LMDB environment, three descriptors) open
    until ``Store.close()``: a long session of tests that never close theirs once went past 1023
    descriptors, where ``select()`` fails."""
    yield
    use_store(None)
    namespace(None)
    close_all()


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch):
    """Switch the user this process's pushes and pulls are made as (USER, as a login would set it)."""

    def switch(name: str) -> None:
        for variable in ("CAFSTORE_USER", "METAFLOW_USER"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv("USER", name)

    return switch
