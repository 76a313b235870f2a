"""Records (canonical, immutable) and refs (the mutable names), plus a stateful model test."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from cafstore.exception import InvalidRecord, ObjectNotFound, RefConflict, StoreError
from cafstore.store import ObjectId, Store, StoreConfig, hash_bytes
from cafstore.store.records import RECORD_MAGIC

FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

keys = st.text(max_size=8).filter(lambda k: k != "$oid")  # reserved: see test_invalid_records
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
records_st = st.dictionaries(keys, json_values, max_size=6)


def reorder(value):
    """The same JSON value with every dict's keys in reverse insertion order."""
    if isinstance(value, dict):
        return {k: reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reorder(v) for v in value]
    return value


def same_json(a, b) -> bool:
    """Equality that also tells 1 from 1.0 and True, and -0.0 from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return sorted(a) == sorted(b) and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


# -- records -----------------------------------------------------------------------------------
@FIXTURE_OK
@given(record=records_st)
def test_records_are_canonical(tmp_path, record):
    store = Store(tmp_path / "s", StoreConfig(durable=False))
    oid = store.put_record(record)
    assert store.put_record(reorder(record)) == oid
    back = store.get_record(oid)
    assert same_json(back, record)
    raw = store.get_bytes(oid)
    assert raw.startswith(RECORD_MAGIC)
    assert oid == ObjectId(blake3.blake3(raw).hexdigest())
    st_ = store.stat(oid)
    assert (st_.encoding, st_.location) == ("record", "inline")


def test_record_encoding_is_compact_sorted_utf8(store):
    oid = store.put_record({"b": 1, "a": ["é", 2.5, None, True]})
    assert store.get_bytes(oid) == RECORD_MAGIC + '{"a":["é",2.5,null,true],"b":1}'.encode("utf-8")
    # Tuples are JSON arrays: they come back as lists and hash like them.
    assert store.put_record({"t": (1, 2)}) == store.put_record({"t": [1, 2]})


def test_object_ids_in_records_round_trip(store):
    a, b = store.put_bytes(b"a"), store.put_bytes(b"b" * 100_000)
    record = {"inputs": [a, b], "artifacts": {"x": a, "nested": [{"y": b}]}, "plain": str(a)}
    oid = store.put_record(record)
    back = store.get_record(oid)
    assert back == record
    assert isinstance(back["inputs"][0], ObjectId) and isinstance(back["artifacts"]["nested"][0]["y"], ObjectId)
    assert type(back["plain"]) is str  # a hex string stays a string: only ObjectIds are references
    # A record that names an id differs from one holding the same hex as text.
    assert store.put_record({"x": a}) != store.put_record({"x": str(a)})


@pytest.mark.parametrize(
    "bad",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": [1, float("-inf")]},
        {"x": {1, 2}},
        {"x": b"bytes"},
        {"x": object()},
        {1: "int key"},
        {"x": {(1, 2): 3}},
        {"$oid": "a" * 64},
        {"x": {"$oid": "a" * 64}},
        {"x": [{"$oid": "a" * 64, "other": 1}]},
        {"x": "lone surrogate \ud800"},
        {"\udfff": 1},
    ],
)
def test_invalid_records(store, bad):
    before = len(list(store.iter_objects()))
    with pytest.raises(InvalidRecord):
        store.put_record(bad)
    with pytest.raises(InvalidRecord):
        store.set_ref("r", bad)
    assert store.get_ref("r") is None
    assert len(list(store.iter_objects())) == before


@pytest.mark.parametrize("bad", [[1, 2], "text", None, 3])
def test_a_record_is_a_dict(store, bad):
    with pytest.raises(InvalidRecord, match="dict"):
        store.put_record(bad)


def test_invalid_record_names_the_field(store):
    with pytest.raises(InvalidRecord, match=r"record\.outer\.inner\[1\]"):
        store.put_record({"outer": {"inner": [1, float("nan")]}})


def test_get_record_of_non_record(store):
    oid = store.put_bytes(b"not a record")
    with pytest.raises(InvalidRecord):
        store.get_record(oid)


# -- refs --------------------------------------------------------------------------------------
def test_ref_get_set_delete(store):
    assert store.get_ref("runs/A/1") is None
    assert store.get_ref("runs/A/1", default="none") == "none"
    oid = store.put_record({"k": 1})
    value = {"record": oid, "tags": ["a", "b"], "n": 1, "f": 0.5, "ok": True, "none": None}
    store.set_ref("runs/A/1", value)
    back = store.get_ref("runs/A/1")
    assert back == value and isinstance(back["record"], ObjectId)
    store.set_ref("runs/A/1", 7)
    assert store.get_ref("runs/A/1") == 7
    assert store.delete_ref("runs/A/1") is True
    assert store.delete_ref("runs/A/1") is False
    assert store.get_ref("runs/A/1") is None


def test_ref_names(store):
    for good in ("x", "Flow/12/start/3", "ünïcødé/名前", "a" * 500, " spaced name "):
        store.set_ref(good, 1)
        assert store.get_ref(good) == 1
    for bad in ("", "a" * 501, "é" * 251, "\ud800"):
        with pytest.raises(StoreError):
            store.set_ref(bad, 1)
        with pytest.raises(StoreError):
            store.get_ref(bad)


NAMES = ["a", "a/1", "a/10", "a/2", "ab", "b", "b/x", "z", "zz", "zz\U0010ffff", "\U0010ffff", "\U0010ffff/x", "é"]


def utf8_sorted(names):
    return sorted(names, key=lambda n: n.encode("utf-8"))


@pytest.mark.parametrize(
    "prefix", ["", "a", "a/", "a/1", "ab", "b", "c", "z", "zz", "zzz", "\U0010ffff", "é", "\U0010ffff/", "0", "~"]
)
def test_list_and_iter_refs_by_prefix(store, prefix):
    for i, name in enumerate(NAMES):
        store.set_ref(name, i)
    expected = [(n, NAMES.index(n)) for n in utf8_sorted(NAMES) if n.startswith(prefix)]
    assert store.list_refs(prefix) == expected
    assert list(store.iter_refs(prefix)) == expected
    assert list(store.iter_refs(prefix, reverse=True)) == expected[::-1]


def test_iter_refs_on_an_empty_store(store):
    assert store.list_refs() == []
    assert list(store.iter_refs()) == []
    assert list(store.iter_refs("x", reverse=True)) == []
    assert list(store.iter_refs("", reverse=True)) == []


@FIXTURE_OK
@given(
    names=st.sets(st.text(alphabet="ab/é\U0010ffff", min_size=1, max_size=4), max_size=12),
    prefix=st.text(alphabet="ab/é\U0010ffff", max_size=3),
)
def test_iter_refs_matches_a_sorted_model(tmp_path, names, prefix):
    path = Path(tempfile.mkdtemp(dir=tmp_path))
    store = Store(path, StoreConfig(durable=False))
    with store.transaction() as txn:
        for name in names:
            txn.set_ref(name, name)
    expected = [(n, n) for n in utf8_sorted(names) if n.startswith(prefix)]
    assert list(store.iter_refs(prefix)) == expected
    assert list(store.iter_refs(prefix, reverse=True)) == expected[::-1]
    assert store.list_refs(prefix) == expected


def test_latest_by_reverse_scan(store):
    for run in (1, 2, 3, 10):
        store.set_ref(f"runs/Flow/{run:08d}", {"id": run})
    store.set_ref("runs/Flowy/00000099", {"id": 99})
    name, value = next(store.iter_refs("runs/Flow/", reverse=True))
    assert (name, value) == ("runs/Flow/00000010", {"id": 10})


def test_compare_and_swap(store):
    store.set_ref("r", "v1", expected=None)  # create-only
    with pytest.raises(RefConflict, match="'r'"):
        store.set_ref("r", "other", expected=None)
    assert store.get_ref("r") == "v1"
    with pytest.raises(RefConflict):
        store.set_ref("r", "v2", expected="stale")
    assert store.get_ref("r") == "v1"
    store.set_ref("r", {"n": [1, 2]}, expected="v1")
    store.set_ref("r", "v3", expected={"n": [1, 2]})
    assert store.get_ref("r") == "v3"
    store.delete_ref("r")
    store.set_ref("r", "again", expected=None)
    assert store.get_ref("r") == "again"


@pytest.mark.parametrize("held, expected", [(1, True), (True, 1), (1, 1.0), (0, False), ([1], [True]), (0.0, -0.0)])
def test_compare_and_swap_is_exact(store, held, expected):
    """JSON 1, true and 1.0 are different values: a CAS expecting one must not match another."""
    store.set_ref("r", held)
    with pytest.raises(RefConflict):
        store.set_ref("r", "new", expected=expected)
    assert same_json(store.get_ref("r"), held)


def test_update_ref(store):
    assert store.update_ref("count", lambda old: old + 1, default=0) == 1
    assert store.update_ref("count", lambda old: old + 1, default=0) == 2
    assert store.update_ref("tags", lambda old: sorted(set(old) | {"b"}), default=["a"]) == ["a", "b"]
    assert store.get_ref("tags") == ["a", "b"]
    with pytest.raises(ZeroDivisionError):
        store.update_ref("count", lambda old: old / 0)
    assert store.get_ref("count") == 2


def test_counters(store):
    assert [store.next_counter("runs/A") for _ in range(3)] == [1, 2, 3]
    assert store.next_counter("runs/B") == 1
    with store.transaction() as txn:
        assert txn.next_counter("runs/A") == 4
        assert txn.next_counter("runs/A") == 5
    assert store.next_counter("runs/A") == 6
    # Counters and refs are separate tables: a ref of the same name is untouched.
    store.set_ref("runs/A", "a ref")
    assert store.next_counter("runs/A") == 7 and store.get_ref("runs/A") == "a ref"


def test_transaction_commits_together(store):
    store.set_ref("gone", 1)
    with store.transaction() as txn:
        rec = txn.put_record({"step": "start"})
        blob = txn.put_bytes(b"inline bytes")
        art = txn.put_artifact({"x": 1})
        run = txn.next_counter("runs/F")
        txn.set_ref(f"runs/F/{run}", {"record": rec, "blob": blob, "art": art})
        txn.set_ref("latest", run, expected=None)
        assert txn.get_ref("latest") == 1
        assert txn.delete_ref("gone")
        assert [n for n, _ in txn.list_refs("runs/")] == ["runs/F/1"]
        # Not visible outside the transaction before it commits.
        assert store.get_ref("latest") is None and store.get_ref("gone") == 1
        assert not store.exists(rec)
    assert store.get_ref("latest") == 1 and store.get_ref("gone") is None
    assert store.get_record(rec) == {"step": "start"}
    assert store.get_bytes(blob) == b"inline bytes"
    assert store.get_artifact(art) == {"x": 1}
    assert store.fsck().ok


class Boom(Exception):
    pass


def test_transaction_is_all_or_nothing(small_store):
    store = small_store
    store.set_ref("keep", "before")
    before_objects = {s.oid for s in store.iter_objects()}
    with pytest.raises(Boom):
        with store.transaction() as txn:
            rec = txn.put_record({"step": "end"})
            small = txn.put_bytes(b"tiny")
            large = txn.put_bytes(os.urandom(10_000))  # a file: written, but never indexed
            txn.next_counter("c")
            txn.set_ref("keep", "after")
            txn.set_ref("new", {"r": rec})
            txn.delete_ref("keep")
            raise Boom()
    assert store.get_ref("keep") == "before" and store.get_ref("new") is None
    assert store.next_counter("c") == 1
    for oid in (rec, small, large):
        assert not store.exists(oid)
        with pytest.raises(ObjectNotFound):
            store.get_bytes(oid)
    assert {s.oid for s in store.iter_objects()} == before_objects
    report = store.fsck()
    assert report.ok  # the unindexed file is at most a note (gc removes it)


def test_cas_conflict_inside_transaction_rolls_back(store):
    store.set_ref("a", 1)
    with pytest.raises(RefConflict):
        with store.transaction() as txn:
            txn.set_ref("b", 2)
            txn.set_ref("a", 3, expected=2)
    assert store.get_ref("a") == 1 and store.get_ref("b") is None


def test_two_store_objects_on_one_path(tmp_path):
    one, two = Store(tmp_path / "s"), Store(tmp_path / "s")
    one.set_ref("x", 1)
    assert two.get_ref("x") == 1
    oid = two.put_bytes(b"shared")
    assert one.get_bytes(oid) == b"shared"
    one.close()
    assert two.get_ref("x") == 1  # closing one Store object does not break another
    assert one.get_ref("x") == 1  # and a closed Store reopens on next use


def test_closing_one_store_leaves_other_stores_working(tmp_path):
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    a.set_ref("k", "a")
    b.set_ref("k", "b")
    iterator = b.iter_refs()
    a.close()
    assert b.get_ref("k") == "b"
    assert list(iterator) == [("k", "b")]
    assert a.get_ref("k") == "a"


# -- the store against a dict model ------------------------------------------------------------
ref_names = st.sampled_from(["a", "a/1", "a/2", "b", "b/1", "runs/F/1", "runs/F/2", "é"])
prefixes = st.sampled_from(["", "a", "a/", "b", "runs/", "runs/F/", "x", "é"])
payloads = st.binary(max_size=300)


class StoreModel(RuleBasedStateMachine):
    """put_bytes, put_record, refs with CAS, counters and reopening, checked against plain dicts."""

    objects = Bundle("objects")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="cafstore-model-"))
        # Not durable: fsync is not what this test is about, and it would dominate its time.
        self.config = StoreConfig(inline_threshold=100, initial_map_size=1 << 20, durable=False)
        self.store = Store(self.dir / "store", self.config)
        self.blobs: dict = {}
        self.records: dict = {}
        self.refs: dict = {}
        self.counters: dict = {}

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(target=objects, data=payloads)
    def put_bytes(self, data):
        oid = self.store.put_bytes(data)
        assert oid == hash_bytes(data)
        self.blobs[oid] = data
        return oid

    @rule(
        target=objects,
        fields=st.dictionaries(st.sampled_from("xyz"), st.integers(0, 3) | st.text(max_size=3), max_size=3),
        link=st.none() | objects,
    )
    def put_record(self, fields, link):
        record = dict(fields)
        if link is not None:
            record["link"] = link
        oid = self.store.put_record(record)
        self.records[oid] = record
        return oid

    @rule(name=ref_names, oid=objects)
    def set_ref(self, name, oid):
        value = {"target": oid, "n": len(self.refs)}
        self.store.set_ref(name, value)
        self.refs[name] = value

    @rule(name=ref_names)
    def delete_ref(self, name):
        assert self.store.delete_ref(name) == (name in self.refs)
        self.refs.pop(name, None)

    @rule(name=ref_names, stale=st.booleans(), value=st.integers())
    def compare_and_swap(self, name, stale, value):
        current = self.refs.get(name)
        expected = {"not": "it"} if stale else current
        if stale:
            with pytest.raises(RefConflict):
                self.store.set_ref(name, value, expected=expected)
        else:
            self.store.set_ref(name, value, expected=expected)
            self.refs[name] = value

    @rule(name=st.sampled_from(["c1", "c2"]))
    def next_counter(self, name):
        self.counters[name] = self.counters.get(name, 0) + 1
        assert self.store.next_counter(name) == self.counters[name]

    @rule(prefix=prefixes, reverse=st.booleans())
    def list_refs(self, prefix, reverse):
        expected = [(n, self.refs[n]) for n in utf8_sorted(self.refs) if n.startswith(prefix)]
        assert self.store.list_refs(prefix) == expected
        assert list(self.store.iter_refs(prefix, reverse=reverse)) == (expected[::-1] if reverse else expected)

    @rule()
    def reopen(self):
        self.store.close()
        self.store = Store(self.dir / "store", self.config)

    @rule(oid=objects)
    def read_object(self, oid):
        if oid in self.blobs:
            assert self.store.get_bytes(oid, verify=True) == self.blobs[oid]
        else:
            assert self.store.get_record(oid) == self.records[oid]

    @invariant()
    def refs_match(self):
        for name in ("a", "runs/F/1", "é"):
            assert self.store.get_ref(name) == self.refs.get(name)

    @precondition(lambda self: len(self.blobs) + len(self.records) > 0)
    @invariant()
    def objects_exist(self):
        for oid in list(self.blobs)[:5] + list(self.records)[:5]:
            assert self.store.exists(oid)


StoreModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestStoreModel = StoreModel.TestCase


def test_model_final_fsck(tmp_path):
    """A short fixed scenario through the same machine, ending with fsck."""
    machine = StoreModel()
    try:
        a = machine.put_bytes(b"x" * 200)
        r = machine.put_record({"x": 1}, a)
        machine.set_ref("a/1", r)
        machine.reopen()
        machine.compare_and_swap("a/1", stale=False, value=5)
        assert machine.store.fsck().ok
    finally:
        machine.teardown()


def test_iter_refs_containing_keeps_only_refs_holding_every_string(store):
    store.set_ref("runs/F/0000000001", {"tags": ["user:anne", "a b"]})
    store.set_ref("runs/F/0000000002", {"tags": ["user:will"]})
    store.set_ref("runs/F/0000000003", {"tags": ["user:anne"], "note": "user:anne's"})
    found = [name for name, _ in store.iter_refs("runs/F/", reverse=True, containing=["user:anne"])]
    assert found == ["runs/F/0000000003", "runs/F/0000000001"]
    both = [name for name, _ in store.iter_refs("runs/F/", containing=["user:anne", "a b"])]
    assert both == ["runs/F/0000000001"]
    # A string that only appears inside a longer string is not a match: the test is on JSON strings.
    assert [n for n, _ in store.iter_refs("runs/F/", containing=["user:ann"])] == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="0123456789abcdefABCDEF g\u00e9", min_size=60, max_size=68))
def test_a_bare_object_id_decodes_like_any_other_value(text):
    """Ref values that are one ObjectId take a fast path: same value, or the same refusal, as the JSON path."""
    import json

    from cafstore.exception import CafstoreError
    from cafstore.store import records

    raw = json.dumps({"$oid": text}, separators=(",", ":"), ensure_ascii=False).encode()
    spaced = json.dumps({"$oid": text}, separators=(", ", ": "), ensure_ascii=False).encode()  # not the fast path
    try:
        expected = records.decode(spaced)
    except CafstoreError as exc:
        with pytest.raises(type(exc)):
            records.decode(raw)
    else:
        assert records.decode(raw) == expected and type(records.decode(raw)) is type(expected)
