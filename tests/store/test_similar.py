"""Chunking at put time only for values that resemble a stored one (cafstore/store/similar.py)."""

from __future__ import annotations

import io

import lmdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cafstore.maintenance import dedup, gc
from cafstore.store import Store, StoreConfig, hash_bytes, similar

KIB = 1 << 10
# Small chunks so a 4 MiB value has 8 sampled windows (16 KiB each): production's geometry scaled down 2x.
CHUNK = 512 * KIB


def config(**overrides) -> StoreConfig:
    values = dict(durable=False, chunk_threshold=256 * KIB, chunk_size=CHUNK)
    values.update(overrides)
    return StoreConfig(**values)


def random_bytes(seed: int, size: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def similar_entries(store: Store) -> list:
    with store.index.read() as txn:
        return list(txn.cursor(db=store.index.tables[similar.TABLE]))


def edited(data: bytes, kind: str, where: float, amount: int) -> bytes:
    at = int(where * (len(data) - amount))
    if kind == "overwrite":
        return data[:at] + bytes(255 - b for b in data[at : at + amount]) + data[at + amount :]
    if kind == "insert":
        return data[:at] + random_bytes(at + 7, amount) + data[at:]
    return data[:at] + data[at + amount :]  # delete


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(3 << 20, 5 << 20),
    kind=st.sampled_from(["overwrite", "insert", "delete"]),
    where=st.floats(0, 1),
    amount=st.integers(1, 4 * KIB),
)
def test_sketches_find_edited_versions_and_never_unrelated_values(seed, size, kind, where, amount):
    """An edited copy (a few KiB changed, inserted or removed anywhere) is found; unrelated bytes are not."""
    base = random_bytes(seed, size)
    other = edited(base, kind, where, amount)
    base_sketch = similar.sketch([base], len(base), CHUNK)
    other_sketch = similar.sketch([other], len(other), CHUNK)
    stranger_sketch = similar.sketch([random_bytes(seed + 1, size)], size, CHUNK)
    assert len(base_sketch) >= similar.KEEP // 2
    shared = len(set(base_sketch) & set(other_sketch))
    assert shared >= similar.MIN_SHARE * len(other_sketch), f"only {shared} fingerprints in common"
    assert not set(base_sketch) & set(stranger_sketch)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(0, 2 << 20), max_size=6))
def test_sketch_does_not_depend_on_how_the_value_is_split_into_pieces(seed, cuts):
    """An artifact arrives as pieces (header, pickle, buffers): the sketch is the content's, not the split's."""
    data = random_bytes(seed, 2 << 20)
    bounds = sorted({0, len(data), *cuts})
    pieces = [memoryview(data)[a:b] for a, b in zip(bounds, bounds[1:])]
    assert similar.sketch(pieces, len(data), CHUNK) == similar.sketch([data], len(data), CHUNK)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["overwrite", "insert", "delete"]), where=st.floats(0, 1))
def test_versions_round_trip_and_share_chunks(tmp_path_factory, seed, kind, where):
    """Unique values stay whole; an edited version is chunked, its base converted, both read back exactly."""
    store = Store(tmp_path_factory.mktemp("s"), config=config())
    base = random_bytes(seed, 4 << 20)
    first = store.put_bytes(base)
    assert store.stat(first).location == "file"
    before = dedup.analyse(store).physical_bytes
    version = edited(base, kind, where, 2 * KIB)
    second = store.put_bytes(version)
    assert store.stat(second).location == "chunked" and store.stat(first).location == "chunked"
    assert store.get_bytes(first) == base and store.get_bytes(second) == version
    assert dedup.analyse(store).physical_bytes - before < 0.5 * len(base)  # chunks average 512 KiB here
    assert store.fsck().ok


def test_unique_values_stay_whole_and_leave_a_sketch(tmp_path):
    store = Store(tmp_path / "s", config=config())
    ids = [store.put_bytes(random_bytes(seed, 1 << 20)) for seed in range(3)]
    assert [store.stat(oid).location for oid in ids] == ["file"] * 3
    assert {digest for _, digest in similar_entries(store)} == {oid.digest for oid in ids}
    small = store.put_bytes(random_bytes(9, 100 * KIB))  # under the threshold: no sketch at all
    assert small.digest not in {digest for _, digest in similar_entries(store)}


def test_a_version_stored_by_put_file_and_inside_a_transaction(tmp_path):
    store = Store(tmp_path / "s", config=config())
    base = random_bytes(1, 4 << 20)
    first = store.put_file(io.BytesIO(base))
    assert store.stat(first).location == "file"
    second = store.put_file(io.BytesIO(base[:-1000] + b"tail" * 250))
    assert store.stat(second).location == "chunked" and store.stat(first).location == "chunked"
    assert list(store.blobs.tmp.iterdir()) == []
    with store.transaction() as txn:  # one writer per thread: the new value is chunked, nothing converted
        third = txn.put_bytes(b"head" * 100 + base)
    assert store.stat(third).location == "chunked"
    assert store.get_bytes(third) == b"head" * 100 + base
    assert store.fsck().ok


def test_threshold_zero_turns_chunking_off(tmp_path, monkeypatch):
    monkeypatch.setenv("CAFSTORE_CHUNK_THRESHOLD", "0")
    store = Store(tmp_path / "s", config=StoreConfig.from_env())
    assert store.config.chunk_threshold == 0
    base = random_bytes(3, 6 << 20)
    ids = [store.put_bytes(base), store.put_bytes(base[:-10] + b"0123456789")]
    assert [store.stat(oid).location for oid in ids] == ["file", "file"]
    assert similar_entries(store) == []


def test_gc_keeps_chunks_of_live_values_and_prunes_hints_of_swept_ones(tmp_path):
    store = Store(tmp_path / "s", config=config())
    base = random_bytes(4, 4 << 20)
    first = store.put_bytes(base)
    second = store.put_bytes(b"x" * 3000 + base)
    store.set_ref("keep", store.put_record({"value": second}))
    report = gc.collect(store, grace=0)
    assert not store.exists(first) and store.get_bytes(second) == b"x" * 3000 + base
    assert report.removed and store.fsck().ok
    assert {digest for _, digest in similar_entries(store)} == {second.digest}
    third = store.put_bytes(base + b"y")  # the hints still find the live version
    assert store.stat(third).location == "chunked"


def test_a_store_from_before_the_table_opens_and_gains_it(tmp_path):
    path = tmp_path / "s"
    store = Store(path, config=config())
    oid = store.put_bytes(random_bytes(5, 1 << 20))
    store.close()
    env = lmdb.open(str(path / "index"), max_dbs=10)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(similar.TABLE.encode(), txn=txn), delete=True)
    env.close()
    reopened = Store(path, config=config())
    assert similar_entries(reopened) == []  # recreated empty: no hint, nothing lost
    assert reopened.get_bytes(oid) == random_bytes(5, 1 << 20)
    assert reopened.fsck().ok


@pytest.mark.parametrize("seed", [0, 1])
def test_zero_runs_alone_do_not_make_values_similar(tmp_path, seed):
    """Two unrelated arrays that both hold long runs of zeros share one fingerprint at most: not similar."""
    store = Store(tmp_path / "s", config=config())
    pad = bytes(2 << 20)
    first = store.put_bytes(pad + random_bytes(seed, 2 << 20) + pad)
    second = store.put_bytes(pad + random_bytes(seed + 10, 2 << 20) + pad)
    assert store.stat(first).location == "file" and store.stat(second).location == "file"
    assert hash_bytes(store.get_bytes(second)) == second
