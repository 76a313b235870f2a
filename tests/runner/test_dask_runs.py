"""Flows run on a real Dask cluster (``--executor dask``), as a user would run them.

The session's cluster (tests/conftest.py ``dask_cluster``: a scheduler and two single-threaded
workers on 127.0.0.1, each in its own directory, without any ``CAFSTORE_*`` variable) runs the
tasks; blobs live in the session's SeaweedFS server.  Stores and flows are put in the
cluster's ``coordinator_dir``, which the workers see as an empty directory (their own mount
namespace) where the machine allows it: a passing test there proves the workers never read or
wrote the coordinator's disk.  Faults: a worker SIGKILLed mid-run, the scheduler stopped
mid-run, a task past its ``@timeout``, an unreachable scheduler.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import FLOWS, Stored, env_for, fsck_ok, run_flow

from cafstore import schema
from cafstore.store import Store


def _workspace(dask_cluster, s3_server, s3_options, flow: str = "dask_scale.py") -> tuple:
    """A directory under the coordinator's (hidden from the workers) with the flow and an S3 store."""
    home = Path(dask_cluster.coordinator_dir) / uuid.uuid4().hex[:8]
    home.mkdir()
    shutil.copy(FLOWS / flow, home / flow)
    store = home / "store"
    url = f"s3://{s3_options['bucket']}/{s3_options['prefix']}"
    made = subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "init", str(store), "--blobs", url]
        + ["--endpoint-url", s3_server.endpoint],
        capture_output=True,
        text=True,
        env=env_for(),
        timeout=60,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return home / flow, store


def _on_cluster(cluster) -> tuple:
    return ("--executor", "dask", "--dask-scheduler", cluster.address)


def _start_on_cluster(flow: Path, store: Path, cluster, n: str, env: dict, **popen: Any) -> subprocess.Popen:
    """``python FLOW run --n N`` on ``cluster`` in the background, its stdout a text pipe."""
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, str(flow), "--store", str(store), "run", "--n", n, *_on_cluster(cluster)],
        stdout=subprocess.PIPE,
        text=True,
        env=env_for(env),
        **popen,
    )


def _one_record_per_task(store: Path, flow: str) -> list:
    view = Stored(store)
    try:
        tasks = view.tasks(flow)
        keys = [(t["step"], t["task_id"]) for t in tasks]
        assert len(keys) == len(set(keys))
        return tasks
    finally:
        view.close()


def test_a_flow_runs_on_the_cluster_with_blobs_in_s3_and_never_touches_the_coordinators_disk(
    dask_cluster, s3_server, s3_options
):
    flow, store = _workspace(dask_cluster, s3_server, s3_options)
    if dask_cluster.hidden is not None:
        with dask_cluster.client() as client:  # the workers see an empty directory where the store is
            assert not any(client.run(os.path.exists, str(flow)).values())
            assert not any(client.run(os.path.exists, str(store / "store.json")).values())
    done = run_flow(flow, *_on_cluster(dask_cluster), store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    for index in range(3):  # the tasks' output reached this terminal, with their pathspecs
        assert f"] working on {index}" in done.stdout
    assert "] total 900000" in done.stdout

    tasks = _one_record_per_task(store, "DaskScaleFlow")
    assert sorted(t["step"] for t in tasks) == ["end", "join", "start", "work", "work", "work"]
    view = Stored(store)
    join = view.task("DaskScaleFlow", "join")
    assert view.data(join)["sizes"] == [200_000] * 3
    work = view.tasks("DaskScaleFlow", step="work")
    assert all(view.log(t).startswith("working on") for t in work)
    assert len({view.data(t)["host_pid"] for t in work}) == 3  # a process per attempt
    blob = view.store.stat(view.task("DaskScaleFlow", "start")["artifacts"]["big"])
    assert blob.location == "file"  # large: written by the worker straight to S3
    view.close()
    assert fsck_ok(store)
    listed = s3_server.client().list_objects_v2(Bucket=s3_options["bucket"], Prefix=s3_options["prefix"] + "/")
    assert listed.get("KeyCount", 0) >= 4  # start's big, three work blobs


def test_a_worker_killed_mid_task_still_gives_one_committed_attempt_per_task(dask_cluster, s3_server, s3_options):
    flow, store = _workspace(dask_cluster, s3_server, s3_options)
    env = {"CAFSTORE_DASK_ENV": "DASK_TEST_*", "DASK_TEST_NAP": "3"}
    proc = _start_on_cluster(flow, store, dask_cluster, "2", env)
    seen, killed = [], []
    err: list = []
    threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True).start()
    for line in proc.stdout:
        seen.append(line)
        if "working on" in line and not killed:
            victim = dask_cluster.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
    assert proc.wait(timeout=120) == 0, "".join(seen) + "".join(err)
    assert killed
    tasks = _one_record_per_task(store, "DaskScaleFlow")
    work = [t for t in tasks if t["step"] == "work"]
    assert len(work) == 2 and all(t["attempt"] == 0 and t["status"] == "ok" for t in work)
    assert fsck_ok(store)
    dask_cluster.wait_for_workers(2)  # the nanny restarted the killed worker


