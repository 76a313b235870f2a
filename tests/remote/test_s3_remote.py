"""An S3 remote (SeaweedFS) when things go wrong mid-push: the client killed, the server killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from remote_helpers import FLOWS, env_of, flow, runs_of

from cafstore.exception import RemoteObjectCorrupt
from cafstore.remote import config
from cafstore.remote.pull import pull
from cafstore.remote.push import push
from cafstore.store import Store


def _keys(s3_server, options: dict, under: str) -> list:
    listed = s3_server.client().list_objects_v2(Bucket=options["bucket"], Prefix=f"{options['prefix']}/{under}")
    return [item["Key"] for item in listed.get("Contents", [])]


def _push_until_uploading(store, s3_server, options: dict) -> subprocess.Popen:
    """Start ``cafstore push origin`` and return once its multipart upload of the large artifact has begun."""
    push = subprocess.Popen(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store), "push", "origin"],
        env=env_of("anne"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = s3_server.client()
    deadline = time.monotonic() + 60
    while not client.list_multipart_uploads(Bucket=options["bucket"], Prefix=options["prefix"]).get("Uploads"):
        assert push.poll() is None and time.monotonic() < deadline, push.communicate()
        time.sleep(0.02)
    return push


def test_push_killed_then_server_killed_mid_upload_the_rerun_completes(
    tmp_path, anne_store, as_user, s3_server, s3_options
):
    flow(anne_store, "anne", FLOWS / "shared_flow.py", "run", "--big-bytes", "70000000", "--width", "2")
    url = f"s3://{s3_options['bucket']}/{s3_options['prefix']}"
    config.add(Store(anne_store), "origin", url, s3_options["endpoint_url"])

    killed = _push_until_uploading(anne_store, s3_server, s3_options)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert _keys(s3_server, s3_options, "refs/") == []  # refs come last: none is visible yet

    pushing = _push_until_uploading(anne_store, s3_server, s3_options)
    s3_server.stop(signal.SIGKILL)
    s3_server.start()
    out, err = pushing.communicate(timeout=240)
    assert pushing.returncode == 0 and "3 runs pushed" in out, out + err

    as_user("bob")
    bob = Store(tmp_path / "bob")
    config.add(bob, "origin", url, s3_options["endpoint_url"])
    assert len(pull(bob, "origin").runs_sent) == 3
    assert bob.fsck().ok
    assert sorted(m["user"] for m in runs_of(bob.path).values()) == ["anne"] * 3


def test_a_corrupt_large_object_in_the_bucket_is_refused_on_pull(tmp_path, anne_store, as_user, s3_server, s3_options):
    url = f"s3://{s3_options['bucket']}/{s3_options['prefix']}"
    as_user("anne")
    anne = Store(anne_store)
    config.add(anne, "origin", url, s3_options["endpoint_url"])
    push(anne, "origin")
    [key] = _keys(s3_server, s3_options, "objects/")
    client = s3_server.client()
    data = bytearray(client.get_object(Bucket=s3_options["bucket"], Key=key)["Body"].read())
    data[-1] ^= 0x01
    client.put_object(Bucket=s3_options["bucket"], Key=key, Body=bytes(data))
    as_user("bob")
    bob = Store(tmp_path / "bob")
    config.add(bob, "origin", url, s3_options["endpoint_url"])
    with pytest.raises(RemoteObjectCorrupt, match=f"{key.rsplit('/', 1)[1]}.*SharedFlow"):
        pull(bob, "origin")
    assert list(runs_of(bob.path)) == ["HelloWorldFlow/1"] and bob.fsck().ok
