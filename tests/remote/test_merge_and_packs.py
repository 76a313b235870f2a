"""Properties of the two pieces of remotes that are pure functions: the tag merge and the pack format."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cafstore.remote import packs
from cafstore.remote.refcas import merge_sets
from cafstore.remote.state import parse_ref_key, ref_base, version_key
from cafstore.store.objectid import hash_bytes

tags = st.frozensets(st.sampled_from("abcdefgh"))


@given(base=tags, ours=tags, theirs=tags)
@settings(max_examples=100, deadline=None)
def test_a_three_way_merge_keeps_every_addition_and_every_untouched_removal(base, ours, theirs):
    merged = merge_sets(set(base), set(ours), set(theirs))
    assert (ours - base) <= merged and (theirs - base) <= merged  # what either side added stays
    assert ours & theirs <= merged  # what both hold stays
    for tag in base:
        if tag not in ours and tag in theirs:  # we removed it, they left it alone
            assert tag not in merged
    if ours == base:
        assert merged == theirs
    if theirs == base:
        assert merged == ours


@given(ours=tags, theirs=tags)
@settings(max_examples=50, deadline=None)
def test_with_no_common_base_nothing_is_lost(ours, theirs):
    assert merge_sets(None, set(ours), set(theirs)) == ours | theirs


@given(st.lists(st.binary(max_size=300), max_size=30, unique=True))
@settings(max_examples=50, deadline=None)
def test_a_pack_gives_back_every_object_it_was_built_from(blobs):
    objects = [(hash_bytes(b), i % 3, b) for i, b in enumerate(blobs)]
    pack_id, body, index = packs.build(objects)
    assert pack_id == str(hash_bytes(body))
    entries = packs.read_index(pack_id, index)
    assert [(e.oid, e.encoding) for e in entries] == [(o, enc) for o, enc, _ in objects]
    for entry, (_, _, data) in zip(entries, objects):
        assert body[entry.offset : entry.offset + entry.size] == data


def test_ref_keys_round_trip_and_other_keys_are_not_refs():
    key = version_key(ref_base("HelloFlow", "ab12", 3), 7)
    assert key == "refs/runs/HelloFlow/ab12/0000000003/0000000007"
    assert parse_ref_key(key) == (("HelloFlow", "ab12", 3), 7)
    for other in ("refs/runs/HelloFlow/ab12/0000000003", "packs/x.idx", "refs/runs/F/S/x/0000000001"):
        assert parse_ref_key(other) is None
