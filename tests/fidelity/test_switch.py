"""Conditional branches: ``self.next({'a': self.x, 'b': self.y}, condition='route')``.

One case runs, the others never do; branches meet again without a join; a
switch naming its own step loops, each lap a new task of the step; the graph
record and ``show`` describe the switch; malformed switches are refused before
anything runs, naming file, line and step; a condition value that matches no
case fails its task with one clear paragraph; resume in the middle of a loop
reuses the laps that had run.
"""

from __future__ import annotations

import re

import pytest
from shapes import SWITCH_SHAPE_NAMES, SWITCH_SHAPES, render_flow

from cafstore import Flow, namespace

# Every step checks the artifact set in start reached it, whichever path it came by.
TOKEN_BODIES = {
    "start": "self.token = 'tok'",
    "join": "assert {i.token for i in inputs} == {'tok'}\nself.token = inputs[0].token",
    "end": "assert self.token == 'tok'",
    "all": "assert self.token == 'tok'\nself.seen = current.step_name",
}


@pytest.mark.parametrize("shape", SWITCH_SHAPE_NAMES)
def test_only_the_chosen_case_runs_and_artifacts_flow_through_it(lab, shape):
    lab.run(render_flow(shape, TOKEN_BODIES))
    run = lab.latest()
    ran = {step.id for step in run}
    nodes = SWITCH_SHAPES[shape].nodes
    assert {name for name in nodes if name.startswith("skipped")} & ran == set()
    assert ran == {name for name in nodes if not name.startswith("skipped")}
    assert run["end"].task["token"].data == "tok"
    graph = {node["name"]: node for node in run.graph_steps()}
    for name, node in nodes.items():
        if node.kind == "switch":
            assert graph[name]["type"] == "split-switch"
            assert graph[name]["condition"] == "route"
            assert graph[name]["switch_cases"] == dict(node.cases)
            # the condition is an ordinary artifact of the switch task
            assert {task["route"].data for task in run[name]} <= {key for key, _ in node.cases}


def test_a_loop_makes_one_task_per_lap_each_the_input_of_the_next(lab):
    lab.run(render_flow("recursive_switch", {"switch": "print('lap', self.laps)"}))
    run = lab.latest()
    laps = sorted(run["loop"], key=lambda t: t["laps"].data)
    assert [t["laps"].data for t in laps] == [1, 2, 3]
    assert [t["route"].data for t in laps] == ["again", "again", "done"]
    assert [t.stdout.strip() for t in laps] == ["lap 1", "lap 2", "lap 3"]
    assert [p.pathspec for p in laps[0].parent_tasks] == [run["start"].task.pathspec]
    for before, after in zip(laps, laps[1:]):
        assert [p.pathspec for p in after.parent_tasks] == [before.pathspec]
        assert after.pathspec in before.child_task_pathspecs
    assert [p.pathspec for p in run["after"].task.parent_tasks] == [laps[-1].pathspec]
    assert run["end"].task["laps"].data == 3


def test_a_loop_inside_a_foreach_keeps_each_item_apart(lab):
    lab.run(
        render_flow(
            "recursive_switch_in_foreach",
            {"join": "self.laps_per_item = sorted((i.input, i.laps) for i in inputs)", "inner": "pass"},
        )
    )
    run = lab.latest()
    assert run["join"].task["laps_per_item"].data == [(1, 1), (2, 2), (3, 3)]
    per_item = {}
    for task in run["loop"]:
        per_item.setdefault(task.index, []).append(task["laps"].data)
    assert {k: sorted(v) for k, v in per_item.items()} == {0: [1], 1: [1, 2], 2: [1, 2, 3]}


def test_show_and_the_run_graph_describe_the_switch(lab):
    lab.write(render_flow("recursive_switch", {}))
    proc = lab.cli("show")
    assert proc.returncode == 0, proc.stderr
    assert "Step loop\n    => loop, after (switch on 'route': 'again': loop, 'done': after)" in proc.stdout


