"""Opening a store's index takes no writer lock: a process that only reads never waits for writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from cafstore.store import Store, StoreConfig

HOLD = 2.0  # seconds the other process keeps LMDB's writer lock


def _hold_writer_lock(path) -> subprocess.Popen:
    """Another process inside a write transaction on the store, until it has slept HOLD seconds."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from cafstore.store import Store, StoreConfig
        store = Store({str(path)!r}, StoreConfig(durable=False))
        with store.index.write() as txn:
            print("holding", flush=True)
            time.sleep({HOLD})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_reader_opens_and_reads_while_another_process_writes(tmp_path):
    path = tmp_path / "s"
    store = Store(path, StoreConfig(durable=False))
    oid = store.put_bytes(b"x" * 100_000)
    store.set_ref("name", {"v": 1})
    store.close()
    holder = _hold_writer_lock(path)
    try:
        began = time.monotonic()
        reader = Store(path, StoreConfig(durable=False))  # a fresh handle: the tables are opened now
        assert reader.get_ref("name") == {"v": 1} and reader.get_bytes(oid) == b"x" * 100_000
        waited = time.monotonic() - began
        assert waited < HOLD / 2, f"reading waited {waited:.2f}s for the writer"
        reader.set_ref("other", 2)  # a write waits for the lock, then opens the tables in its transaction
        assert time.monotonic() - began >= HOLD * 0.9
    finally:
        holder.wait(timeout=30)
    assert Store(path).get_ref("other") == 2


def test_a_first_write_that_fails_leaves_the_handle_usable(tmp_path):
    path = tmp_path / "s"
    Store(path, StoreConfig(durable=False)).set_ref("name", 1)
    Store(path).close()
    store = Store(path, StoreConfig(durable=False))
    store.close()  # drop the handle shared with the writes above: the next use opens a fresh one
    with pytest.raises(ZeroDivisionError):
        with store.transaction() as txn:
            txn.set_ref("name", 2)
            1 / 0
    assert store.get_ref("name") == 1  # the tables opened by the aborted write were reopened
    store.set_ref("name", 3)
    assert store.get_ref("name") == 3 and Store(path).fsck().ok
