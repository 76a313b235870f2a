"""``python flow.py logs|dump|tag``, ``--namespace`` and ``run --production`` (real runs in subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from client_helpers import FLOWS, flow_env, run_flow

from cafstore import Flow, Run, namespace
from cafstore.client.production import production_token

TAGFLOW = FLOWS / "tagflow.py"


def flow_cli(store, *args, user="anne"):
    return run_flow(TAGFLOW, store.path, user, *args, check=False)


def test_logs_and_dump(real_store):
    # Metaflow's formats: the log text alone on stdout, its headers on stderr (none with --quiet).
    proc = flow_cli(real_store, "logs", "1/square")
    assert proc.returncode == 0 and proc.stdout == "square of 0 is 0\nsquare of 1 is 1\nsquare of 2 is 4\n"
    assert "Dumping logs of run_id=1 step=square task_id=2" in proc.stderr
    assert flow_cli(real_store, "--quiet", "logs", "1/start/1", "--stdout").stdout == "starting 3\n"
    quiet = flow_cli(real_store, "--quiet", "logs", "TagFlow/1/start/1", "--stderr")
    assert quiet.stdout == "a warning\n" and quiet.stderr == ""
    dumped = flow_cli(real_store, "dump", "1/start/1", "--include", "items").stdout
    assert (
        dumped == "items [size: %d type: <class 'list'>] = [0, 1, 2]\n" % Run("TagFlow/1")["start"].task["items"].size
    )
    assert "count" in flow_cli(real_store, "dump", "1/end").stdout
    proc = flow_cli(real_store, "logs", "9/start")
    assert proc.returncode == 1 and "not found" in proc.stderr and "Traceback" not in proc.stderr


def test_tag_commands(real_store):
    def tags_of(run_id, *extra):
        listed = flow_cli(real_store, "tag", "list", "--flat", *extra, "--run-id", run_id)
        return set(listed.stderr.splitlines()[1:])  # after the banner line, like Metaflow

    assert flow_cli(real_store, "tag", "add", "--run-id", "1", "x", "y").returncode == 0
    assert tags_of("1", "--hide-system-tags") == {"crazy_test", "x", "y"}
    assert flow_cli(real_store, "tag", "remove", "--run-id", "1", "x").returncode == 0
    assert flow_cli(real_store, "tag", "replace", "--run-id", "1", "--remove", "y", "--add", "z").returncode == 0
    assert Run("TagFlow/1").user_tags == {"crazy_test", "z"}
    assert "runtime:dev" in tags_of("1") and "z" in tags_of("1")
    listed = flow_cli(real_store, "tag", "list", "--my-runs", "--group-by-run").stdout
    assert "For run TagFlow/2" in listed and "For run TagFlow/1" in listed and "TagFlow/3" not in listed
    assert "For run TagFlow/3" in flow_cli(real_store, "tag", "list", "--all", "--group-by-run").stdout
    assert "runtime:dev" in flow_cli(real_store, "tag", "list", "--run-id", "3").stdout
    proc = flow_cli(real_store, "tag", "remove", "--run-id", "1", "runtime:dev")
    assert proc.returncode == 1 and "system tag" in proc.stderr
    no_run = flow_cli(real_store, "tag", "add", "x")
    assert no_run.returncode == 1 and "--run-id" in no_run.stderr


def test_namespace_option_reaches_the_steps(real_store):
    reader = FLOWS / "readerflow.py"
    store = real_store.path
    run_flow(reader, store, "anne", "run")
    run_flow(reader, store, "anne", "--namespace", "user:will", "run")
    run_flow(reader, store, "anne", "--namespace=", "run")
    namespace(None)
    seen = [(r.data.ns, r.data.seen) for r in Flow("ReaderFlow")]
    assert seen == [(None, "TagFlow/3"), ("user:will", "TagFlow/3"), ("user:anne", "TagFlow/2")]


def test_production_tokens(real_store):
    store = real_store.path
    first = run_flow(TAGFLOW, store, "anne", "run", "--production")
    token = production_token(real_store, "TagFlow")
    assert f"production:{token}" in first.stdout and "--authorize" in first.stdout
    refused = run_flow(TAGFLOW, store, "will", "run", "--production", check=False)
    assert refused.returncode == 1 and "--authorize" in refused.stderr and "Traceback" not in refused.stderr
    assert token not in refused.stderr
    wrong = run_flow(TAGFLOW, store, "will", "run", "--authorize", "nope", check=False)
    assert wrong.returncode == 1 and "not the production token" in wrong.stderr
    run_flow(TAGFLOW, store, "will", "run", "--authorize", token)
    run_flow(TAGFLOW, store, "will", "run", "--production")  # remembered
    namespace(f"production:{token}")
    prod = [r for r in Flow("TagFlow")]
    assert [r.user for r in prod] == ["will", "will", "anne"]  # the refused attempt left no run
    assert all(f"production:{token}" in r.system_tags for r in prod)
    with pytest.raises(Exception):
        prod[0].remove_tag(f"production:{token}")
    fresh = run_flow(TAGFLOW, store, "will", "run", "--generate-new-token")
    new_token = production_token(real_store, "TagFlow")
    assert new_token != token and new_token in fresh.stdout
    namespace(f"production:{new_token}")
    assert [r.user for r in Flow("TagFlow")] == ["will"]
    assert run_flow(TAGFLOW, store, "anne", "run", "--production", check=False).returncode == 1
    namespace("user:anne")
    assert Flow("TagFlow").latest_run.user == "anne"


def test_resumed_runs_show_their_origin(real_store):
    store = real_store.path
    run_flow(TAGFLOW, store, "anne", "run", "--production")
    prod_id = Flow("TagFlow", _current_namespace=None).latest_run.id
    run_flow(TAGFLOW, store, "will", "resume", "--origin-run-id", prod_id, "square")
    namespace("user:will")
    resumed = Flow("TagFlow").latest_run
    assert resumed.origin_pathspec == f"TagFlow/{prod_id}" and resumed.user == "will"
    assert not any(t.startswith("production:") for t in resumed.tags)  # lands in the resuming user's namespace
    reused, computed = resumed["start"].task, resumed["end"].task
    assert reused.origin_pathspec == f"TagFlow/{prod_id}/start/1" and computed.origin_pathspec is None
    assert resumed.data.total == 5 and reused.data.items == [0, 1, 2]
    out = run_flow(TAGFLOW, store, "will", "resume", "square").stdout  # from will's latest run: the resumed one
    assert "succeeded" in out
    chained = Flow("TagFlow").latest_run
    assert chained.origin_pathspec == resumed.pathspec  # like Metaflow: the run this resume read
    log = subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "log", "TagFlow", "--json", "-n", "1"],
        env=flow_env(store, "will"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    (entry,) = json.loads(log.stdout)
    assert entry["resumed_from"] == int(resumed.id) and entry["origin_run_id"] == int(resumed.id)  # as Metaflow
