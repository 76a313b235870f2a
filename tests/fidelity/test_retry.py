"""@retry as in Metaflow's local runtime: fresh attempts at once, failed attempts' artifacts invisible."""

from __future__ import annotations

import time

import pytest
from shapes import SHAPE_NAMES, TASKS, render_flow

from cafstore import Task

# Every step fails twice, then succeeds; what the failed attempts set must never be seen.
FLAKY = """
assert not hasattr(self, "invisible"), "an artifact of a failed attempt leaked"
self.attempt_seen = current.retry_count
print("attempt", current.retry_count)
if current.retry_count < 2:
    self.invisible = True
    raise ValueError("flaky %d" % current.retry_count)
"""


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_retry_reruns_until_success_and_keeps_only_the_last_attempt(lab, shape):
    started = time.monotonic()
    done = lab.run(
        render_flow(shape, {"all": FLAKY}, header="from cafstore import retry", decorators={"all": ["retry(times=2)"]})
    )
    assert time.monotonic() - started < 60, "the default delay between retries must not apply locally"
    assert "Retrying now." in done.stdout
    run = lab.latest()
    for step in run:
        for task in step:
            assert task.successful and task.attempt == 2
            assert task["attempt_seen"].data == 2
            assert "invisible" not in task
            first = Task(task.pathspec, attempt=0)
            assert not first.successful and "flaky 0" in first.exception.message
            assert "attempt 0" in first.stdout
    assert run.successful
    assert {step.id: len(list(step)) for step in run} == TASKS[shape]


def test_retry_over_metaflows_attempt_limit_is_refused(lab):
    source = render_flow("linear", {}, decorators={"all": ["retry(times=5)"]}).replace(
        "from cafstore import FlowSpec, step, current", "from cafstore import FlowSpec, step, current, retry"
    )
    done = lab.run(source, ok=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "@retry(times=4)" in done.stderr and "'start'" in done.stderr


@pytest.mark.parametrize("shape", ["linear", "foreach"])
def test_with_retry_adds_retry_to_every_step(lab, shape):
    lab.write(render_flow(shape, {"all": FLAKY}))
    done = lab.cli("--with", "retry:times=2,minutes_between_retries=0", "run")
    assert done.returncode == 0, done.stdout + done.stderr
    run = lab.latest()
    assert all(task.attempt == 2 and task.successful for step in run for task in step)


def test_a_steps_own_retry_wins_over_with(lab):
    source = render_flow("linear", {"all": FLAKY}, decorators={"end": ["retry(times=1)"]})
    lab.write(source.replace("import FlowSpec, step, current", "import FlowSpec, step, current, retry"))
    done = lab.cli("--with", "retry:times=2", "run")
    assert done.returncode != 0  # end has only 2 attempts and fails on both
    assert "'end'" in done.stderr and "Traceback" in done.stderr


@pytest.mark.parametrize(
    "spec, words", [("nosuch", "no decorator 'nosuch'"), ("retry:times", "not an option=value pair")]
)
def test_with_refuses_a_bad_spec_in_one_paragraph(lab, spec, words):
    lab.write(render_flow("linear", {}))
    done = lab.cli("--with", spec, "run")
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
