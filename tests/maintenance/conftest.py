"""Fixtures for the maintenance tests (helpers live in maint_helpers.py)."""

from __future__ import annotations

import pytest
from maint_helpers import small_config

from cafstore.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store", config=small_config())
    yield s
    s.close()
