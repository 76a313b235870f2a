"""merge_artifacts: Metaflow's semantics, the collect=True opt-in, and every misuse."""

from __future__ import annotations

import pytest
from helpers import Stored, fsck_ok, run_flow


def merged(tmp_path, mode):
    store = tmp_path / "store"
    done = run_flow("merging.py", store=store, env={"MODE": mode})
    return store, done


def test_metaflow_semantics(tmp_path):
    store, done = merged(tmp_path, "metaflow")
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    join = view.task("MergeFlow", "join")
    data = view.data(join)
    # set in the join before the call: kept; equal everywhere or in one branch only: merged; excluded: dropped
    data.pop("name")  # every task's (the flow's name)
    assert data == {"count": 2, "label": "joined", "same": "everywhere", "only_one": "from one"}
    start = view.task("MergeFlow", "start")
    assert join["artifacts"]["same"] == start["artifacts"]["same"]  # merged by id, not re-stored
    assert sorted(join["new_artifacts"]) == ["count", "label"]
    assert view.data(view.task("MergeFlow", "end"))["only_one"] == "from one"
    view.close()


def test_conflict_names_each_artifact_and_branches(tmp_path):
    store, done = merged(tmp_path, "conflict")
    assert done.returncode == 1
    err = done.stderr
    for word in ("'count'", "'label'", "'increment'", "one, two", "exclude=", "collect=True"):
        assert word in err, word
    assert "Traceback" not in err
    assert fsck_ok(store)


def test_metaflow_exception_names_can_be_caught(tmp_path):
    store, done = merged(tmp_path, "caught")
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    assert view.data(view.task("MergeFlow", "join"))["unhandled"] == ["count", "increment", "label"]
    view.close()


def test_collect_makes_lists_of_divergent_values(tmp_path):
    store, done = merged(tmp_path, "collect")
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    data = view.data(view.task("MergeFlow", "join"))
    data.pop("name")  # every task's (the flow's name)
    assert data == {"same": "everywhere", "count": [1, 2], "label": ["one", "two"], "increment": [1, 2]}
    view.close()


def test_collect_merges_an_artifact_equal_wherever_present(tmp_path):
    store, done = merged(tmp_path, "collect_partial")
    assert done.returncode == 0, done.stderr  # only_one is in one branch only, and equal wherever present
    view = Stored(store)
    assert view.data(view.task("MergeFlow", "join"))["only_one"] == "from one"
    view.close()


def test_collect_refuses_artifacts_missing_from_some_branches(tmp_path):
    store = tmp_path / "store"
    done = run_flow("merging_partial.py", store=store, env={"MODE": "refuse"})
    assert done.returncode == 1, done.stdout
    err = done.stderr
    for word in ("collect=True", "'join'", "['partial']", "some branches but not all", "exclude=['partial']"):
        assert word in err, (word, err)
    assert "Traceback" not in err
    view = Stored(store)
    assert view.task("PartialMergeFlow", "join")["status"] == "failed"
    view.close()
    assert fsck_ok(store)
    done = run_flow("merging_partial.py", store=store, env={"MODE": "exclude"})  # the fix the message names
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    assert view.data(view.task("PartialMergeFlow", "join", run_id=2))["value"] == [0, 10, 20]
    view.close()


def test_include_merges_only_those(tmp_path):
    store, done = merged(tmp_path, "include")
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    data = view.data(view.task("MergeFlow", "join"))
    assert data == {"same": "everywhere", "only_one": "from one", "name": "MergeFlow"}
    view.close()


@pytest.mark.parametrize(
    "mode, words",
    [
        ("include_missing", ["'nope'", "include"]),
        ("both", ["include=", "exclude="]),
        ("not_join", ["join step", "'end'"]),
    ],
)
def test_misuse_is_one_clear_error(tmp_path, mode, words):
    store, done = merged(tmp_path, mode)
    assert done.returncode == 1
    for word in words:
        assert word in done.stderr, (word, done.stderr)
    assert "merge_artifacts" in done.stderr and "Traceback" not in done.stderr
    assert fsck_ok(store)
