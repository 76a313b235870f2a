"""``resume``: what is reused, what runs again, and the errors, through real flows.

Every flow runs as a subprocess against the test's own store; a task process is counted
by its ``Task is starting`` line, a reused task by its ``Reused`` line.
"""

from __future__ import annotations

import json
import re

from resume_helpers import both, reused, reused_from, run_meta, started, task_refs

FAIL_C = {"FAIL_AT": "c"}
ALL_LINEAR = ["start", "a", "b", "c", "end"]


# -- resume without a step ------------------------------------------------------------------


def test_resume_reuses_what_succeeded_and_runs_the_rest(flow, store_path):
    linear = flow("linear.py")
    first = linear("run", env=FAIL_C)
    assert first.returncode == 1, both(first)
    assert "c fails (FAIL_AT)" in first.stderr
    again = linear("resume")
    assert again.returncode == 0, both(again)
    assert set(reused(again.stdout)) == {"start", "a", "b"} and set(started(again.stdout)) == {"c", "end"}
    assert "Resuming LinearFlow/1" in again.stdout
    # The reused tasks' refs point at run 1's records, unchanged: nothing copied.
    one, two = task_refs(store_path, "LinearFlow", 1), task_refs(store_path, "LinearFlow", 2)
    for step in ("start", "a", "b"):
        (name,) = [n for n in one if n.startswith(step + "/")]
        assert two[name] == one[name]
    meta = run_meta(store_path, "LinearFlow", 2)
    assert meta["status"] == "succeeded" and meta["resumed_from"] == 1 and meta["origin_run_id"] == 1


def test_a_failed_foreach_split_is_the_only_split_run_again(flow, store_path):
    splits = flow("splits.py")
    first = splits("run", env={"FAIL_SPLITS": "1,4"})
    assert first.returncode == 1, both(first)
    again = splits("resume")
    assert again.returncode == 0, both(again)
    assert started(again.stdout) == {"work": 2, "join": 1, "end": 1}, both(again)
    assert reused(again.stdout) == {"start": 1, "work": 4}
    ran = sorted(int(i) for i in re.findall(r"RAN work index=(\d+)", again.stdout))
    assert ran == [1, 4]
    assert "squares [0, 1, 4, 9, 16, 25]" in again.stdout


def test_splits_that_never_ran_run_on_resume(flow):
    splits = flow("splits.py")
    # One task at a time: split 2 fails, so splits 3..5 never start.
    first = splits("run", "--max-workers", "1", env={"FAIL_SPLITS": "2"})
    assert first.returncode == 1, both(first)
    assert started(first.stdout)["work"] == 3
    again = splits("resume", "--max-workers", "2")
    assert again.returncode == 0, both(again)
    assert reused(again.stdout) == {"start": 1, "work": 2}
    assert sorted(int(i) for i in re.findall(r"RAN work index=(\d+)", again.stdout)) == [2, 3, 4, 5]


def test_resuming_a_successful_run_reuses_everything(flow):
    linear = flow("linear.py")
    assert linear("run").returncode == 0
    again = linear("resume")
    assert again.returncode == 0, both(again)
    assert started(again.stdout) == {} and sum(reused(again.stdout).values()) == 5


# -- resume STEP ------------------------------------------------------------------------------


def test_resume_from_a_step_reruns_it_and_everything_after(flow, client):
    linear = flow("linear.py")
    assert linear("run").returncode == 0
    again = linear("resume", "b")
    assert again.returncode == 0, both(again)
    assert set(reused(again.stdout)) == {"start", "a"} and set(started(again.stdout)) == {"b", "c", "end"}
    assert "from step 'b'" in again.stdout
    # A parallel branch that is neither before nor after STEP is reused.
    branches = flow("branches.py")
    assert branches("run").returncode == 0
    out = branches("resume", "x2")
    assert out.returncode == 0, both(out)
    assert set(started(out.stdout)) == {"x2", "join", "end"}
    assert set(reused(out.stdout)) == {"start", "x", "y", "y2"}


