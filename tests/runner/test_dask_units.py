"""Fast checks of the Dask executor's decisions, without a cluster (a stand-in client answers
``scheduler_info``): which stores a cluster may use, how ``@resources`` maps onto worker resources,
which variables reach the tasks."""

from __future__ import annotations

import pytest

from cafstore import resources, step
from cafstore.exception import ClusterError
from cafstore.runner.authoring.decorators import step_options
from cafstore.runner.execution.executors.dask import forwarded_environment, resource_request
from cafstore.runner.execution.executors.dask_cluster import check_blobs_reachable


class _Client:
    def __init__(self, workers):
        self.workers = workers

    def scheduler_info(self):
        return {"workers": self.workers}


def test_a_local_blob_directory_is_refused_when_a_worker_is_on_another_machine():
    remote = _Client({"tcp://10.9.8.7:4000": {}, "tcp://127.0.0.1:4001": {}})
    with pytest.raises(ClusterError, match=r"10\.9\.8\.7.*cannot reach.*s3://"):
        check_blobs_reachable(remote, machine_bound=True, store_path="/data/store")
    check_blobs_reachable(remote, machine_bound=False, store_path="/data/store")  # S3: fine anywhere
    check_blobs_reachable(_Client({"tcp://127.0.0.1:4001": {}}), machine_bound=True, store_path="/data/store")


def test_resources_map_onto_what_workers_declare_and_memory_becomes_bytes():
    client = _Client({"tcp://127.0.0.1:1": {"resources": {"cpu": 4, "memory": 8e9}}, "tcp://127.0.0.1:2": {}})
    assert resource_request({"cpu": 2, "memory": 1024, "gpu": 1}, client) == {"cpu": 2.0, "memory": 1024 * 2**20}
    assert resource_request({"gpu": 1}, client) is None  # no worker declares gpus: ignored, as locally
    with pytest.raises(ClusterError, match=r"cpu=8.*no Dask worker.*cpu=4"):
        resource_request({"cpu": 8}, client)  # Dask would keep it waiting forever


def test_resources_options_are_recorded_as_numbers():
    @resources(cpu=2, memory=4096, gpu=None)
    @step
    def work(self):
        pass

    assert step_options(work).resources == {"cpu": 2.0, "memory": 4096.0}


def test_only_the_variables_named_are_forwarded():
    env = {"CAFSTORE_DASK_ENV": "MY_*, TOKEN", "MY_A": "1", "MY_B": "2", "TOKEN": "t", "HOME": "/root"}
    assert forwarded_environment(env) == {"MY_A": "1", "MY_B": "2", "TOKEN": "t"}
    assert forwarded_environment({"HOME": "/root"}) == {}
