"""What a task stores: in-place changes, untouched inherited artifacts, current inside a run."""

from __future__ import annotations

from helpers import Stored, run_flow


def test_in_place_changes_and_reuse_of_ids(tmp_path):
    store = tmp_path / "store"
    done = run_flow("inplace.py", "--tag", "t 1", store=store, global_args=("--namespace", "team:x"))
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    start, change = view.task("InPlaceFlow", "start"), view.task("InPlaceFlow", "change")
    data = view.data(change)
    assert data["small"] == [1, 2]  # small, changed in place: stored again
    assert data["big"][-1] == 399_999  # large, read only: passed on by id (documented)
    assert change["artifacts"]["big"] == start["artifacts"]["big"]
    assert data["big_assigned"][-1] == -1  # reassigned: stored
    assert change["artifacts"]["untouched"] == start["artifacts"]["untouched"]
    assert change["artifacts"]["read_only"] == start["artifacts"]["read_only"]
    assert sorted(change["new_artifacts"]) == ["big_assigned", "info", "small"]
    info = data["info"]
    assert info["namespace"] == "team:x" and info["retry"] == 0 and info["running"] is True
    assert info["tags"] == {"t 1"}  # Metaflow's current.tags: the run's user tags only, a set
    view.close()


def test_recheck_limit_can_be_raised(tmp_path):
    store = tmp_path / "store"
    done = run_flow("inplace.py", store=store, env={"CAFSTORE_RECHECK_MAX_BYTES": str(64 << 20)})
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    assert view.data(view.task("InPlaceFlow", "change"))["big"][-1] == -1
    view.close()
