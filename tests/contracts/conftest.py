"""Fixtures of the contract suites: every registered blob backend, bare or under a real Store.

The backends come from the registry (``cafstore.store.backends.BACKENDS``),
so a backend added there is run through every contract test here without
editing this directory. Each is built the way a store builds it
(``from_settings``), rooted in the test's temp directory; helpers are in
contract_helpers.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import pytest
from contract_helpers import CONFIG, build_backend

from cafstore.store import Store
from cafstore.store.backends import BACKENDS, BlobBackend


@pytest.fixture(params=sorted(BACKENDS))
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def backend_options(backend_name: str, request: pytest.FixtureRequest) -> dict:
    """The backend's own options: a fresh prefix on the session's real S3 server for s3, none otherwise."""
    if backend_name == "s3":
        return dict(request.getfixturevalue("s3_options"))
    return {}


@pytest.fixture
def blobs(backend_name: str, backend_options: dict, tmp_path: Path) -> BlobBackend:
    """A bare backend: the blob verbs alone, no index."""
    return build_backend(backend_name, tmp_path / "blobs", options=backend_options)


@pytest.fixture
def make_store(backend_name: str, backend_options: dict, tmp_path: Path) -> Callable[..., Store]:
    """``make_store(**config_overrides)``: a fresh Store on disk whose blobs live in this backend."""
    count = [0]

    def make(**overrides) -> Store:
        count[0] += 1
        root = tmp_path / f"store{count[0]}"
        config = dataclasses.replace(CONFIG, **overrides)
        options = dict(backend_options)
        if "prefix" in options:
            options["prefix"] += f"/store{count[0]}"  # two stores of one test never share blobs
        return Store(root, config=config, blobs=build_backend(backend_name, root, config, options))

    return make


@pytest.fixture
def store(make_store: Callable[..., Store]):
    s = make_store()
    yield s
    s.close()
