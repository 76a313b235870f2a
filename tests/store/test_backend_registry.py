"""The blob backend registry: names resolve to classes, lazily when given as "module:Class"."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cafstore.exception import StoreError
from cafstore.store.backends import BACKENDS, LocalBlobBackend, backend_class


def test_a_string_entry_is_imported_on_first_use(monkeypatch):
    monkeypatch.setitem(BACKENDS, "later", "cafstore.store.backends.local:LocalBlobBackend")
    assert backend_class("later") is LocalBlobBackend
    assert BACKENDS["later"] is LocalBlobBackend  # resolved once, then kept


def test_a_backend_whose_package_is_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(BACKENDS, "nowhere", "cafstore_missing_package_for_tests.backend:Backend")
    with pytest.raises(StoreError, match=r"'nowhere' blob backend needs a package .*pip install 'cafstore\[nowhere\]'"):
        backend_class("nowhere")


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(StoreError, match="Unknown blob backend 'nope': this cafstore knows .*local.*memory"):
        backend_class("nope")


def test_opening_a_store_imports_no_unused_backend_module():
    code = (
        "import sys, tempfile\n"
        "from cafstore.store import Store\n"
        "from cafstore.store.backends import BACKENDS\n"
        "BACKENDS['later'] = 'cafstore_missing_package_for_tests.backend:Backend'\n"
        "Store(tempfile.mkdtemp()).put_bytes(b'x' * 100000)\n"
        "print('cafstore_missing_package_for_tests' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
