"""A store's settings (store.json) choose its blob backend for every process that opens it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cafstore.exception import StoreError
from cafstore.store import LocalBlobBackend, MemoryBlobBackend, Store, StoreConfig
from cafstore.store.backends import BACKENDS
from cafstore.store.settings import SETTINGS_FILE


class SideBySideBackend(LocalBlobBackend):
    """A test backend: the local one with its files under another directory (option ``dir``)."""

    @classmethod
    def from_settings(cls, root, config, options):
        backend = cls(root, durable=config.durable)
        backend.objects = root / options["dir"]
        backend.objects.mkdir(exist_ok=True)
        return backend


def test_a_new_store_records_a_local_backend(tmp_path):
    store = Store(tmp_path / "s")
    assert isinstance(store.blobs, LocalBlobBackend)
    saved = json.loads((tmp_path / "s" / SETTINGS_FILE).read_text())
    assert saved == {"format": 1, "blobs": {"backend": "local", "options": {}}}
    assert store.config.blob_backend is None  # the caller's config is left as given


def test_a_store_from_before_settings_stays_local_and_gets_only_its_id_recorded(tmp_path):
    store = Store(tmp_path / "s")
    oid = store.put_bytes(os.urandom(100_000))
    store_id = json.loads((tmp_path / "s" / SETTINGS_FILE).read_text())["id"]  # stamped at the first open
    store.close()
    (tmp_path / "s" / SETTINGS_FILE).unlink()  # what every store made before store.json looks like
    again = Store(tmp_path / "s")
    assert isinstance(again.blobs, LocalBlobBackend) and again.get_bytes(oid, verify=True)
    # The index still carries the store's id: opening it writes the settings a local store always had.
    saved = json.loads((tmp_path / "s" / SETTINGS_FILE).read_text())
    assert saved == {"format": 1, "blobs": {"backend": "local", "options": {}}, "id": store_id}


def test_a_registered_backend_is_chosen_once_and_used_by_every_opener(tmp_path, monkeypatch):
    monkeypatch.setitem(BACKENDS, "side", SideBySideBackend)
    config = StoreConfig(blob_backend="side", blob_options={"dir": "side-objects"}, durable=False)
    store = Store(tmp_path / "s", config)
    oid = store.put_bytes(os.urandom(100_000))
    assert (tmp_path / "s" / "side-objects" / oid[:2] / oid[2:]).is_file()
    reopened = Store(tmp_path / "s")  # no config: the store's settings decide
    assert type(reopened.blobs) is SideBySideBackend and reopened.get_bytes(oid, verify=True)
    assert reopened.fsck().ok


def test_opening_with_another_backend_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(BACKENDS, "side", SideBySideBackend)
    Store(tmp_path / "s")
    with pytest.raises(StoreError, match="'local' blob backend"):
        Store(tmp_path / "s", StoreConfig(blob_backend="side", blob_options={"dir": "x"}))


def test_the_memory_backend_is_only_usable_explicitly(tmp_path):
    with pytest.raises(StoreError, match="explicitly"):
        Store(tmp_path / "s", StoreConfig(blob_backend="memory"))
    assert not (tmp_path / "s" / SETTINGS_FILE).exists()  # nothing recorded for the refused choice
    store = Store(tmp_path / "m", blobs=MemoryBlobBackend())
    oid = store.put_bytes(os.urandom(100_000))
    assert store.get_bytes(oid, verify=True) and not list((tmp_path / "m").rglob("objects/*/*"))


def test_unknown_or_unreadable_settings_are_clear_errors(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / SETTINGS_FILE).write_text('{"format": 1, "blobs": {"backend": "tape"}}')
    with pytest.raises(StoreError, match="Unknown blob backend 'tape'"):
        Store(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / SETTINGS_FILE).write_text("{half")
    with pytest.raises(StoreError, match="unreadable") as info:
        Store(tmp_path / "b")
    assert info.value.__cause__ is not None


CHILD = """
import sys
from cafstore.store import LocalBlobBackend, Store
from cafstore.store.backends import BACKENDS

class SideBySideBackend(LocalBlobBackend):
    @classmethod
    def from_settings(cls, root, config, options):
        backend = cls(root, durable=config.durable)
        backend.objects = root / options["dir"]
        return backend

BACKENDS["side"] = SideBySideBackend  # the child knows the backend; the store says which to use
store = Store(sys.argv[1])
print(type(store.blobs).__name__, len(store.get_bytes(sys.argv[2], verify=True)))
"""


def test_another_process_opening_by_path_gets_the_same_backend(tmp_path, monkeypatch):
    monkeypatch.setitem(BACKENDS, "side", SideBySideBackend)
    store = Store(tmp_path / "s", StoreConfig(blob_backend="side", blob_options={"dir": "side-objects"}))
    oid = store.put_bytes(os.urandom(100_000))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "s"), oid], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["SideBySideBackend", "100000"], out.stderr


def test_the_cli_opens_a_store_by_its_settings(tmp_path, run_cli):
    store = Store(tmp_path / "s")
    store.put_bytes(os.urandom(100_000))
    result = run_cli("--store", str(tmp_path / "s"), "fsck")
    assert result.returncode == 0, result.stderr
    (tmp_path / "s" / SETTINGS_FILE).write_text('{"format": 1, "blobs": {"backend": "tape"}}')
    result = run_cli("--store", str(tmp_path / "s"), "fsck")
    assert result.returncode == 1 and "Unknown blob backend 'tape'" in result.stderr


def test_the_public_store_names_still_import():
    import cafstore.store as package

    for name in (
        "Store",
        "Transaction",
        "MISSING",
        "ObjectStat",
        "BlobBackend",
        "LocalBlobBackend",
        "MemoryBlobBackend",
        "StoreConfig",
    ):
        assert name in package.__all__ and getattr(package, name) is not None, name
    assert issubclass(MemoryBlobBackend, package.BlobBackend) and issubclass(LocalBlobBackend, package.BlobBackend)