def test_resume_from_start_reruns_everything_with_the_origin_parameters(flow, client):
    linear = flow("linear.py")
    assert linear("run", "--alpha", "7").returncode == 0
    again = linear("resume", "start")
    assert again.returncode == 0, both(again)
    assert set(started(again.stdout)) == set(ALL_LINEAR) and not reused(again.stdout)
    assert client.Run("LinearFlow/2").data.summary == "7 70 a-v1 b-v1 c-v1"


def test_resume_from_a_step_that_does_not_exist_is_a_clear_error(flow, store_path):
    linear = flow("linear.py")
    assert linear("run").returncode == 0
    out = linear("resume", "nosuchstep")
    assert out.returncode == 1 and "Traceback" not in out.stderr, both(out)
    assert "no such step" in out.stderr and "start, a, b, c, end" in out.stderr
    assert run_meta(store_path, "LinearFlow", 2) is None  # no half-made run left behind


def test_resume_from_a_step_after_a_failure_is_a_clear_error(flow, store_path):
    linear = flow("linear.py")
    assert linear("run", env={"FAIL_AT": "b"}).returncode == 1
    out = linear("resume", "c")
    assert out.returncode == 1 and "Traceback" not in out.stderr, both(out)
    assert "step 'b' comes before it but" in out.stderr and "LinearFlow/1/b/" in out.stderr
    assert "Resume from 'b' or an earlier step" in out.stderr
    assert run_meta(store_path, "LinearFlow", 2) is None
    # From the failed step itself it works.
    fixed = linear("resume", "b")
    assert fixed.returncode == 0, both(fixed)
    assert set(started(fixed.stdout)) == {"b", "c", "end"}


def test_resume_from_a_step_after_a_failed_split_is_a_clear_error(flow):
    splits = flow("splits.py")
    assert splits("run", env={"FAIL_SPLITS": "3"}).returncode == 1
    out = splits("resume", "join")
    assert out.returncode == 1 and "Traceback" not in out.stderr, both(out)
    assert "step 'work' comes before it but failed" in out.stderr and re.search(r"SplitFlow/1/wor[k]/\d+", out.stderr)


# -- which run is the origin ------------------------------------------------------------------


def test_origin_run_id_is_the_run_resumed_through_a_chain_of_resumes(flow, store_path, client):
    linear = flow("linear.py")
    first = linear("run", env=FAIL_C)
    assert first.returncode == 1 and "origin_run_id=None" in first.stdout  # None for plain runs
    second = linear("resume", env=FAIL_C)  # still failing: run 2, resumed from 1
    assert second.returncode == 1, both(second)
    assert "origin_run_id=1" in second.stdout
    third = linear("resume")  # default origin: my latest run (2), which Metaflow's origin_run_id names
    assert third.returncode == 0, both(third)
    assert re.search(r"\[LinearFlow/3/c/\d+ \(pid \d+\)\] RAN c pid=\d+ origin_run_id=2\b", third.stdout)
    assert {(o.split("/")[1], s) for o, s in reused_from(third.stdout)["b"]} == {("1", "from LinearFlow/2")}
    meta = run_meta(store_path, "LinearFlow", 3)
    assert meta["origin_run_id"] == 2 and meta["resumed_from"] == 2
    assert client.Run("LinearFlow/3").origin_pathspec == "LinearFlow/2"  # Metaflow's: the run resumed
    assert client.Run("LinearFlow/1").origin_pathspec is None
    # An explicit --origin-run-id is what current.origin_run_id says.
    explicit = linear("resume", "--origin-run-id", "2")
    assert explicit.returncode == 0, both(explicit)
    assert "origin_run_id=2" in explicit.stdout and "origin_run_id=1" not in explicit.stdout
    meta = run_meta(store_path, "LinearFlow", 4)
    assert meta["origin_run_id"] == 2 and meta["resumed_from"] == 2


