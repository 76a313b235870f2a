"""A store whose large objects live in a real S3 server (SeaweedFS), used as a user would:
``cafstore init --blobs``, a flow run and resumed through its CLI, the client, fsck and gc."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cafstore import schema
from cafstore.exception import RemoteStoreError
from cafstore.store import Store

FLOW = Path(__file__).parent.parent / "reliability" / "flows" / "reuse_flow.py"
_STARTED = re.compile(r"\[ReuseFlow/\d+/(\w+)/\d+\] Task is starting")


def _cafstore(store: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _flow(
    store: Path, *args: str, env: "dict | None" = None, timeout: float = 180
) -> "subprocess.CompletedProcess[str]":
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    environ.update({"CAFSTORE_USER": "tester", **(env or {})})
    return subprocess.run(
        [sys.executable, str(FLOW), "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
    )


def _init(tmp_path: Path, s3_server, s3_options: dict) -> Path:
    store = tmp_path / "store"
    url = f"s3://{s3_options['bucket']}/{s3_options['prefix']}"
    made = _cafstore(store, "init", str(store), "--blobs", url, "--endpoint-url", s3_server.endpoint)
    assert made.returncode == 0 and url in made.stdout, made.stdout + made.stderr
    return store


def _keys(s3_server, s3_options: dict) -> list:
    listed = s3_server.client().list_objects_v2(Bucket=s3_options["bucket"], Prefix=s3_options["prefix"] + "/")
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_flow_runs_resumes_and_reads_back_with_its_blobs_in_s3(tmp_path, s3_server, s3_options):
    store_path = _init(tmp_path, s3_server, s3_options)
    first = _flow(store_path, "run", env={"FAIL_AT": "end"})
    assert first.returncode == 1, first.stdout + first.stderr
    store = Store(store_path)
    assert type(store.blobs).__name__ == "S3BlobBackend"  # every process built it from store.json
    [(_, record_id)] = store.list_refs(schema.tasks_prefix("ReuseFlow", 1, "start"))
    oid = store.get_record(record_id)["artifacts"]["blob"]
    assert f"{s3_options['prefix']}/{oid}" in _keys(s3_server, s3_options)
    assert not (store_path / "objects").exists() or not any((store_path / "objects").iterdir())

    # The blob deleted behind the store's back: fsck names it, resume runs its task again.
    s3_server.client().delete_object(Bucket=s3_options["bucket"], Key=f"{s3_options['prefix']}/{oid}")
    store.close()
    fsck = _cafstore(store_path, "fsck")
    assert fsck.returncode == 1 and oid.short in fsck.stdout + fsck.stderr, fsck.stdout + fsck.stderr
    resumed = _flow(store_path, "resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Not reusing ReuseFlow/1/start/1: its stored data are damaged" in resumed.stdout, resumed.stdout
    assert sorted(_STARTED.findall(resumed.stdout)) == ["end", "middle", "start"], resumed.stdout

    # The client reads the resumed run through S3; fsck and gc pass on the store.
    reader = subprocess.run(
        [sys.executable, "-c", "import cafstore; cafstore.namespace(None); r = cafstore.Flow('ReuseFlow').latest_run; "
         "print(r.successful, len(r['start'].task.data.blob), r['middle'].task.data.length)"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "CAFSTORE_HOME": str(store_path), "CAFSTORE_USER": "tester"},
    )  # fmt: skip
    assert reader.stdout.split() == ["True", "300000", "300000"], reader.stdout + reader.stderr
    assert _cafstore(store_path, "fsck", "--repair").returncode in (0, 1)  # run 1 lost its blob: say so, tidy
    gc = _cafstore(store_path, "gc", "--grace", "0s")
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert oid.short in _cafstore(store_path, "fsck").stdout or _cafstore(store_path, "fsck").returncode == 0
    assert f"{s3_options['prefix']}/{oid}" in _keys(s3_server, s3_options)  # the resumed run's copy is live


def test_small_artifacts_never_touch_the_bucket(tmp_path, s3_server, s3_options):
    store_path = _init(tmp_path, s3_server, s3_options)
    ran = _flow(store_path, "run", "--size", "1000")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert _keys(s3_server, s3_options) == []  # small values stay inline in the local index


def test_tasks_with_only_small_artifacts_make_no_request_at_all(tmp_path, s3_server, s3_options):
    """Not one request, not even a HEAD or a listing: with the store's endpoint pointed at a port where
    nothing listens, a run that fails in its last step, its resume and a read of small artifacts all
    go as on a local store. One
    request would have failed, or waited out the retries' minute of backoff."""
    from s3server import free_port

    store_path = _init(tmp_path, s3_server, s3_options)
    settings = json.loads((store_path / "store.json").read_text())
    settings["blobs"]["options"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    (store_path / "store.json").write_text(json.dumps(settings))
    with pytest.raises(RemoteStoreError, match="cannot be reached"):
        Store(store_path).blobs.check_reachable()  # the endpoint really is dead
    started = time.monotonic()
    ran = _flow(store_path, "run", "--size", "1000", env={"FAIL_AT": "end"}, timeout=60)
    assert ran.returncode == 1 and "FAIL_AT" in ran.stdout + ran.stderr, ran.stdout + ran.stderr
    resumed = _flow(store_path, "resume", timeout=60)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    store = Store(store_path)
    [(_, record_id)] = store.list_refs(schema.tasks_prefix("ReuseFlow", 2, "start"))
    assert len(store.get_artifact(store.get_record(record_id)["artifacts"]["blob"])) == 1000
    assert time.monotonic() - started < 45  # no retry backoff was waited out anywhere
