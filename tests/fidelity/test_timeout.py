"""@timeout as in Metaflow: TimeoutException inside the step, retried by @retry, caught by @catch."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, SHAPES, render_flow

HEADER = "import time\nfrom cafstore import catch, retry, timeout\n"
SLEEPS = "self.check = True\ntime.sleep(10)"


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_timeout_raises_timeoutexception_that_catch_catches(lab, shape):
    # in the innermost step of a foreach (as Metaflow's own test does) and at the end
    roles = ["inner", "end"] if SHAPES[shape].foreach_depth else ["join", "end"]
    caught = ['catch(var="ex", print_exception=False)', "timeout(seconds=1)"]
    bodies = {role: SLEEPS for role in roles}
    decorators = dict({role: caught for role in roles}, split=[], switch=[])  # neither can be caught
    lab.run(render_flow(shape, dict(bodies, split="pass", switch="pass"), header=HEADER, decorators=decorators))
    run = lab.latest()
    ran = {step.id for step in run}
    timed_out = 0
    for name, node in SHAPES[shape].nodes.items():
        if not set(node.roles(name)) & set(roles) or node.kind in ("foreach", "switch") or name not in ran:
            continue
        for task in run[name]:
            assert task["check"].data is True
            ex = task["ex"].data
            assert ex.type == "metaflow.plugins.timeout_decorator.TimeoutException"
            assert ex.exception.startswith(f"Step {name} timed out after 0 hours, 0 minutes, 1 seconds")
            timed_out += 1
    assert timed_out > 0


def test_timeout_is_retried_by_retry(lab):
    body = "if current.retry_count == 0:\n    time.sleep(10)\nself.attempt_seen = current.retry_count"
    decorators = {"end": ["retry(times=1)", "timeout(seconds=1)"]}
    lab.run(render_flow("linear", {"end": body}, header=HEADER, decorators=decorators))
    task = lab.latest()["end"].task
    assert task.attempt == 1 and task["attempt_seen"].data == 1


def test_with_timeout_fails_a_slow_run_with_timeoutexception(lab):
    lab.write(render_flow("linear", {"end": "time.sleep(10)"}, header=HEADER))
    done = lab.cli("--with", "timeout:seconds=1", "run")
    assert done.returncode == 1
    assert "@timeout" in done.stderr and "timed out after 0 hours, 0 minutes, 1 seconds" in done.stderr
