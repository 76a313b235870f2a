"""Flow shapes: linear, branches, foreach, nested foreach, branches inside a foreach, the join barrier."""

from __future__ import annotations

import pytest
from helpers import Stored, fsck_ok, run_flow


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


def test_linear_flow_passes_artifacts_and_drops_private_and_deleted(store):
    done = run_flow("linear.py", store=store)
    assert done.returncode == 0, done.stderr
    assert "count 2 False False" in done.stdout
    view = Stored(store)
    start, middle, end = (view.task("LinearFlow", s) for s in ("start", "middle", "end"))
    # with the class constant GREETING and the flow's name, which every task stores (as Metaflow does)
    assert view.data(start) == {"count": 1, "doomed": "gone soon", "GREETING": "hi", "name": "LinearFlow"}
    assert "doomed" not in middle["artifacts"] and "_scratch" not in middle["artifacts"]
    assert sorted(middle["new_artifacts"]) == ["count", "words"]
    # an inherited list changed in place, never reassigned, is stored again
    assert view.data(end)["words"] == ["a", "b"] and end["new_artifacts"] == ["words"]
    # an artifact the step did not touch keeps its object: nothing re-serialised
    assert end["artifacts"]["count"] == middle["artifacts"]["count"]
    assert end["parents"] == [view.store.get_ref(f"tasks/LinearFlow/{1:010d}/middle/{2:010d}")]
    run = view.run("LinearFlow")
    assert run["status"] == "succeeded" and run["finished"] >= run["created"]
    assert view.store.get_record(run["graph"])["name"] == "LinearFlow"
    assert b"class LinearFlow" in view.store.get_bytes(run["code"]) and run["code"] == end["code"]
    view.close()
    assert fsck_ok(store)


def test_branches_keep_split_order_and_name_access(store):
    done = run_flow("branches.py", store=store)
    assert done.returncode == 0, done.stderr
    assert "['a2', 'b', 'c'] ['a2', 'b', 'c'] 3 a2 same" in done.stdout
    view = Stored(store)
    join = view.task("BranchFlow", "join")
    assert len(join["parents"]) == 3
    # after a join only what it assigned (plus parameters) goes on
    assert sorted(join["artifacts"]) == ["by_name", "first", "n", "name", "order", "shared"]
    view.close()


def test_nested_foreach_with_branch_inside(store):
    done = run_flow("nested.py", store=store)
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    inner = sorted(view.tasks("NestedFlow", step="inner"), key=lambda r: r["task_id"])
    assert len(inner) == 6
    pairs = sorted(view.data(r)["pair"] for r in inner)
    assert pairs == [(x, y, i) for x in (10, 20) for i, y in enumerate("abc")]
    stack = view.data(inner[0])["stack"]
    assert len(stack) == 2 and stack[0][1] == 2 and stack[1][1] == 3
    assert [f["var"] for f in inner[0]["foreach_stack"]] == ["xs", "ys"]
    bj = view.tasks("NestedFlow", step="branch_join")
    assert sorted(view.data(r)["seen_input"] for r in bj) == sorted("abc" * 2)
    assert all(view.data(r)["side"] == 3 for r in bj)
    end = view.data(view.task("NestedFlow", "outer_join"))
    assert end["pairs"] == [(x, y, i) for x in (10, 20) for i, y in enumerate("abc")]  # input order = index order
    assert end["indexes"] == [0, 1]
    ids = [r["task_id"] for r in view.tasks("NestedFlow")]
    assert len(ids) == len(set(ids)) == 1 + 2 + 6 * 4 + 2 + 1 + 1
    view.close()


def test_foreach_example_like_flow_split_counts(store):
    done = run_flow("sleepers.py", "--n", "3", "--seconds", "0", store=store)
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    start = view.task("SleepFlow", "start")
    assert start["num_splits"] == 3
    naps = view.tasks("SleepFlow", step="nap")
    assert sorted(r["foreach_stack"][0]["index"] for r in naps) == [0, 1, 2]
    assert len({r["env"]["pid"] for r in naps}) == 3  # each task its own process
    view.close()


def test_join_barrier_error_names_the_join(store):
    done = run_flow("barrier.py", store=store, env={"MODE": "fail"})
    assert done.returncode == 1
    assert "has creature: False" in done.stdout
    assert "join step 'join'" in done.stderr and "self.creature" in done.stderr
    assert "Traceback" not in done.stderr
    assert fsck_ok(store)


def test_join_reading_unassigned_artifact_points_to_inputs(store):
    done = run_flow("barrier.py", store=store, env={"MODE": "in_join"})
    assert done.returncode == 1
    assert "inputs[0].creature" in done.stderr and "merge_artifacts" in done.stderr


def test_join_barrier_reassigned_is_fine(store):
    done = run_flow("barrier.py", store=store, env={"MODE": "ok"})
    assert done.returncode == 0, done.stderr
    assert "The creature is dog" in done.stdout


def test_foreach_inside_a_branch_with_a_two_step_body(store):
    done = run_flow("mixed.py", store=store)
    assert done.returncode == 0, done.stderr
    assert "['XX0', 'YY1', 'ZZ2', 'other']" in done.stdout
