"""Every example flow, run as a user would: ``python examples/x.py run ...`` against a temporary store."""

from __future__ import annotations

import importlib.util
import json

import pytest
from helpers import EXAMPLES, Stored, fsck_ok, run_flow
from s3server import init_s3_store

needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="scikit-learn is not installed (pip install -e '.[sklearn]')"
)


# Every example also runs with the store's blobs in SeaweedFS (issue 14). These are the ones that run
# an example flow once (the rest have small artifacts too, like these); the S3 runs of the rest need --stress.
_S3_BY_DEFAULT = {
    "test_helloworld", "test_hello_artifact", "test_foreach", "test_merge_example_collects",
    "test_csv_include_file", "test_classifier_train_and_predict",
}  # fmt: skip


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    path = tmp_path / "store"
    if request.param == "local":
        return path
    if request.node.originalname not in _S3_BY_DEFAULT and not request.config.getoption("--stress"):
        pytest.skip("this example's S3 run is one more run of a flow already covered: run with --stress")
    return init_s3_store(path, request.getfixturevalue("s3_options"))


@pytest.fixture
def local_store(tmp_path):
    return tmp_path / "store"


def example(name, *args, store, **kw):
    done = run_flow(EXAMPLES / name, *args, store=store, cwd=EXAMPLES, **kw)
    return done


def test_helloworld(store):
    done = example("helloworld.py", store=store)
    assert done.returncode == 0, done.stderr
    for text in ("This is start step", "Hello World!", "This is end step"):
        assert text in done.stdout
    view = Stored(store)
    assert [t["step"] for t in sorted(view.tasks("HelloWorldFlow"), key=lambda t: t["task_id"])] == [
        "start",
        "hello",
        "end",
    ]
    assert view.log(view.task("HelloWorldFlow", "hello")) == "Hello World!\n"
    view.close()
    assert fsck_ok(store)


def test_helloworld_validate_and_show(local_store):
    store = local_store  # nothing is stored: no S3 variant
    done = example("helloworld.py", store=store, command="")
    assert done.returncode == 0 and "Usage:" in done.stdout and "run" in done.stdout
    done = example("helloworld.py", "--no-pylint", store=store, command="")
    assert done.returncode == 0
    done = example("helloworld.py", store=store, command="show")
    assert done.returncode == 0
    assert "Step start" in done.stdout and "Starting point" in done.stdout and "=> hello" in done.stdout


def test_hello_artifact(store):
    done = example("hello_artifact.py", store=store)
    assert done.returncode == 0 and "] Hello" in done.stdout


def test_counter(store):
    done = example("counter.py", store=store)
    assert done.returncode == 0
    assert "The count is 0 before incrementing" in done.stdout and "The final count is 2" in done.stdout
    view = Stored(store)
    assert [view.data(view.task("CounterFlow", s))["count"] for s in ("start", "add", "end")] == [0, 1, 2]
    view.close()


def test_parameters_example(store):
    done = example("parameters.py", "--creature", "seal", "--count", "10", "--ratio", "0.3", store=store)
    assert done.returncode == 0, done.stderr
    assert "seal is a string of 4 characters" in done.stdout
    assert "Count is an integer: 10+1=11" in done.stdout
    assert "Ratio is a <class 'float'> whose value is 0.3" in done.stdout
    done = example("parameters.py", "--ratio", "0.25", store=store, env={"CAFSTORE_RUN_CREATURE": "dinosaur"})
    assert done.returncode == 0 and "dinosaur is a string" in done.stdout
    done = example("parameters.py", "--creature", "otter", store=store, env={"CAFSTORE_RUN_CREATURE": "dinosaur"})
    assert "otter is a string" in done.stdout
    done = example("parameters.py", store=store)
    assert done.returncode != 0 and "creature" in done.stderr


def test_json_parameter(store):
    done = example("json_parameter.py", "--mapping", '{"mykey": "myvalue"}', store=store)
    assert done.returncode == 0 and "key mykey value myvalue" in done.stdout
    done = example("json_parameter.py", store=store)
    assert done.returncode == 0 and "key some value default" in done.stdout


def test_csv_include_file(store):
    done = example("csv_file.py", "--csv", "test.csv", store=store)
    assert done.returncode == 0, done.stderr
    assert "row 0: ['first', 'second', 'third']" in done.stdout and "row 1: ['a', 'b', 'c']" in done.stdout
    view = Stored(store)
    assert view.data(view.task("CSVFileFlow", "end"))["data"] == (EXAMPLES / "test.csv").read_text()
    view.close()


def test_counter_branch(store):
    done = example("counter_branch.py", store=store)
    assert done.returncode == 0
    for text in ("count from add_one 1", "count from add_two 2", "The creature is dog", "The final count is 2"):
        assert text in done.stdout


def test_counter_branch_helper(store):
    done = example("counter_branch_helper.py", store=store)
    assert done.returncode == 0, done.stderr
    assert "The creature is dog" in done.stdout and "The final count 2" in done.stdout
    view = Stored(store)
    assert "increment" not in view.task("CounterBranchHelperFlow", "join")["artifacts"]
    view.close()


def test_foreach(store):
    done = example("foreach.py", store=store)
    assert done.returncode == 0
    assert "mouse won!" in done.stdout
    for creature in ("bird", "mouse", "dog"):
        assert f"Analyzing {creature}" in done.stdout


def test_wide_foreach_needs_more_splits(store):
    # The full 1,000-task run is benchmarks/flow_bench.py's job; here: the limit and its message.
    done = example("wide_foreach.py", store=store)
    assert done.returncode == 1
    assert "--max-num-splits 1000" in done.stderr


def test_merge_example_collects(store):
    done = example("merge_example.py", store=store)
    assert done.returncode == 0, done.stderr
    assert "['branch1', 'branch2']" in done.stdout and "[10, 20]" in done.stdout and "Done." in done.stdout


def test_current_flow(store):
    done = example("current_flow.py", store=store)
    assert done.returncode == 0
    out = done.stdout
    for text in (
        "flow name: CurrentFlow",
        "run id: 1",
        "origin run id: None",
        "step name: start",
        "task id: 1",
        "pathspec: CurrentFlow/1/start/1",
        "namespace: user:tester",
        "username: tester",
        "flow parameters: []",
        "end has a different step name: end",
        "end has a different task id: 2",
        "end has a different pathspec: CurrentFlow/1/end/2",
    ):
        assert text in out, text


@needs_sklearn
def test_classifier_train_and_predict(store):
    done = example("classifier_train_v1.py", store=store)
    assert done.returncode == 0, done.stderr
    done = example("classifier_predict_v1.py", "--vector", "[1,2]", store=store)
    assert done.returncode == 0 and "Model nothingburger" in done.stdout
    done = example("classifier_train.py", store=store)
    assert done.returncode == 0, done.stderr
    vector = json.dumps([14.3, 1.92, 2.72, 20.0, 120.0, 2.8, 3.14, 0.33, 1.97, 6.2, 1.07, 2.65, 1280.0])
    done = example("classifier_predict.py", "--vector", vector, store=store)
    assert done.returncode == 0 and "Predicted class" in done.stdout
