"""The object hierarchy (object-hierarchy seed) on runs written exactly as docs/datamodel.md says."""

from __future__ import annotations

import datetime
import pickle

import lazyprobe
import pytest
from client_helpers import write_run

from cafstore import DataArtifact, Flow, Metaflow, Run, Step, Task, namespace
from cafstore.exception import MetaflowNotFound, NotFound


@pytest.fixture
def hello(cstore):
    write_run(cstore, "HelloFlow", artifacts={"x": 1, "name": "hello"}, user_tags=["crazy_test"])
    write_run(cstore, "HelloFlow", artifacts={"x": 2, "name": "again"}, steps=("start", "middle", "end"))
    return cstore


def test_flow_properties_and_runs(hello):
    flow = Flow("HelloFlow")
    assert repr(flow) == "Flow('HelloFlow')" and flow.id == flow.name == flow.pathspec == "HelloFlow"
    assert flow.path_components == ["HelloFlow"]
    assert isinstance(flow.created_at, datetime.datetime)
    assert flow.latest_run == Run("HelloFlow/2")
    assert [r.id for r in flow.runs()] == ["2", "1"] == [r.id for r in flow]
    assert len(flow) == 2 and "1" in flow and "7" not in flow
    assert flow["1"].pathspec == "HelloFlow/1"
    assert flow.latest_successful_run.id == "2"
    assert isinstance(flow.parent, Metaflow) and Metaflow().flows == [flow]


def test_run_properties(hello):
    run = Run("HelloFlow/2")
    assert repr(run) == "Run('HelloFlow/2')" and run.id == "2" and run.path_components == ["HelloFlow", "2"]
    assert run.parent == Flow("HelloFlow")
    assert run.successful and run.finished and run.status == "succeeded" and not run.crashed
    assert run.created_at <= run.finished_at
    assert run.user == "anne" and run.trigger is None and run.origin_pathspec is None
    assert run.tags == run.system_tags | run.user_tags and "user:anne" in run.system_tags
    assert [s.id for s in run.steps()] == ["end", "middle", "start"]  # most recent first, like Metaflow
    assert [s.id for s in run] == ["end", "middle", "start"] and len(run) == 3
    assert "middle" in run and "train" not in run
    assert run.end_task == run["end"].task and run.data.x == 2
    assert run.code == "class HelloFlow(FlowSpec):\n    pass\n" and run.code.path == "flow.py"
    assert run.code.flowspec == str(run.code)
    assert "HelloFlow/2" in run._repr_html_() and "succeeded" in run._repr_html_()


def test_step_task_artifact(hello):
    step = Step("HelloFlow/1/start")
    assert step.parent == Run("HelloFlow/1") and step.path_components == ["HelloFlow", "1", "start"]
    assert [t.pathspec for t in step.tasks()] == ["HelloFlow/1/start/1"] and step.task == step["1"]
    assert step.finished_at is not None and step.environment_info["python_version"] == "3.11.7"
    task = Task("HelloFlow/1/start/1")
    assert repr(task) == "Task('HelloFlow/1/start/1')" and task.parent == step
    assert task.successful and task.finished and task.exception is None and task.attempt == 0
    assert task.stdout == "start says hello\nsecond line of start\n" and task.stderr == "start warning\n"
    assert [line for _, line in task.loglines()] == ["start says hello", "second line of start"]
    assert all(isinstance(when, datetime.datetime) for when, _ in task.loglines("stderr"))
    assert task.index is None and task.environment_info["user"] == "anne"
    assert task.metadata_dict["attempt"] == "0" and task.metadata[0].task == task
    assert task.code.startswith("class HelloFlow") and task.tags == Run("HelloFlow/1").tags
    assert sorted(a.id for a in task) == ["name", "x"] and len(task) == 2 and "x" in task
    assert task.data.x == 1 and task["x"].data == 1 and task.artifacts.x.data == 1
    assert "x" in task.data and sorted(vars(task.data)) == ["name", "x"] == list(task.data.__dict__.keys())
    art = DataArtifact("HelloFlow/1/start/1/x")
    assert art.parent == task and art.sha == task["x"].sha and len(art.sha) == 64 and art.size > 0
    assert art.data == 1 and art.created_at == task.finished_at and art.id == "x"
    assert "Task('HelloFlow/1/start/1')" in task._repr_html_()


def test_lineage(hello):
    start, middle, end = (Run("HelloFlow/2")[s].task for s in ("start", "middle", "end"))
    assert middle.parent_tasks == [start] and middle.child_tasks == [end]
    assert start.parent_tasks == [] and end.child_tasks == []
    assert middle.parent_task_pathspecs == ["HelloFlow/2/start/1"]
    assert start.child_task_pathspecs == ["HelloFlow/2/middle/2"]


def test_missing_things_raise_not_found(hello):
    for make in (
        lambda: Flow("Nope"),
        lambda: Run("HelloFlow/9"),
        lambda: Step("HelloFlow/1/train"),
        lambda: Task("HelloFlow/1/start/5"),
        lambda: DataArtifact("HelloFlow/1/start/1/zz"),
        lambda: Run("HelloFlow/abc"),
        lambda: Run("HelloFlow"),
        lambda: Task("HelloFlow/1/start"),
    ):
        with pytest.raises(MetaflowNotFound):
            make()
    run = Run("HelloFlow/1")
    with pytest.raises(KeyError):
        run["train"]
    with pytest.raises(KeyError):
        run["start"]["9"]
    with pytest.raises(KeyError):
        Flow("HelloFlow")["99"]
    with pytest.raises(AttributeError, match="has no artifact 'nope'"):
        run["start"].task.data.nope
    assert not hasattr(run["start"].task.data, "nope")