def test_a_condition_value_that_matches_no_case_fails_the_task_clearly(lab):
    proc = lab.run(render_flow("switch", {"switch": "self.route = 'c'"}), ok=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert "step 'choose'" in message and "self.route = 'c'" in message and "'a', 'b'" in message
    namespace(None)
    assert "chosen" not in [step.id for step in Flow("FidelityFlow").latest_run]


FAIL_ON_LAP_3 = """
import os
if self.laps == 3 and os.environ.get('FAIL_LAP'):
    raise ValueError('lap 3 fails')
"""


def test_resume_in_the_middle_of_a_loop_reuses_the_laps_that_ran(lab):
    shape = "recursive_switch"
    source = render_flow(shape, {"switch": FAIL_ON_LAP_3}).replace("self.laps < 3", "self.laps < 5")
    proc = lab.run(source, env={"FAIL_LAP": "1"}, ok=False)
    assert proc.returncode != 0 and "lap 3 fails" in proc.stderr
    proc = lab.cli("resume")
    assert proc.returncode == 0, proc.stderr
    assert len(re.findall(r"Reused FidelityFlow/1/loop/", proc.stdout)) == 2
    run = lab.latest()
    laps = {t["laps"].data: t for t in run["loop"]}
    assert sorted(laps) == [1, 2, 3, 4, 5]
    assert all("origin-task-id" in laps[n].metadata_dict for n in (1, 2))
    assert all("origin-task-id" not in laps[n].metadata_dict for n in (3, 4, 5))
    assert run["end"].task["laps"].data == 5


def test_resume_of_a_loop_inside_a_foreach(lab):
    body = "import os\nif self.input == 3 and self.laps == 2 and os.environ.get('FAIL_LAP'):\n    raise ValueError('x')"
    lab.run(render_flow("recursive_switch_in_foreach", {"switch": body}), env={"FAIL_LAP": "1"}, ok=False)
    proc = lab.cli("resume")
    assert proc.returncode == 0, proc.stderr
    run = lab.latest()
    assert len(list(run["loop"])) == 6
    clones = sorted((t.index, t["laps"].data) for t in run["loop"] if "origin-task-id" in t.metadata_dict)
    # Every loop task the failed run finished is reused, and only those: which laps finished before the
    # failure stopped new launches depends on timing (index 1's second lap may or may not have started).
    from cafstore import Run

    origin = Run(f"FidelityFlow/{int(run.id) - 1}")
    finished = sorted((t.index, t["laps"].data) for t in origin["loop"] if t.successful)
    assert clones == finished
    assert {(0, 1), (1, 1), (2, 1)} <= set(clones)  # started alongside the failing task: they ran to the end


HEAD = "from cafstore import FlowSpec, step\n\nclass BadFlow(FlowSpec):\n    @step\n    def start(self):\n"
TAIL = (
    "\n    @step\n    def a(self):\n        self.next(self.end)\n"
    "\n    @step\n    def b(self):\n        self.next(self.end)\n"
    "\n    @step\n    def end(self):\n        pass\n\nif __name__ == '__main__':\n    BadFlow()\n"
)
START_NEXT = 7  # the line of start's self.next(...)

MALFORMED = {
    "condition not a string": (
        "self.next({'x': self.a, 'y': self.b}, condition=self.mode)",
        "condition= in step 'start' must be a string literal",
    ),
    "case not a step": ("self.next({'x': self.a, 'y': 'b'}, condition='mode')", "must name a step"),
    "empty dict": ("self.next({}, condition='mode')", "has no cases"),
    "condition without a dict": ("self.next(self.a, self.b, condition='mode')", "not one dict literal"),
    "dict without condition": ("self.next({'x': self.a, 'y': self.b})", "no condition="),
    "dict with foreach": ("self.next({'x': self.a, 'y': self.b}, condition='m', foreach='xs')", "foreach"),
    "one case": ("self.next({'x': self.a}, condition='mode')", "only one case"),
    "key not a literal": ("self.next({k: self.a, 'y': self.b}, condition='mode')", "keys must be literals"),
    "unknown step": ("self.next({'x': self.a, 'y': self.c}, condition='mode')", "not a step of flow"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_switches_are_refused_naming_file_line_and_step(lab, case):
    call, expected = MALFORMED[case]
    lab.write(HEAD + "        self.mode = 'x'\n        " + call + "\n" + TAIL)
    proc = lab.cli("run")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert expected in message, message
    assert f"flow.py:{START_NEXT}:" in message, message
    assert "'start'" in message


def test_a_loop_back_to_an_earlier_step_is_refused(lab):
    source = render_flow("switch", {}).replace("'b': self.skipped", "'b': self.start")
    lab.write(source)
    proc = lab.cli("run")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert "makes a cycle" in message and "step 'choose'" in message and "flow.py:" in message


def _refused(lab, source: str) -> str:
    lab.write(source)
    proc = lab.cli("run")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert re.search(r"flow\.py:\d+: ", message), message
    return message


def test_a_switch_that_only_loops_can_never_reach_end(lab):
    source = render_flow("switch", {}).replace(
        "def chosen(self):\n        pass\n        self.next(self.end)",
        "def chosen(self):\n        self.next({'x': self.chosen, 'y': self.chosen}, condition='route')",
    )
    assert "'y': self.chosen" in source
    message = _refused(lab, source)
    assert "step 'chosen' can never reach end" in message and "'x': chosen, 'y': chosen" in message


def test_a_switch_case_straight_into_a_join_is_refused(lab):
    source = render_flow("switch_in_branch", {}).replace("'b': self.skipped", "'b': self.join")
    skipped = "    @step\n    def skipped(self):\n        pass\n        self.next(self.join)\n"
    assert skipped in source
    message = _refused(lab, source.replace(skipped, ""))
    assert "conditional path cannot lead directly to a join" in message and "step 'left'" in message


def test_a_branch_whose_switch_skips_the_join_is_refused(lab):
    source = render_flow("switch_in_branch", {}).replace(
        "def skipped(self):\n        pass\n        self.next(self.join)",
        "def skipped(self):\n        pass\n        self.next(self.end)",
    )
    assert "def skipped(self):\n        pass\n        self.next(self.end)" in source
    message = _refused(lab, source)
    assert "step 'end' is reached from several steps ('skipped', 'join')" in message