def test_an_unknown_origin_is_a_clear_error(flow, store_path):
    linear = flow("linear.py")
    nothing = linear("resume")
    assert nothing.returncode == 1 and "Traceback" not in nothing.stderr, both(nothing)
    assert "has no run of LinearFlow to resume" in nothing.stderr
    assert linear("run").returncode == 0
    missing = linear("resume", "--origin-run-id", "9")
    assert missing.returncode == 1 and "There is no run LinearFlow/9" in missing.stderr, both(missing)
    assert run_meta(store_path, "LinearFlow", 2) is None


def test_resuming_another_users_run_makes_a_run_of_mine(flow, store_path, client):
    linear = flow("linear.py")
    assert linear("run", user="anne", env=FAIL_C).returncode == 1
    mine = linear("resume", user="will")  # will has no run of his own
    assert mine.returncode == 1 and "User 'will' has no run of LinearFlow" in mine.stderr
    out = linear("resume", "--origin-run-id", "1", user="will")
    assert out.returncode == 0, both(out)
    assert set(started(out.stdout)) == {"c", "end"}
    meta = run_meta(store_path, "LinearFlow", 2)
    assert meta["user"] == "will" and "user:will" in meta["system_tags"]
    assert not any(tag.startswith("user:anne") for tag in meta["system_tags"])
    client.namespace("user:will")
    assert [run.id for run in client.Flow("LinearFlow").runs()] == ["2"]
    client.namespace("user:anne")
    assert [run.id for run in client.Flow("LinearFlow").runs()] == ["1"]


# -- parameters ---------------------------------------------------------------------------------


def test_parameters_cannot_change_on_resume_and_come_from_the_origin(flow, store_path, client):
    linear = flow("linear.py")
    assert linear("run", "--alpha", "7", env=FAIL_C).returncode == 1
    changed = linear("resume", "--alpha", "8")
    assert changed.returncode == 1 and "Traceback" not in changed.stderr, both(changed)
    assert "Parameters cannot change on resume" in changed.stderr and "--alpha" in changed.stderr
    assert run_meta(store_path, "LinearFlow", 2) is None
    same = linear("resume", "--alpha", "7")  # even the same value: resume takes none
    assert same.returncode == 1 and "Parameters cannot change on resume" in same.stderr
    ok = linear("resume")
    assert ok.returncode == 0, both(ok)
    run = client.Run("LinearFlow/2")
    assert run.data.alpha == 7 and run.data.summary == "7 70 a-v1 b-v1 c-v1"


# -- code changes ------------------------------------------------------------------------------


def test_steps_from_the_resume_point_run_the_new_code(flow, client):
    linear = flow("linear.py")
    assert linear("run", env=FAIL_C).returncode == 1
    linear.edit('self.c_value = "c-v1"', 'self.c_value = "c-v2"')  # the fix, after the failure point
    linear.edit('self.a_value = "a-v1"', 'self.a_value = "a-v2"')  # before it: reused, not re-run
    out = linear("resume")
    assert out.returncode == 0, both(out)
    assert client.Run("LinearFlow/2").data.summary == "1 10 a-v1 b-v1 c-v2"
    # From a named step, that step runs the new code too.
    again = linear("resume", "a")
    assert again.returncode == 0, both(again)
    assert client.Run("LinearFlow/3").data.summary == "1 10 a-v2 b-v1 c-v2"


def test_a_renamed_step_that_would_be_reused_is_a_clear_error(flow, store_path):
    linear = flow("linear.py")
    assert linear("run", env=FAIL_C).returncode == 1
    linear.edit("def b(self):", "def b_renamed(self):")
    linear.edit("self.next(self.b)", "self.next(self.b_renamed)")
    out = linear("resume")
    assert out.returncode == 1 and "Traceback" not in out.stderr, both(out)
    assert "'b'" in out.stderr and "no longer has" in out.stderr
    named = linear("resume", "c")
    assert named.returncode == 1 and "Traceback" not in named.stderr, both(named)
    assert "step 'b_renamed' comes before it" in named.stderr and "renamed" in named.stderr
    assert run_meta(store_path, "LinearFlow", 2) is None
    # Resuming from the renamed step itself is fine: it and what follows run.
    ok = linear("resume", "b_renamed")
    assert ok.returncode == 0, both(ok)


