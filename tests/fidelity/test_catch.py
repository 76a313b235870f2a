"""@catch as in Metaflow: the caught attempt's artifacts stay, the exception is a picklable wrapper,
and a task whose process keeps dying is stood in for by a fallback attempt."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, SHAPES, render_flow

from cafstore import Task

HEADER = """
import os, signal
from cafstore import catch, retry
from cafstore.exception import ExternalCommandFailed


class NeedsTwo(Exception):
    # an exception whose __init__ takes more than the message: plain pickling of it fails
    def __init__(self, text, code):
        super().__init__(text)
        self.code = code
"""
RAISES = """
self.before = current.step_name
if current.step_name == "end":
    raise NeedsTwo("two args", 7)
raise ExternalCommandFailed("catch me!")
"""
JOIN = (
    """
assert all(inp.ex.exception == "catch me!" and inp.before for inp in inputs)
"""
    + RAISES
)
CATCH = ['catch(var="ex", print_exception=False)']


def _caught_steps(shape, run):
    """The steps that ran under @catch (a switch skips some; foreach splits and switches cannot be caught)."""
    ran = {step.id for step in run}
    return [n for n, node in SHAPES[shape].nodes.items() if node.kind not in ("foreach", "switch") and n in ran]


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_catch_keeps_the_failed_attempts_artifacts_and_the_run_goes_on(lab, shape):
    source = render_flow(
        shape,
        {"all": RAISES, "join": JOIN, "split": "pass", "switch": "pass"},
        header=HEADER,
        decorators={"all": CATCH, "split": [], "switch": []},
    )
    done = lab.run(source)
    assert "@catch caught" not in done.stdout + done.stderr  # print_exception=False
    run = lab.latest()
    assert run.successful
    for name in _caught_steps(shape, run):
        for task in run[name]:
            assert task.successful and task.exception is None
            assert task["before"].data == name  # set before the exception: kept
            ex = task["ex"].data
            if name == "end":
                assert ex.type.endswith(".NeedsTwo") and ex.exception == "two args"
            else:
                assert ex.type == "metaflow.exception.ExternalCommandFailed" and ex.exception == "catch me!"
            assert "Traceback" in str(ex) and repr(ex) == str(ex)


def test_catch_var_is_none_when_the_step_succeeds_and_printing_is_the_default(lab):
    body = {"all": "self.ok = True", "end": "raise KeyError('boom')"}
    done = lab.run(render_flow("linear", body, header=HEADER, decorators={"all": ['catch(var="ex")']}))
    run = lab.latest()
    assert run["start"].task["ex"].data is None
    assert run["end"].task["ex"].data.type == "builtins.KeyError"
    assert run["end"].task["ex"].data.exception == "'boom'"
    assert "@catch caught an exception" in run["end"].task.stderr
    assert "KeyError: 'boom'" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("shape", "role", "what", "step"),
    [("foreach", "split", "foreach split", "start"), ("switch", "switch", "switch", "choose")],
)
def test_catch_on_a_foreach_split_or_a_switch_is_refused_before_anything_runs(lab, shape, role, what, step):
    done = lab.run(render_flow(shape, {}, header=HEADER, decorators={role: ["catch"]}), ok=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"@catch is not supported on a {what}" in done.stderr and f"'{step}'" in done.stderr
    assert "Task is starting" not in done.stdout


DIES = """
print("about to die", current.retry_count)
os.kill(os.getpid(), signal.SIGKILL)
"""


# Not the loop inside a foreach: its loop counter is set by a step that would die, and a fallback
# attempt runs none of the step's code, so the loop after it has no counter (as in Metaflow).
@pytest.mark.parametrize("shape", [name for name in SHAPE_NAMES if name != "recursive_switch_in_foreach"])
def test_a_process_that_keeps_dying_is_handled_by_a_fallback_attempt(lab, shape):
    decorators = {"all": ['catch(var="ex", print_exception=False)', "retry(times=1)"], "split": [], "switch": []}
    bodies = {"all": DIES, "start": "self.fine = True", "split": "pass", "switch": "pass"}
    lab.run(render_flow(shape, bodies, header=HEADER, decorators=decorators))
    run = lab.latest()
    assert run.successful
    for name in _caught_steps(shape, run):
        if name == "start":
            continue
        for task in run[name]:
            assert task.successful and task.attempt == 2, task.pathspec  # two attempts died, the third is the fallback
            ex = task["ex"].data
            assert ex.type == "metaflow.plugins.catch_decorator.FailureHandledByCatch"
            assert "kept failing over 2 attempts" in ex.exception
            after_join = SHAPES[shape].nodes[name].join or (name == "end" and SHAPES[shape].joins)
            if not after_join:  # the fallback starts from the task's inputs (a join passes on nothing unmerged)
                assert task["fine"].data is True
            for attempt in (0, 1):
                died = Task(task.pathspec, attempt=attempt)
                assert not died.successful and "about to die %d" % attempt in died.stdout
                assert "killed by signal 9 (SIGKILL)" in died.stderr
