"""The flow's client commands print Metaflow's formats: ``dump`` (and its pickle), ``logs``, ``tag``,
the banner on stderr that ``--quiet`` removes."""

from __future__ import annotations

import pickle

import pytest
from shapes import render_flow

BODIES = {
    "start": "self.x = current.step_name\nprint('out', current.step_name)",
    "all": "self.x = current.step_name\nprint('out', current.step_name)\nimport sys; print('err', file=sys.stderr)",
}


@pytest.mark.parametrize("shape", ["linear", "foreach", "nested_foreach"])
def test_dump_and_logs_in_metaflow_formats(lab, shape):
    lab.run(render_flow(shape, BODIES), "--run-id-file", "rid")
    run_id = (lab.root / "rid").read_text()
    run = lab.latest()
    for step in run:
        tasks = list(step)
        out = lab.root / f"{step.id}.pkl"
        proc = lab.cli(
            "dump",
            "--max-value-size",
            "100000",
            "--private",
            "--include",
            "x",
            "--file",
            str(out),
            f"{run_id}/{step.id}",
        )
        assert proc.returncode == 0, proc.stderr
        with open(out, "rb") as f:
            dumped = pickle.load(f)
        assert dumped == {f"{run_id}/{step.id}/{t.id}": {"x": t.data.x} for t in tasks}
        logs = lab.cli("--quiet", "logs", "--stdout", f"{run_id}/{step.id}")
        assert logs.stdout == "".join(t.stdout for t in reversed(tasks)) and logs.stderr == ""
        loud = lab.cli("logs", "--stderr", f"{run_id}/{step.id}/{tasks[0].id}")
        assert loud.stdout == tasks[0].stderr
        assert loud.stderr.splitlines()[1:] == [
            f"Dumping logs of run_id={run_id} step={step.id} task_id={tasks[0].id}",
            "stderr",
        ]
    shown = lab.cli("--quiet", "dump", "--max-value-size", "0", "--include", "x", f"{run_id}/start").stdout
    assert shown == f"x [size: {run['start'].task['x'].size} type: <class 'str'>] = < artifact too large >\n"


def test_tag_commands_in_metaflow_formats(lab):
    lab.run(render_flow("linear", {}), "--tag", "keep")

    def flat(*extra):
        proc = lab.cli("tag", "list", "--flat", *extra, "--run-id", "1")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines()[0] == "cafstore 0.1.0 executing FidelityFlow for user:tester"
        return set(proc.stderr.splitlines()[1:])

    assert flat("--hide-system-tags") == {"keep"}
    assert {"keep", "user:tester", "runtime:dev"} <= flat()
    added = lab.cli("tag", "add", "--run-id", "1", "a", "b")
    assert added.stdout.startswith("Operation successful. New tags:\n")
    assert lab.cli("tag", "remove", "--run-id", "1", "a").returncode == 0
    assert lab.cli("tag", "replace", "--run-id", "1", "--remove", "b", "--add", "c").returncode == 0
    assert flat("--hide-system-tags") == {"keep", "c"}
    quiet = lab.cli("--quiet", "tag", "list", "--run-id", "1")
    system = ",".join(sorted(lab.latest().system_tags))
    assert quiet.stderr == f"FidelityFlow/1 ; {system} ; c,keep\n" and quiet.stdout == ""
    for args, words in [
        (("tag", "replace", "--run-id", "1", "--add", "d"), "at least one tag to remove"),
        (("tag", "add", "d"), "--run-id"),
        (("tag", "remove", "--run-id", "1", "user:tester"), "system tags"),
        (("tag", "add", "--run-id", "1", "--namespace", "user:nobody", "d"), "namespace user:nobody"),
    ]:
        proc = lab.cli(*args)
        assert proc.returncode == 1 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    empty = lab.cli("tag", "add", "--run-id", "1", "")  # a tag no run may carry: a usage error
    assert empty.returncode == 2 and "empty" in empty.stderr
    own = lab.cli("tag", "add", "--run-id", "1", "user:tester", "e")  # the run's own system tag: no error
    assert own.returncode == 0 and flat("--hide-system-tags") == {"keep", "c", "e"}


def test_metaflow_local_mode_top_options_are_accepted(lab):
    # the options Metaflow's own local-mode test harness passes to every flow
    lab.write(render_flow("linear", {"all": "self.x = 1"}))
    top = [
        "--metadata=local",
        "--datastore=local",
        "--environment=local",
        "--event-logger=nullSidecarLogger",
        "--monitor=nullSidecarMonitor",
        "--no-pylint",
        "--quiet",
        "--with",
        "resources:cpu=2",
    ]
    done = lab.cli(*top, "run", "--max-workers=50", "--max-num-splits=10000", "--tag=刺身 means sashimi")
    assert done.returncode == 0, done.stderr
    run = lab.latest()
    assert run.successful and "刺身 means sashimi" in run.user_tags