# -- the client and the log ---------------------------------------------------------------------


def test_a_resumed_run_is_a_complete_run_to_the_client_and_the_log(flow, client):
    branches = flow("branches.py")
    # x is slow, so y2 finishes first and gets task id 4 in run 1; in the resume, reused tasks
    # are handed out in graph order, so x2 gets 4 there: task ids differ between the runs.
    first = branches("run", env={"FAIL_AT": "join", "X_SLEEP": "0.6"})
    assert first.returncode == 1, both(first)
    out = branches("resume")
    assert out.returncode == 0, both(out)
    run = client.Run("BranchFlow/2")
    assert run.successful and run.finished
    assert run.data.values == ["from x2", "from y2"]
    assert sorted(step.id for step in run) == sorted(["start", "x", "x2", "y", "y2", "join", "end"])
    assert run.origin_pathspec == "BranchFlow/1"
    for step in ("start", "x", "x2", "y", "y2"):
        task = run[step].task
        assert task.successful
        origin = task.origin_pathspec
        assert origin is not None and origin.startswith(f"BranchFlow/1/{step}/"), (step, origin)
        # The origin named is that very task of run 1 (same step, same record).
        original = client.Task(origin)
        assert original.successful and original.stdout == task.stdout
    assert run["join"].task.origin_pathspec is None
    assert run["x2"].task.data.x_value == "from x2"
    log = branches.cafstore("log", "BranchFlow")
    assert log.returncode == 0, both(log)
    assert "resumed from BranchFlow/1" in log.stdout
    as_json = branches.cafstore("log", "BranchFlow", "--json")
    assert as_json.returncode == 0, both(as_json)
    runs = {str(r.get("run_id", r.get("id"))): r for r in json.loads(as_json.stdout)}
    assert runs["2"]["status"] == "succeeded" and runs["2"]["origin_run_id"] == 1


def test_cafstore_resume_mirrors_the_flow_command(flow, store_path):
    linear = flow("linear.py")
    assert linear("run", env=FAIL_C).returncode == 1
    out = linear.cafstore("resume", str(linear.path), "--tag", "fixed")
    assert out.returncode == 0, both(out)
    assert set(started(out.stdout)) == {"c", "end"}
    meta = run_meta(store_path, "LinearFlow", 2)
    assert meta["resumed_from"] == 1 and meta["user_tags"] == ["fixed"]
    bad = linear.cafstore("resume", str(linear.path), "nosuchstep")
    assert bad.returncode == 1 and "no such step" in bad.stderr


def test_resuming_a_production_run_makes_a_run_in_my_namespace(flow, store_path, client):
    linear = flow("linear.py")
    first = linear("run", "--production", user="anne", env=FAIL_C)
    assert first.returncode == 1, both(first)
    production = [t for t in run_meta(store_path, "LinearFlow", 1)["system_tags"] if t.startswith("production:")]
    assert production
    for user, run_id in (("anne", 2), ("will", 3)):
        args = ("resume",) if user == "anne" else ("resume", "--origin-run-id", "1")
        out = linear(*args, user=user)
        assert out.returncode == 0, both(out)
        assert set(started(out.stdout)) == {"c", "end"}
        meta = run_meta(store_path, "LinearFlow", run_id)
        assert meta["user"] == user and f"user:{user}" in meta["system_tags"] and meta["resumed_from"] == 1
        assert not any(t.startswith("production:") for t in meta["system_tags"])
    client.namespace(production[0])
    assert [run.id for run in client.Flow("LinearFlow").runs()] == ["1"]
    client.namespace("user:anne")
    assert sorted(run.id for run in client.Flow("LinearFlow").runs()) == ["1", "2"]