def test_failed_and_crashed_runs(cstore):
    from client_helpers import dead_pid

    write_run(cstore, "F", status="failed", failed_step="start")
    write_run(cstore, "F", status="running", pid=dead_pid())
    write_run(cstore, "F", status="running")  # this process is its scheduler: alive
    failed, crashed, live = Run("F/1"), Run("F/2"), Run("F/3")
    assert failed.finished and not failed.successful and failed.data is None and failed.end_task is None
    exc = failed["start"].task.exception
    assert exc.type == "ValueError" and exc.message == "boom" and "Traceback" in exc.traceback
    assert str(exc) == "ValueError: boom" and not failed["start"].task.successful
    assert crashed.status == "crashed" and crashed.crashed and not crashed.finished and not crashed.successful
    assert live.status == "running" and not live.finished and not live.crashed
    assert Flow("F").latest_successful_run is None
    assert Run("F/1").finished_at is not None and Run("F/3").finished_at is None


def test_artifacts_load_lazily_and_once_per_task(cstore):
    lazyprobe.LOADS.clear()
    write_run(cstore, "P", artifacts={"a": lazyprobe.Probe("a"), "b": lazyprobe.Probe("b")})
    lazyprobe.LOADS.clear()
    task = Run("P/1")["start"].task
    assert sorted(task.data) == ["a", "b"] and lazyprobe.LOADS == []  # listing names unpickles nothing
    assert task.data.a.label == "a" and lazyprobe.LOADS == ["a"]
    task.data.a, task["a"].data, task.artifacts.a.data
    assert lazyprobe.LOADS == ["a"]  # cached on the Task object
    Task("P/1/start/1").data.a
    assert lazyprobe.LOADS == ["a", "a"]  # a new Task object loads again


def test_deleted_runs_are_invisible(cstore):
    write_run(cstore, "F")
    write_run(cstore, "F")
    cstore.update_ref("runs/F/0000000002", lambda meta: {**meta, "deleted": 123.0})
    assert Flow("F").latest_run.id == "1" and [r.id for r in Flow("F")] == ["1"]
    with pytest.raises(NotFound, match="deleted"):
        Run("F/2")
    assert "2" not in Flow("F")
    namespace(None)
    assert Flow("F").latest_run.id == "1"


def test_pickle_and_equality(hello):
    run = Run("HelloFlow/1")
    again = pickle.loads(pickle.dumps(run))
    assert again == run and hash(again) == hash(run) and again.data.x == 1
    task = pickle.loads(pickle.dumps(run["start"].task))
    assert task.data.x == 1
    assert pickle.loads(pickle.dumps(Metaflow())).flows == [Flow("HelloFlow")]


def test_attempts_follow_previous_attempt(cstore):
    write_run(cstore, "R")
    first = cstore.get_ref("tasks/R/0000000001/start/0000000001")
    record = dict(cstore.get_record(first), attempt=1, previous_attempt=first)
    cstore.set_ref("tasks/R/0000000001/start/0000000001", cstore.put_record(record))
    assert Task("R/1/start/1").attempt == 1
    assert Task("R/1/start/1", attempt=0).attempt == 0
    with pytest.raises(NotFound):
        Task("R/1/start/1", attempt=5)


def test_resumed_run_origin(cstore):
    write_run(cstore, "R")
    write_run(cstore, "R", origin_run_id=1)
    assert Run("R/2").origin_pathspec == "R/1" and Run("R/1").origin_pathspec is None


def test_no_store_is_not_found(tmp_path, monkeypatch):
    from cafstore.client import connection

    connection.use_store(None)
    monkeypatch.setenv("CAFSTORE_HOME", str(tmp_path / "nothing"))
    with pytest.raises(NotFound, match="no cafstore store"):
        Flow("X")
    assert not (tmp_path / "nothing").exists()


def test_what_views_and_tools_read(hello):
    """The public reads the views are built on (they used to reach into private helpers)."""
    run = Run("HelloFlow/2")
    assert run.ref_value["run_id"] == 2 and run.ref_value["user"] == "anne"
    assert run.step_names() == ["start", "middle", "end"]  # run order, start first
    assert [node["name"] for node in run.graph_steps()] == ["start", "middle", "end"]
    older = run.sibling_run(1)
    assert older == Run("HelloFlow/1") and older.user_tags == {"crazy_test"}
    task = run["start"].task
    assert sorted(task.artifact_ids) == ["name", "x"] and task.artifact_ids["x"] == task["x"].sha
    with pytest.raises(TypeError):
        task.artifact_ids["x"] = "changed"  # read-only: the record is immutable
    assert task.artifact_value("name") == "again" and task.artifact_value("x") is task.data.x
    with pytest.raises(NotFound):
        task.artifact_value("nope")
    assert task.log_bytes("stdout").startswith(b"2024-01-02T03:04:05.678901Z start says hello\n")
    with pytest.raises(ValueError):
        task.log_bytes("artifacts")
