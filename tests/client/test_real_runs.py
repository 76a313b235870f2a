"""The client on real runs of real flows (tests/client/flows), made by the runner in subprocesses."""

from __future__ import annotations

import pytest
from client_helpers import FLOWS

from cafstore import DataArtifact, Flow, Metaflow, Run, Step, Task, namespace
from cafstore.exception import MetaflowNamespaceMismatch


def test_anne_and_will_are_isolated(real_store, as_user):
    assert Flow("TagFlow").latest_run.pathspec == "TagFlow/2"
    assert [r.id for r in Flow("TagFlow")] == ["2", "1"]
    with pytest.raises(MetaflowNamespaceMismatch, match="user:will"):
        Run("TagFlow/3")
    as_user("will")
    assert Flow("TagFlow").latest_run.pathspec == "TagFlow/3"
    assert [f.id for f in Metaflow()] == ["TagFlow"]  # FailFlow has no run of Will's
    with pytest.raises(MetaflowNamespaceMismatch, match="user:anne"):
        Run("TagFlow/1")
    namespace("user:anne")
    assert Run("TagFlow/1").data.total == 5


def test_data_logs_and_structure(real_store):
    run = Run("TagFlow/1")
    assert run.successful and run.finished and run.status == "succeeded"
    assert run.data.total == 0 + 1 + 4 and run.end_task.data.count == 3
    assert "crazy_test" in run.user_tags and "user:anne" in run.system_tags
    assert any(t.startswith("python_version:") for t in run.system_tags)
    assert [s.id for s in run] == ["end", "join", "square", "start"]
    assert run.code == (FLOWS / "tagflow.py").read_text() and run.code.path == "tagflow.py"
    start = run["start"].task
    assert start.stdout == "starting 3\n" and start.stderr == "a warning\n"
    assert start.data.items == [0, 1, 2] and start.environment_info["user"] == "anne"
    squares = sorted(run["square"], key=lambda t: t.index)
    assert [t.index for t in squares] == [0, 1, 2] and [t.data.value for t in squares] == [0, 1, 4]
    assert squares[1].stdout == "square of 1 is 1\n"
    assert all(t.parent_tasks == [start] for t in squares)
    assert sorted(start.child_tasks, key=lambda t: t.index) == squares
    join = run["join"].task
    assert sorted(join.parent_tasks, key=lambda t: t.index) == squares
    assert all(t.child_tasks == [join] for t in squares)
    assert Step("TagFlow/1/square").finished_at >= Step("TagFlow/1/start").finished_at
    task = Task(start.pathspec)
    assert task == start and DataArtifact(f"{start.pathspec}/items").data == [0, 1, 2]
    assert "total" in run._repr_html_() or "end" in run._repr_html_()


def test_tag_filtering_on_real_runs(real_store):
    flow = Flow("TagFlow")
    assert [r.id for r in flow.runs("crazy_test")] == ["1"]
    Run("TagFlow/2").add_tags(["crazy_test", "date:20180301"])
    assert [r.id for r in flow.runs("crazy_test")] == ["2", "1"]
    assert [r.id for r in flow.runs("crazy_test", "date:20180301")] == ["2"]
    namespace(None)
    Run("TagFlow/3").add_tag("crazy_test")
    assert [r.id for r in flow.runs("crazy_test")] == ["3", "2", "1"]
    namespace("crazy_test")
    assert Flow("TagFlow").latest_run.id == "3"


def test_failed_run(real_store):
    run = Flow("FailFlow").latest_run
    assert run.finished and not run.successful and run.status == "failed"
    assert run.data is None and run.end_task is None
    boom = run["boom"].task
    assert not boom.successful and boom.exception.type == "ValueError"
    assert "the step failed on purpose" in str(boom.exception) and "Traceback" in boom.exception.traceback
    assert run["start"].task.successful and Flow("FailFlow").latest_successful_run is None
