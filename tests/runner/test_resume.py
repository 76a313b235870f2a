"""Resume by hash reuse and `run --cache`, through the real flow command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cafstore import Store

FLOW = Path(__file__).parent / "flows" / "resumable.py"


@pytest.fixture
def env(tmp_path):
    marker = tmp_path / "fail"
    marker.write_text("x")
    return {
        **os.environ,
        "CAFSTORE_HOME": str(tmp_path / "store"),
        "CAFSTORE_USER": "anne",
        "FAIL_MARKER": str(marker),
    }, marker


def flow(env, *args):
    return subprocess.run([sys.executable, str(FLOW), *args], env=env, capture_output=True, text=True, timeout=120)


def ran_steps(output: str) -> list:
    """Steps whose task processes actually ran (reused tasks print no pid line)."""
    return sorted(re.findall(r"\[ResumableFlow/\d+/(\w+)/\d+ \(pid \d+\)\] Task finished", output))


def test_failed_foreach_split_is_the_only_task_run_again(env):
    environ, marker = env
    first = flow(environ, "run")
    assert first.returncode == 1 and "split 1 fails" in first.stderr
    marker.unlink()
    second = flow(environ, "resume")
    assert second.returncode == 0, second.stderr
    assert ran_steps(second.stdout) == ["end", "join", "work"]  # one split, then what follows it
    assert second.stdout.count("Reused ResumableFlow/1/") == 3  # start and the two good splits
    assert "origin 1" in second.stdout
    store = Store(environ["CAFSTORE_HOME"])
    meta = store.get_ref("runs/ResumableFlow/0000000002")
    assert meta["status"] == "succeeded" and meta["resumed_from"] == 1 and meta["origin_run_id"] == 1
    assert store.fsck().ok


def test_resume_from_a_step_reruns_it_and_everything_after(env):
    environ, marker = env
    marker.unlink()
    assert flow(environ, "run").returncode == 0
    out = flow(environ, "resume", "join")
    assert out.returncode == 0, out.stderr
    assert ran_steps(out.stdout) == ["end", "join"]
    bad = flow(environ, "resume", "nosuchstep")
    assert bad.returncode != 0 and "no such step" in bad.stderr and "Traceback" not in bad.stderr


def test_origin_run_id_is_the_run_resumed_through_a_chain(env):
    environ, marker = env
    assert flow(environ, "run").returncode == 1
    assert flow(environ, "resume").returncode == 1  # still failing: run 2
    marker.unlink()
    third = flow(environ, "resume")
    assert third.returncode == 0 and "origin 2" in third.stdout  # the run resumed, as in Metaflow
    explicit = flow(environ, "resume", "--origin-run-id", "3", "end")  # an explicit origin is what it says
    assert explicit.returncode == 0 and "origin 3" in explicit.stdout
    too_late = flow(environ, "resume", "--origin-run-id", "2", "end")  # split 1 of work failed in run 2
    assert too_late.returncode != 0 and "Resume from 'work' or an earlier step" in too_late.stderr


def test_parameters_cannot_change_on_resume(env):
    environ, _marker = env
    flow(environ, "run", "--n", "4")
    out = flow(environ, "resume", "--n", "5")
    assert out.returncode != 0
    assert "Parameters cannot change on resume" in out.stderr and "--n" in out.stderr


def test_another_users_run_resumes_into_my_namespace(env):
    environ, marker = env
    assert flow(environ, "run").returncode == 1
    marker.unlink()
    will = {**environ, "CAFSTORE_USER": "will"}
    out = flow(will, "resume", "--origin-run-id", "1")
    assert out.returncode == 0, out.stderr
    meta = Store(environ["CAFSTORE_HOME"]).get_ref("runs/ResumableFlow/0000000002")
    assert meta["user"] == "will" and "user:will" in meta["system_tags"]


def test_cache_reuses_unchanged_tasks_and_misses_on_new_inputs(env):
    environ, marker = env
    marker.unlink()
    assert flow(environ, "run", "--cache").returncode == 0
    again = flow(environ, "run", "--cache")
    assert again.returncode == 0 and ran_steps(again.stdout) == []
    assert again.stdout.count("from the cache") == 6
    other = flow(environ, "run", "--cache", "--n", "2")  # a new parameter value: every input changes
    assert other.returncode == 0 and "from the cache" not in other.stdout
