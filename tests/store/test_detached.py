"""The detached store view and its way back into the index (cafstore/store/detached.py), on a real store.

A process that may not open the index reads what it was shipped (and large objects from the blob
backend), writes large objects to the backend and keeps the rest; the owner then adopts all of it
in one transaction, or nothing if a large object is missing or a small one does not hash to its id.
"""

from __future__ import annotations

import os
import pickle

import pytest

from cafstore.exception import CorruptObject, ObjectNotFound, StoreError
from cafstore.store import Store, StoreConfig
from cafstore.store.detached import DetachedStore, Parcel, adopt

SMALL = 256


@pytest.fixture
def owner(tmp_path):
    store = Store(tmp_path / "store", StoreConfig(inline_threshold=SMALL))
    yield store
    store.close()


def _detached(owner, tmp_path, oids):
    parcel = Parcel.of(owner)
    parcel.ship(owner, oids)
    parcel = pickle.loads(pickle.dumps(parcel))  # it crosses a process boundary
    return DetachedStore(parcel, tmp_path / "scratch"), parcel


def test_reads_come_from_the_parcel_and_large_objects_from_the_blobs(owner, tmp_path):
    small, large = owner.put_artifact([1, 2, 3]), owner.put_artifact(b"L" * 10_000)
    record = owner.put_record({"artifacts": {"small": small, "large": large}})
    view, parcel = _detached(owner, tmp_path, [record, small, large])
    assert str(large) not in parcel.objects and str(small) in parcel.objects  # large ones are not shipped
    assert view.get_record(record)["artifacts"]["small"] == small
    assert view.get_artifact(small) == [1, 2, 3] and view.get_artifact(large) == b"L" * 10_000
    other = owner.put_artifact("never shipped")
    with pytest.raises(ObjectNotFound, match="not shipped"):
        view.open(other)


def test_what_a_detached_task_writes_is_adopted_in_one_transaction(owner, tmp_path):
    view, _ = _detached(owner, tmp_path, [])
    small, large = view.put_artifact({"a": 1}), view.put_artifact(b"B" * 20_000)
    record = view.put_record({"artifacts": {"small": small, "large": large}})
    assert view.get_artifact(small) == {"a": 1}  # its own writes read back before any commit
    assert not owner.exists(small) and not owner.exists(large)
    bundle = pickle.loads(pickle.dumps(view.bundle()))
    with owner.transaction() as txn:
        adopt(owner, txn, bundle)
        txn.set_ref("test/adopted", record)
    assert owner.get_artifact(large) == b"B" * 20_000 and owner.get_artifact(small) == {"a": 1}
    assert owner.stat(large).location == "file" and owner.stat(small).location == "inline"
    assert owner.fsck().ok


def test_a_missing_large_object_or_a_bad_small_one_adopts_nothing(owner, tmp_path):
    view, _ = _detached(owner, tmp_path, [])
    small, large = view.put_artifact("s"), view.put_artifact(b"C" * 20_000)
    bundle = view.bundle()
    owner.blobs.delete(large)  # the worker's write never landed
    with pytest.raises(StoreError, match="not there"):
        with owner.transaction() as txn:
            adopt(owner, txn, bundle)
    assert not owner.exists(small) and not owner.exists(large)
    view2, _ = _detached(owner, tmp_path, [])
    key = str(view2.put_artifact("t"))
    forged = view2.bundle()
    forged["small"][key][1] = b"not these bytes"
    with pytest.raises(CorruptObject):
        with owner.transaction() as txn:
            adopt(owner, txn, forged)
    assert not owner.exists(key)


def test_chunked_objects_are_read_through_their_shipped_chunk_list(tmp_path):
    owner = Store(
        tmp_path / "chunky",
        StoreConfig(inline_threshold=SMALL, chunk_threshold=4096, chunk_size=1024, chunk_similar_only=False),
    )
    value = os.urandom(50_000)
    oid = owner.put_artifact(value)
    assert owner.stat(oid).location == "chunked"
    view, _ = _detached(owner, tmp_path, [oid])
    assert view.get_artifact(oid) == value
    owner.close()


def test_a_local_backend_is_bound_to_the_owners_machine(owner):
    assert Parcel.of(owner).machine_bound