def test_a_task_past_its_timeout_on_a_worker_fails_the_run(dask_cluster, s3_server, s3_options):
    flow, store = _workspace(dask_cluster, s3_server, s3_options, "dask_timeout.py")
    started = time.monotonic()
    done = run_flow(flow, *_on_cluster(dask_cluster), store=store)
    assert done.returncode == 1 and time.monotonic() - started < 30
    assert "timed out after" in done.stderr and "about to oversleep" in done.stdout
    view = Stored(store)
    record = view.task("DaskTimeoutFlow", "start")
    assert record["status"] == "failed" and "TimeoutException" in view.log(record, "stderr")
    assert view.run("DaskTimeoutFlow")["status"] == "failed"
    view.close()
    assert fsck_ok(store)


def test_an_unreachable_scheduler_is_one_clear_error_and_no_run(tmp_path):
    store = tmp_path / "store"
    done = run_flow(
        "dask_timeout.py",
        "--executor",
        "dask",
        "--dask-scheduler",
        "tcp://127.0.0.1:9",
        store=store,
        env={"CAFSTORE_DASK_CONNECT_TIMEOUT": "2"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr
    view = Stored(store)
    assert view.runs("DaskTimeoutFlow") == []
    view.close()


def test_the_scheduler_stopped_mid_run_fails_the_run_which_then_resumes(tmp_path, s3_server, s3_options, dask_cluster):
    from daskcluster import DaskCluster

    cluster = DaskCluster(tmp_path / "cluster", workers=1, hidden=dask_cluster.hidden)
    cluster.start()
    try:
        cluster.coordinator_dir = dask_cluster.coordinator_dir
        flow, store = _workspace(cluster, s3_server, s3_options)
        env = {"CAFSTORE_DASK_ENV": "DASK_TEST_*", "DASK_TEST_NAP": "30", "CAFSTORE_DASK_CONNECT_TIMEOUT": "3"}
        proc = _start_on_cluster(flow, store, cluster, "1", env)
        for line in proc.stdout:
            if "working on" in line:
                cluster.stop_scheduler()
                break
        out, err = proc.communicate(timeout=90)
    finally:
        cluster.stop()
    assert proc.returncode == 1, out + err
    assert "Dask scheduler stopped answering" in err
    assert fsck_ok(store)
    view = Stored(store)
    assert view.run("DaskScaleFlow")["status"] == "failed"
    view.close()
    resumed = run_flow(flow, "--executor", "fork", store=store, command="resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    view = Stored(store)
    assert view.run("DaskScaleFlow")["status"] == "succeeded"
    assert view.data(view.task("DaskScaleFlow", "join"))["sizes"] == [200_000]
    view.close()


def test_without_an_address_a_local_cluster_runs_the_flow(tmp_path):
    store = tmp_path / "store"
    done = run_flow("dask_scale.py", "--executor", "dask", "--n", "2", store=store, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "] working on 1" in done.stdout
    _one_record_per_task(store, "DaskScaleFlow")
    assert fsck_ok(store)


def test_run_state_is_crashed_when_the_coordinator_dies(dask_cluster, s3_server, s3_options):
    """A coordinator killed mid-run leaves a run that shows as crashed, and resume picks it up."""
    flow, store = _workspace(dask_cluster, s3_server, s3_options)
    env = {"CAFSTORE_DASK_ENV": "DASK_TEST_*", "DASK_TEST_NAP": "2"}
    proc = _start_on_cluster(flow, store, dask_cluster, "2", env, stderr=subprocess.DEVNULL, start_new_session=True)
    for line in proc.stdout:
        if "working on" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    s = Store(store)
    (meta,) = [m for _, m in s.list_refs("runs/DaskScaleFlow/")]
    assert meta["status"] == schema.RUNNING and not schema.scheduler_alive(meta)  # crashed, as the client shows it
    s.close()
    resumed = run_flow(flow, *_on_cluster(dask_cluster), store=store, command="resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert fsck_ok(store)


@pytest.mark.parametrize("missing", ["distributed"])
def test_without_dask_installed_the_executor_says_how_to_install_it(missing, monkeypatch):
    from cafstore.exception import ClusterError
    from cafstore.runner.execution.executors import dask_cluster

    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(ClusterError, match=r"pip install 'cafstore\[dask\]'"):
        dask_cluster.distributed_module()


# Every example (examples/README.md) on the cluster, in one coordinator process (`cafstore run`
# in-process, one run after another) to keep the interpreter start out of the bill.  The store is
# local: the workers are on this machine, and classifier_predict reads the store through the client.
_EXAMPLES = [
    ("helloworld.py", [], ["This is start step", "Hello World!", "This is end step"]),
    ("counter.py", [], ["The final count is 2"]),
    ("hello_artifact.py", [], ["] Hello"]),
    ("parameters.py", ["--creature", "seal", "--count", "10", "--ratio", "0.3"], ["Count is an integer: 10+1=11"]),
    ("json_parameter.py", ["--mapping", '{"mykey": "myvalue"}'], ["myvalue"]),
    ("csv_file.py", ["--csv", "test.csv"], []),
    ("counter_branch.py", [], []),
    ("counter_branch_helper.py", [], []),
    ("merge_example.py", [], []),
    ("foreach.py", [], ["won!"]),
    ("current_flow.py", [], ["flow name: CurrentFlow", "end has a different step name: end"]),
]
_SKLEARN = [
    ("classifier_train_v1.py", [], []),
    ("classifier_predict_v1.py", ["--vector", "[1,2]"], ["Model nothingburger"]),
    ("classifier_train.py", [], []),
    ("classifier_predict.py", ["--vector", "[14.3,1.92,2.72,20.0,120.0,2.8,3.14,0.33,1.97,6.2,1.07,2.65,1280.0]"], []),
]
_DRIVER = """
import json, sys
from cafstore.cli.main import cli
store, address, runs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
for name, args in runs:
    argv = ["--store", store, "run", name, *args, "--executor", "dask", "--dask-scheduler", address]
    try:
        code = cli.main(argv, prog_name="cafstore", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    sys.stdout.flush()
    print(f"=== {name} exit {code}", flush=True)
"""


def test_every_example_runs_on_the_cluster(dask_cluster, tmp_path):
    import importlib.util

    examples = _EXAMPLES + (_SKLEARN if importlib.util.find_spec("sklearn") else [])
    store = tmp_path / "store"
    runs = [[name, args] for name, args, _ in examples]
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(store), dask_cluster.address, __import__("json").dumps(runs)],
        cwd=str(Path(__file__).resolve().parents[2] / "examples"),
        env=env_for(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    chunks = done.stdout.split("=== ")
    for name, _, _expected in examples:
        out = next((c for c in chunks if c.startswith(f"{name} exit")), None)
        assert out is not None and out.startswith(f"{name} exit 0"), done.stdout[-3000:] + done.stderr[-3000:]
    for name, _, expected in examples:
        for text in expected:
            assert text in done.stdout, (name, text)
    assert fsck_ok(store)


@pytest.mark.stress
def test_the_wide_foreach_example_runs_on_the_cluster(dask_cluster, tmp_path):
    """1,000 tasks: a minute or more on two workers, so only under --stress."""
    store = tmp_path / "store"
    examples = Path(__file__).resolve().parents[2] / "examples"
    done = run_flow(
        examples / "wide_foreach.py",
        "--max-num-splits",
        "1000",
        *_on_cluster(dask_cluster),
        store=store,
        cwd=examples,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Total sum is 499500000" in done.stdout
    assert fsck_ok(store)


def test_resources_no_worker_has_fail_the_task_instead_of_waiting_forever(dask_cluster, tmp_path):
    done = run_flow("dask_greedy.py", *_on_cluster(dask_cluster), store=tmp_path / "store")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "@resources asks for cpu=4" in done.stderr and "cpu=1" in done.stderr
    assert "Traceback" not in done.stderr
