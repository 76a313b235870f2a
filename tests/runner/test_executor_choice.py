"""Choosing the executor: ``--executor NAME``, ``CAFSTORE_EXECUTOR``, the old ``CAFSTORE_START_METHOD``.

Through the real command lines (the flow's own and ``cafstore run/resume``)
in subprocesses; the probe flow prints which program its task runs, which
tells fork (the flow file) from spawn (the child module).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from helpers import FLOWS, Stored, env_for, run_flow

from cafstore.exception import CommandLineError
from cafstore.runner.execution import executors
from cafstore.runner.execution.config import RunnerConfig

PROBE = FLOWS / "executor_probe.py"
FORKED = "task program: executor_probe.py"
SPAWNED = "task program: child.py"


def program(done: "subprocess.CompletedProcess[str]") -> str:
    assert done.returncode == 0, done.stderr
    return FORKED if FORKED in done.stdout else SPAWNED if SPAWNED in done.stdout else done.stdout


def cafstore(*args: str, store, env=None) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env=env_for(env),
        cwd=str(FLOWS),
        timeout=90,
    )


def test_default_is_fork(tmp_path):
    assert executors.default_name() == "fork"
    assert program(run_flow(PROBE, store=tmp_path / "s")) == FORKED


@pytest.mark.parametrize("how", ["option", "CAFSTORE_EXECUTOR", "CAFSTORE_START_METHOD"])
def test_spawn_chosen(tmp_path, how):
    if how == "option":
        done = run_flow(PROBE, "--executor", "spawn", store=tmp_path / "s")
    else:
        done = run_flow(PROBE, store=tmp_path / "s", env={how: "spawn"})
    assert program(done) == SPAWNED


def test_precedence_option_then_new_variable_then_old(tmp_path):
    store = tmp_path / "s"
    assert (
        program(run_flow(PROBE, store=store, env={"CAFSTORE_START_METHOD": "spawn", "CAFSTORE_EXECUTOR": "fork"}))
        == FORKED
    )
    assert program(run_flow(PROBE, "--executor", "fork", store=store, env={"CAFSTORE_EXECUTOR": "spawn"})) == FORKED
    assert program(run_flow(PROBE, "--executor", "spawn", store=store, env={"CAFSTORE_EXECUTOR": "fork"})) == SPAWNED


def test_cafstore_run_and_resume_forward_the_option(tmp_path):
    store = tmp_path / "s"
    assert program(cafstore("run", str(PROBE), "--executor", "spawn", store=store)) == SPAWNED
    done = cafstore("resume", str(PROBE), "start", "--executor", "spawn", store=store)
    assert program(done) == SPAWNED  # resumed from start: start runs again, under spawn
    assert program(run_flow(PROBE, "start", "--executor", "fork", store=store, command="resume")) == FORKED


@pytest.mark.parametrize("how", ["option", "CAFSTORE_EXECUTOR", "CAFSTORE_START_METHOD"])
def test_unknown_executor_is_one_clear_paragraph(tmp_path, how):
    store = tmp_path / "s"
    if how == "option":
        done = run_flow(PROBE, "--executor", "ray", store=store)
        where = "--executor"
    else:
        done = run_flow(PROBE, store=store, env={how: "ray"})
        where = how
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error:") and f"{where} is 'ray'" in lines[0]
    assert "available executors are: fork, spawn, dask" in lines[0]
    if store.exists():
        view = Stored(store)
        assert view.runs("ProbeFlow") == []  # refused before the run existed
        view.close()


def test_help_lists_the_registered_executors(tmp_path):
    done = run_flow(PROBE, "--help", store=tmp_path / "s")
    assert done.returncode == 0 and "--executor NAME" in done.stdout
    assert "fork, spawn" in " ".join(done.stdout.split())
    done = run_flow(PROBE, "--help", store=tmp_path / "s", command="resume")
    assert "--executor NAME" in done.stdout


def test_a_registered_executor_is_offered_and_used(tmp_path):
    """One register() call is all a new executor needs: the option accepts it and the run uses it."""
    script = textwrap.dedent(f"""
        import runpy, sys
        from cafstore.runner.execution import executors
        from cafstore.runner.execution.executors.fork import LocalForkExecutor

        class CountingExecutor(LocalForkExecutor):
            submitted = 0

            def submit(self, spec, timeout=None):
                CountingExecutor.submitted += 1
                super().submit(spec, timeout)

            def shutdown(self):
                super().shutdown()
                print("counting executor ran", CountingExecutor.submitted, "tasks")

        executors.register("counting", CountingExecutor)
        sys.argv = [{str(PROBE)!r}] + sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
    """)
    argv = [sys.executable, "-c", script, "--store", str(tmp_path / "s")]
    done = subprocess.run(
        argv + ["run", "--executor", "counting"],
        capture_output=True,
        text=True,
        env=env_for(),
        cwd=str(FLOWS),
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert "counting executor ran 2 tasks" in done.stdout and FORKED in done.stdout
    done = subprocess.run(
        argv + ["run", "--help"], capture_output=True, text=True, env=env_for(), cwd=str(FLOWS), timeout=90
    )
    assert "fork, spawn, dask, counting" in " ".join(done.stdout.split())


def test_registry():
    assert executors.names()[:2] == ["fork", "spawn"]
    with pytest.raises(ValueError, match="already registered"):
        executors.register("fork", lambda **kw: None)
    with pytest.raises(CommandLineError, match="available executors are: fork, spawn, dask"):
        executors.create("ray", flow_cls=object)
    with pytest.raises(ValueError, match="no executor named"):
        executors.unregister("ray")
    executors.register("made-up", lambda **kw: ("made", sorted(kw)))
    try:
        assert "made-up" in executors.names()
        assert executors.create("made-up", flow_cls=object) == ("made", ["echo", "flow_cls", "kill_grace"])
        assert RunnerConfig.from_env({}, executor="made-up").executor == "made-up"
    finally:
        executors.unregister("made-up")
    assert "made-up" not in executors.names()


def test_runner_config_executor():
    assert RunnerConfig.from_env({}).executor == "fork"
    assert RunnerConfig.from_env({"CAFSTORE_START_METHOD": "spawn"}).executor == "spawn"
    assert RunnerConfig.from_env({"CAFSTORE_START_METHOD": "spawn", "CAFSTORE_EXECUTOR": "fork"}).executor == "fork"
    assert RunnerConfig.from_env({"CAFSTORE_EXECUTOR": "fork"}, executor="spawn").executor == "spawn"
    with pytest.raises(CommandLineError, match="CAFSTORE_START_METHOD is 'thread'"):
        RunnerConfig.from_env({"CAFSTORE_START_METHOD": "thread"})
