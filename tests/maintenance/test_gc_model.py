"""Property: gc never deletes anything reachable, and deletes everything old and unreachable.

A random model of objects (inline, file and chunked leaves; records pointing at
earlier objects), refs, and an "old" phase followed by a "recent" phase, is
built in a real store; gc's result is compared with the closure computed by
the model itself.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maint_helpers import age, small_config

from cafstore.maintenance import gc
from cafstore.store import Store, records

SIZES = {"inline": (1, 900), "file": (2_000, 8_000), "chunked": (66_000, 90_000)}


def _content(kind: str, seed: int) -> bytes:
    rng = random.Random(seed)
    return rng.randbytes(rng.randint(*SIZES[kind]))


phase = st.lists(
    st.one_of(
        st.tuples(st.just("leaf"), st.sampled_from(sorted(SIZES)), st.integers(0, 12)),
        st.tuples(st.just("record"), st.lists(st.integers(0, 10_000), min_size=1, max_size=4)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=phase, recent=phase, ref_picks=st.lists(st.integers(0, 10_000), max_size=5), data=st.data())
def test_gc_keeps_exactly_the_live_set(tmp_path_factory, old, recent, ref_picks, data):
    store = Store(tmp_path_factory.mktemp("model"), config=small_config())
    edges: dict = {}
    contents: dict = {}
    made: list = []

    def apply(ops) -> list:
        out = []
        for op in ops:
            if op[0] == "leaf":
                content = _content(op[1], op[2])
                oid = store.put_bytes(content)
                contents[oid] = content
                edges.setdefault(oid, [])
            elif made or out:
                pool = made + out
                targets = [pool[i % len(pool)] for i in op[1]]
                oid = store.put_record({"kind": "test", "to": targets})
                edges[oid] = targets
            else:
                continue
            out.append(oid)
        return out

    made += apply(old)
    age(store)
    fresh = apply(recent)
    made += fresh
    roots = [made[i % len(made)] for i in ref_picks] if made else []
    for n, oid in enumerate(roots):
        store.set_ref(f"refs/test/{n}", {"target": oid})
    if roots and data.draw(st.booleans(), label="delete a ref"):
        store.delete_ref("refs/test/0")
        roots = roots[1:]

    def closure(starts) -> set:
        seen, stack = set(), list(starts)
        while stack:
            oid = stack.pop()
            if oid not in seen:
                seen.add(oid)
                stack.extend(edges[oid])
        return seen

    # A reused old object is freshened with everything it reaches (freshen.py): it counts as recent.
    live = closure(roots) | closure(fresh)
    report = gc.collect(store, grace=3600)
    present = {st.oid for st in store.iter_objects()}
    for oid in live:
        assert oid in present
        if oid in contents:
            assert store.get_bytes(oid, verify=True) == contents[oid]
        else:
            assert records.decode_record(store.open(oid))["to"] == edges[oid]
    assert not (set(made) - live) & present, "an old unreachable object survived"
    assert store.fsck().ok
    assert not store.fsck().notes
    assert report.freed_bytes >= 0
