"""An S3 remote (SeaweedFS) when the server is not there for a pull: stopped in the middle of a large
object, or down from the start. The local store stays consistent and the rerun completes the pull."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from remote_helpers import FLOWS, cafstore, client_artifacts, env_of, flow, fsck_ok, ok, runs_of
from s3server import free_port

from cafstore import schema
from cafstore.client import Metaflow, Run, namespace
from cafstore.client.connection import use_store
from cafstore.remote import config
from cafstore.remote.push import push
from cafstore.store import Store

PAUSED = Path(__file__).parent / "pull_paused.py"


def test_server_stopped_mid_pull_leaves_the_store_consistent_and_the_rerun_completes(
    tmp_path, anne_store, as_user, s3_server, s3_options
):
    flow(anne_store, "anne", FLOWS / "shared_flow.py", "run", "--big-bytes", "40000000", "--width", "1")
    url = f"s3://{s3_options['bucket']}/{s3_options['prefix']}"
    as_user("anne")
    anne = Store(anne_store)
    config.add(anne, "origin", url, s3_options["endpoint_url"])
    push(anne, "origin", ["HelloWorldFlow/1", "SharedFlow/2"])  # SharedFlow's 40 MB artifact travels alone
    tasks = [oid for _, oid in anne.list_refs(schema.tasks_prefix("SharedFlow", 2))]
    own = set(tasks) | {anne.get_record(oid)["artifacts"]["big"] for oid in tasks}  # SharedFlow/2's alone
    anne.close()

    bob = tmp_path / "bob"
    ok(cafstore(bob, "bob", "init", bob))
    ok(cafstore(bob, "bob", "remote", "add", "origin", url, "--endpoint-url", s3_options["endpoint_url"]))
    signals = tmp_path / "signals"
    signals.mkdir()
    pulling = subprocess.Popen(
        [sys.executable, str(PAUSED), str(bob), str(signals), "pull", "origin"],
        env=env_of("bob"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (signals / "paused").exists():  # the large object's headers have arrived, its body not read
        assert pulling.poll() is None and time.monotonic() < deadline, pulling.communicate()
        time.sleep(0.01)
    s3_server.stop(signal.SIGKILL)
    try:
        (signals / "go").touch()
        out, err = pulling.communicate(timeout=60)
        assert pulling.returncode == 1, out + err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err  # one paragraph
        assert "remote unreachable" in err and "run(s) were done" not in err, err  # stops: no other run tried
        assert "remote origin" in err and s3_options["endpoint_url"] in err and "run the command again" in err, err
        # The run pulled before the outage is kept; no half-pulled run, for the client either.
        assert list(runs_of(bob)) == ["HelloWorldFlow/1"]
        use_store(Store(bob))
        namespace(None)
        assert [f.id for f in Metaflow()] == ["HelloWorldFlow"]
        fsck_ok(bob)
        store = Store(bob)
        assert not [oid for oid in own if store.exists(oid)]  # nothing of SharedFlow/2 was stored
        store.close()
        assert not (bob / "tmp").exists() or not list((bob / "tmp").iterdir())  # the partial download is gone
    finally:
        s3_server.start()

    pulled = ok(cafstore(bob, "bob", "pull", "origin"))
    assert "1 runs pulled" in pulled, pulled
    [run] = [name for name in runs_of(bob) if name.startswith("SharedFlow/")]
    assert runs_of(bob)[run]["user"] == "anne" and runs_of(bob)[run]["status"] == "succeeded"
    fsck_ok(bob)
    use_store(Store(bob))
    namespace(None)
    pulled_back = client_artifacts(Run(run))
    use_store(Store(anne_store))
    assert pulled_back == client_artifacts(Run("SharedFlow/2"))  # the 40 MB artifact included


def test_pull_with_the_server_down_from_the_start_says_so_at_once(tmp_path, s3_server):
    bob = tmp_path / "bob"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    ok(cafstore(bob, "bob", "init", bob))
    ok(cafstore(bob, "bob", "remote", "add", "origin", f"s3://{s3_server.bucket}/nowhere", "--endpoint-url", dead))
    started = time.monotonic()
    failed = cafstore(bob, "bob", "pull", "origin")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr and "remote unreachable" in failed.stderr, (
        failed.stderr
    )
    assert "remote origin" in failed.stderr and dead in failed.stderr and "cannot be reached" in failed.stderr, (
        failed.stderr
    )
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr  # one paragraph
    assert time.monotonic() - started < 10, "a server that is down is reported at once, not after minutes of retries"
    assert runs_of(bob) == {}
