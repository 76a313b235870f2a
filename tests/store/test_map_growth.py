"""LMDB's map grows on demand: a store started tiny never shows MapFullError."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import lmdb
import pytest

from cafstore.exception import StorageFull
from cafstore.store import Store, StoreConfig, hash_bytes

TINY = 64 << 10  # a few dozen LMDB pages: the first real write already outgrows it


def tiny_store(path, **kwargs) -> Store:
    return Store(path, StoreConfig(initial_map_size=TINY, durable=False, **kwargs))


def map_size(store: Store) -> int:
    return store.index.env.info()["map_size"]


def test_many_inline_writes_grow_the_map(tmp_path):
    store = tiny_store(tmp_path / "store")
    rng = random.Random(3)
    written = {}
    for i in range(600):
        data = rng.randbytes(rng.choice([10, 1000, 8000, 30_000]))
        written[store.put_bytes(data)] = data
        if i % 50 == 0:
            store.set_ref(f"refs/{i}", {"i": i, "blob": hash_bytes(data)})
            store.put_record({"i": i, "payload": "x" * 5000})
            store.put_artifact(list(range(i)))
            store.next_counter("c")
    assert map_size(store) > TINY
    for oid, data in written.items():
        assert store.get_bytes(oid) == data
    assert len(store.list_refs("refs/")) == 12
    assert store.fsck().ok


def test_single_values_far_larger_than_the_map(tmp_path):
    store = tiny_store(tmp_path / "store", inline_threshold=4 << 20)
    data = os.urandom(3 << 20)  # 48x the initial map, in one inline value
    oid = store.put_bytes(data)
    assert store.stat(oid).location == "inline"
    assert store.get_bytes(oid, verify=True) == data
    rec = store.put_record({"big": "y" * (1 << 20)})
    assert len(store.get_record(rec)["big"]) == 1 << 20


def test_oversized_transaction_fails_cleanly_and_succeeds_on_retry(tmp_path):
    store = tiny_store(tmp_path / "store")
    blobs = [os.urandom(20_000) for _ in range(40)]  # 800 KB in one transaction: over any half-map headroom

    def body(txn):
        for i, blob in enumerate(blobs):
            txn.put_bytes(blob)
            txn.set_ref(f"t/{i}", i)

    failures = 0
    for _attempt in range(10):
        try:
            with store.transaction() as txn:
                body(txn)
            break
        except StorageFull as exc:  # never lmdb.MapFullError
            assert "retry" in str(exc)
            assert not isinstance(exc, lmdb.Error)
            failures += 1
            assert store.list_refs("t/") == []  # a failed transaction left nothing
    else:
        pytest.fail("the transaction never fitted although the map kept growing")
    assert failures >= 1  # it really did outgrow the map at first
    assert len(store.list_refs("t/")) == 40
    assert all(store.get_bytes(hash_bytes(b)) == b for b in blobs)
    assert store.fsck().ok


def test_scans_survive_growth_in_the_same_process(tmp_path):
    store = tiny_store(tmp_path / "store")
    with store.transaction() as txn:
        for i in range(30):
            txn.set_ref(f"r/{i:03d}", i)
    forward, backward, objects = store.iter_refs("r/"), store.iter_refs("r/", reverse=True), store.iter_objects()
    got_forward, got_backward = [next(forward)], [next(backward)]
    before = map_size(store)
    for _ in range(300):
        store.put_bytes(os.urandom(4000))  # grows the map: py-lmdb invalidates open transactions
    assert map_size(store) > before
    got_forward += list(forward)
    got_backward += list(backward)
    assert [n for n, _ in got_forward] == [f"r/{i:03d}" for i in range(30)]
    assert [n for n, _ in got_backward] == [f"r/{i:03d}" for i in reversed(range(30))]
    assert len(list(objects)) >= 300


READER = textwrap.dedent("""
    import sys
    from cafstore.store import Store, StoreConfig
    store = Store(sys.argv[1], StoreConfig(initial_map_size=64 << 10))
    scan = store.iter_refs("r/")
    first = next(scan)
    size_before = store.index.env.info()["map_size"]
    print("ready", first[0], flush=True)
    sys.stdin.readline()  # the other process grows the map meanwhile
    value = store.get_ref("big")
    blob = store.get_bytes(value["blob"], verify=True)
    rest = [name for name, _ in scan]
    store.set_ref("from-reader", {"saw": len(blob)})
    oid = store.put_bytes(b"z" * 20_000)
    print("done", len(blob), len(rest), store.index.env.info()["map_size"] > size_before, oid, flush=True)
""")


def test_another_process_grows_the_map_under_an_open_reader(tmp_path):
    path = tmp_path / "store"
    writer = tiny_store(path)
    with writer.transaction() as txn:
        for i in range(10):
            txn.set_ref(f"r/{i}", i)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().split() == ["ready", "r/0"]
        before = map_size(writer)
        blobs = [writer.put_bytes(os.urandom(30_000)) for _ in range(100)]  # 3 MB inline
        assert map_size(writer) >= 16 * before
        writer.set_ref("big", {"blob": blobs[-1]})
        reader.stdin.write("go\n")
        reader.stdin.flush()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    words = out.split()
    assert words[:5] == ["done", "30000", "9", "True", str(hash_bytes(b"z" * 20_000))]
    assert writer.get_ref("from-reader") == {"saw": 30_000}
    assert writer.get_bytes(words[4]) == b"z" * 20_000
    assert writer.fsck().ok
