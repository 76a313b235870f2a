"""Pushers at the same time never lose each other's runs or tags: refs move by compare-and-swap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from remote_helpers import EXAMPLES, cafstore, env_of, flow, ok, remote_problems, runs_of

from cafstore.remote import config
from cafstore.remote.pull import pull
from cafstore.remote.state import scan
from cafstore.store import Store, records

WORKER = Path(__file__).parent / "push_worker.py"


def _remote_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple:
    if kind == "dir":
        return str(tmp_path / "remote"), None
    options = request.getfixturevalue("s3_options")
    return f"s3://{options['bucket']}/{options['prefix']}", options["endpoint_url"]


@pytest.mark.parametrize("kind", ["dir", "s3"])
def test_concurrent_pushers_lose_no_run_and_no_tag(kind, tmp_path, anne_store, as_user, request):
    url, endpoint = _remote_url(kind, tmp_path, request)
    bob = tmp_path / "bob"
    flow(bob, "bob", EXAMPLES / "helloworld.py", "run")  # bob's HelloWorldFlow/1: same name as anne's
    for path in (anne_store, bob):
        config.add(Store(path), "origin", url, endpoint)
    # Round 1: both push everything at once; runs with the same local number must both arrive.
    pushes = [
        subprocess.Popen(
            [sys.executable, "-m", "cafstore.cli.main", "--store", str(path), "push", "origin"],
            env=env_of(user),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path, user in ((anne_store, "anne"), (bob, "bob"))
    ]
    for proc in pushes:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
    as_user("bob")
    bob_store = Store(bob)
    pull(bob_store, "origin")
    shared = next(k for k, m in runs_of(bob).items() if m["flow"] == "SharedFlow")
    # Round 2: anne and bob tag the same run and push it, each five times, at the same moment.
    count = 5 if kind == "dir" else 3
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(path), user, "origin", run, user, str(count)],
            env=env_of(user),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path, user, run in ((anne_store, "anne", "SharedFlow/1"), (bob, "bob", shared))
    ]
    for proc in workers:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + err
    state = scan(config.transport_of(bob_store, "origin"))
    assert sorted((f, n) for f, _, n in state.runs) == [("HelloWorldFlow", 1), ("HelloWorldFlow", 1), ("SharedFlow", 1)]
    [shared_ref] = [r for ident, r in state.runs.items() if ident[0] == "SharedFlow"]
    doc = records.decode(config.transport_of(bob_store, "origin").get(shared_ref.key))
    want = sorted(f"{user}-{i}" for user in ("anne", "bob") for i in range(count))
    assert doc["run"]["user_tags"] == want
    if kind == "dir":
        assert remote_problems(Path(url)) == []
    ok(cafstore(bob, "bob", "pull", "origin"))
    assert runs_of(bob)[shared]["user_tags"] == want
