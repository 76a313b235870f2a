"""``cafstore logs|log|dump|ls|tag|namespace`` as a user runs them (subprocesses, real runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from client_helpers import dead_pid, write_run


@pytest.fixture
def cli(real_store):
    def run(*args, user="anne", **env):
        full = {k: v for k, v in os.environ.items() if k not in ("CAFSTORE_HOME", "CAFSTORE_NAMESPACE")}
        full.update(CAFSTORE_HOME=str(real_store.path), CAFSTORE_USER=user, **env)
        return subprocess.run(
            [sys.executable, "-m", "cafstore.cli.main", *args], env=full, capture_output=True, text=True, timeout=60
        )

    return run


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_log_newest_first_in_my_namespace(cli, real_store):
    out = ok(cli("log"))
    assert out.index("run FailFlow/1") < out.index("run TagFlow/2") < out.index("run TagFlow/1")
    assert "TagFlow/3" not in out and "Tags:     crazy_test" in out and "failed" in out
    will = ok(cli("log", user="will"))
    assert "run TagFlow/3" in will and "TagFlow/1" not in will
    runs = json.loads(ok(cli("log", "TagFlow", "--json", "--all")))
    assert [r["pathspec"] for r in runs] == ["TagFlow/3", "TagFlow/2", "TagFlow/1"]
    assert runs[0]["user"] == "will" and runs[0]["status"] == "succeeded" and runs[0]["duration"] >= 0
    assert runs[2]["user_tags"] == ["crazy_test"] and "user:anne" in runs[2]["system_tags"]
    one = ok(cli("log", "TagFlow", "--oneline", "--namespace", "user:will")).splitlines()
    assert len(one) == 1 and one[0].startswith("TagFlow/3") and "will" in one[0]
    assert len(ok(cli("log", "--oneline", "-n", "1")).splitlines()) == 1


def test_log_shows_crashed_and_resumed_runs(cli, real_store):
    write_run(real_store, "TagFlow", status="running", pid=dead_pid())  # TagFlow/4: its scheduler died
    write_run(real_store, "TagFlow", origin_run_id=2)  # TagFlow/5: resumed from 2
    out = ok(cli("log", "TagFlow"))
    assert "run TagFlow/4  crashed" in out and "will not finish" in out
    assert "Origin:   resumed from TagFlow/2" in out
    runs = json.loads(ok(cli("log", "TagFlow", "--json")))
    assert runs[0]["origin_run_id"] == 2 and runs[1]["status"] == "crashed"


def test_logs(cli):
    out = ok(cli("logs", "TagFlow/1"))
    headers = [line for line in out.splitlines() if line.startswith("---")]
    assert headers[0] == "--- TagFlow/1/start/1 ---" and headers[-1].startswith("--- TagFlow/1/end/")
    assert len(headers) == 6 and "square of 2 is 4" in out and "total 5" in out
    proc = cli("logs", "TagFlow/1/start/1")
    assert proc.stdout == "starting 3\n" and proc.stderr == "a warning\n"
    assert ok(cli("logs", "TagFlow/1/start/1", "--stderr")) == ""
    assert cli("logs", "TagFlow/1/start/1", "--stdout").stderr == ""
    step = ok(cli("logs", "TagFlow/1/square", "--stdout"))
    assert step.count("--- TagFlow/1/square/") == 3
    stamped = ok(cli("logs", "TagFlow/1/start/1", "--stdout", "--timestamps"))
    assert stamped.endswith(" starting 3\n") and stamped[:2] == "20"
    ok(cli("logs", "TagFlow/3"))  # an explicit pathspec works in any namespace


def test_dump(cli):
    out = ok(cli("dump", "TagFlow/1/end"))
    assert out.startswith("--- TagFlow/1/end/") and "total" in out and " int " in out
    start = ok(cli("dump", "TagFlow/1/start/1"))
    assert "message" in start and "more characters" in start  # message is longer than --max-value-size
    assert "more characters" not in ok(cli("dump", "TagFlow/1/start/1", "--max-value-size", "0"))
    data = json.loads(ok(cli("dump", "TagFlow/1/end", "--json", "--include", "total,count")))
    (rows,) = data.values()
    assert [(r["name"], r["type"], r["value"]) for r in rows] == [("count", "int", 3), ("total", "int", 5)]
    assert all(len(r["sha"]) == 64 and r["size"] > 0 for r in rows)
    whole = json.loads(ok(cli("dump", "TagFlow/1", "--json", "--include", "value")))
    assert len(whole) == 6 and sum(len(rows) for rows in whole.values()) == 3


def test_ls(cli):
    assert ok(cli("ls")).split()[0] == "FailFlow"
    runs = ok(cli("ls", "TagFlow")).splitlines()
    assert [line.split()[0] for line in runs] == ["TagFlow/2", "TagFlow/1"]
    assert [line.split()[0] for line in ok(cli("ls", "TagFlow", "--all")).splitlines()][0] == "TagFlow/3"
    steps = ok(cli("ls", "TagFlow/1")).splitlines()
    assert [line.split()[0] for line in steps] == [f"TagFlow/1/{s}" for s in ("start", "square", "join", "end")]
    assert "3 task(s)" in steps[1]
    assert len(ok(cli("ls", "TagFlow/1/square")).splitlines()) == 3
    assert "TagFlow/1/start/1/items" in ok(cli("ls", "TagFlow/1/start/1"))


def test_tag_commands(cli):
    assert "user tags:   crazy_test, x, y" in ok(cli("tag", "add", "TagFlow/1", "x", "y"))
    assert "user tags:   crazy_test, y" in ok(cli("tag", "remove", "TagFlow/1", "x"))
    assert "user tags:   crazy_test, z" in ok(cli("tag", "replace", "TagFlow/1", "y", "z"))
    listed = json.loads(ok(cli("tag", "list", "TagFlow", "--json")))
    assert listed["TagFlow/1"]["user_tags"] == ["crazy_test", "z"] and "TagFlow/3" not in listed
    assert "TagFlow/3" in json.loads(ok(cli("tag", "list", "TagFlow", "--all", "--json")))
    assert "system tags:" in ok(cli("tag", "list", "TagFlow/1"))
    proc = cli("tag", "remove", "TagFlow/1", "user:anne")
    assert proc.returncode == 1 and "system tag" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("tag", "replace", "TagFlow/1", "only-one")
    assert proc.returncode == 2


def test_namespace_commands(cli):
    assert ok(cli("namespace", "show")).startswith("user:anne")
    listing = ok(cli("namespace", "list"))
    assert "* user:anne" in listing and "  user:will" in listing and "3 run(s)" in listing
    assert "user:will" in ok(cli("namespace", "set", "user:will"))
    assert "saved" in ok(cli("namespace", "show"))
    assert [line.split()[0] for line in ok(cli("ls", "TagFlow")).splitlines()] == ["TagFlow/3"]
    assert ok(cli("namespace", "show", user="will")).startswith("user:will  ")  # per user
    ok(cli("namespace", "set", "--global"))
    assert ok(cli("namespace", "show")).startswith("(global")
    assert len(ok(cli("ls", "TagFlow")).splitlines()) == 3
    ok(cli("namespace", "set", "--reset"))
    assert ok(cli("namespace", "show")).startswith("user:anne")
    assert cli("namespace", "set").returncode == 2  # a usage error, as click's own
    assert ok(cli("namespace", "show", CAFSTORE_NAMESPACE="xyz")).startswith("xyz")


def test_saved_namespace_reaches_the_python_client(cli, real_store):
    ok(cli("namespace", "set", "user:will"))
    code = "from cafstore import Flow; print(Flow('TagFlow').latest_run.pathspec)"
    env = {k: v for k, v in os.environ.items() if k != "CAFSTORE_NAMESPACE"}
    env.update(CAFSTORE_HOME=str(real_store.path), CAFSTORE_USER="anne")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "TagFlow/3", out.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["logs", "TagFlow/9"],
        ["logs", "Nope/1/start"],
        ["dump", "TagFlow/1/nostep"],
        ["ls", "TagFlow/1/start/99"],
        ["tag", "add", "TagFlow/77", "x"],
        ["log", "NoSuchFlow"],
        ["dump", "TagFlow/1/start/1/zz"],
    ],
)
def test_unknown_pathspecs_fail_cleanly(cli, args):
    proc = cli(*args)
    assert proc.returncode == 1 and proc.stderr.startswith("Error: not found") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["logs", "TagFlow/x"], ["tag", "add", "TagFlow", "x"], ["ls", "F/1/s/one"]])
def test_malformed_pathspecs_are_usage_errors(cli, args):
    proc = cli(*args)
    assert proc.returncode == 2 and "Invalid value" in proc.stderr and "Traceback" not in proc.stderr


def test_deleted_runs_disappear_and_come_back(cli):
    ok(cli("rm", "--yes", "TagFlow/1"))
    assert "TagFlow/1" not in ok(cli("log", "TagFlow"))
    proc = cli("logs", "TagFlow/1")
    assert proc.returncode == 1 and "undelete" in proc.stderr
    ok(cli("undelete", "TagFlow/1"))
    assert "run TagFlow/1" in ok(cli("log", "TagFlow"))


def test_logs_of_a_flow_explains_what_to_give(cli):
    proc = cli("logs", "TagFlow")
    assert proc.returncode == 1 and "run, step or task pathspec" in proc.stderr and "Traceback" not in proc.stderr
