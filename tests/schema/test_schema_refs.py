"""Ref names (cafstore.schema): every builder's output parses back, and only as its own kind.

The literal names are the stored format (docs/datamodel.md): a store written
before this module existed must read back the same, so they are spelled out
here independently of the code.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cafstore import schema

no_slash = st.text(alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1)
anything = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1)
numbers = st.integers(min_value=0, max_value=10**10 - 1)

# kind -> (strategy of the builder's arguments, builder, parser)
KINDS = {
    "flow": (st.tuples(no_slash), schema.flow_ref, schema.parse_flow_ref),
    "run": (st.tuples(no_slash, numbers), schema.run_ref, schema.parse_run_ref),
    "task": (st.tuples(no_slash, numbers, no_slash, numbers), schema.task_ref, schema.parse_task_ref),
    "pin": (st.tuples(no_slash, numbers), schema.pin_ref, schema.parse_pin_ref),
    "cache": (st.tuples(anything), schema.cache_ref, schema.parse_cache_ref),
    "production": (st.tuples(anything), schema.production_ref, schema.parse_production_ref),
    "authorized": (st.tuples(anything, no_slash), schema.authorized_ref, schema.parse_authorized_ref),
    "default namespace": (st.tuples(anything), schema.default_namespace_ref, schema.parse_default_namespace_ref),
    "run counter": (st.tuples(no_slash), schema.run_counter, schema.parse_run_counter),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_ref_name_round_trips_and_no_other_parser_claims_it(kind):
    strategy, build, parse = KINDS[kind]

    @given(strategy)
    def check(args):
        name = build(*args)
        parsed = parse(name)
        assert (parsed if isinstance(parsed, tuple) else (parsed,)) == args
        for other, (_, _, other_parse) in KINDS.items():
            if other != kind:
                assert other_parse(name) is None, (other, name)

    check()


def test_the_stored_spelling():
    assert schema.flow_ref("HelloFlow") == "flows/HelloFlow"
    assert schema.run_ref("HelloFlow", 12) == "runs/HelloFlow/0000000012"
    assert schema.runs_prefix("HelloFlow") == "runs/HelloFlow/"
    assert schema.task_ref("HelloFlow", 12, "start", 3) == "tasks/HelloFlow/0000000012/start/0000000003"
    assert schema.tasks_prefix("HelloFlow", 12) == "tasks/HelloFlow/0000000012/"
    assert schema.tasks_prefix("HelloFlow", 12, "start") == "tasks/HelloFlow/0000000012/start/"
    assert schema.pin_ref("HelloFlow", 12) == "pins/HelloFlow/0000000012"
    assert schema.cache_ref("ab12") == "cache/ab12"
    assert schema.production_ref("HelloFlow") == "namespaces/production/HelloFlow"
    assert schema.authorized_ref("anne", "HelloFlow") == "namespaces/authorized/anne/HelloFlow"
    assert schema.default_namespace_ref("anne") == "namespaces/default/anne"
    assert schema.run_counter("HelloFlow") == "run_id/HelloFlow"


@given(no_slash, numbers, numbers)
def test_run_refs_sort_in_run_order(flow, a, b):
    """latest_run is one reverse scan: key order must be numeric order."""
    assert (schema.run_ref(flow, a) < schema.run_ref(flow, b)) == (a < b)
    assert (schema.task_ref(flow, 1, "s", a) < schema.task_ref(flow, 1, "s", b)) == (a < b)


@given(no_slash, numbers, no_slash, numbers)
def test_prefixes_scan_exactly_their_refs(flow, run_id, step, task_id):
    name = schema.task_ref(flow, run_id, step, task_id)
    assert name.startswith(schema.tasks_prefix(flow, run_id, step))
    assert name.startswith(schema.tasks_prefix(flow, run_id))
    assert name.startswith(schema.TASKS_PREFIX)
    assert schema.run_ref(flow, run_id).startswith(schema.runs_prefix(flow))
    # Another run's refs are outside the scan, even one whose id shares the leading digits.
    assert not schema.task_ref(flow, run_id + 1, step, task_id).startswith(schema.tasks_prefix(flow, run_id))


@pytest.mark.parametrize(
    "name",
    [
        "runs/F",
        "runs//0000000001",
        "runs/F/12a",
        "runs/F/",
        "runs/F/\u00b2",
        "pins/keep",
        "tasks/F/0000000001/start",
        "tasks/F/x/start/0000000001",
        "tasks/F/0000000001//0000000001",
        "flows/",
        "cache/",
        "namespaces/authorized/anne",
        "namespaces/authorized//F",
        "other/F/1",
    ],
)
def test_malformed_names_parse_as_nothing(name):
    for kind, (_, _, parse) in KINDS.items():
        assert parse(name) is None, kind
