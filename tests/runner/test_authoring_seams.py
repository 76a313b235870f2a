"""The public seams the runner uses on authoring objects: bind_current/clear_current, is_step, loading_for_task.

They replace private reach-through (``current._set``, ``flowspec._LOADING_FOR_TASK = True``), so these
tests pin both what the runner may call and what a flow author still sees.
"""

from __future__ import annotations

import sys

import pytest

from cafstore import FlowSpec, current, step
from cafstore.runner.authoring.current import bind_current, clear_current
from cafstore.runner.authoring.decorators import STEP_MARKER, is_step, retry
from cafstore.runner.authoring.flowspec import loading_for_task

#: What Metaflow's ``current`` offers a step (the subset cafstore implements), and nothing more.
CURRENT_API = {
    "flow_name",
    "run_id",
    "origin_run_id",
    "step_name",
    "task_id",
    "namespace",
    "username",
    "parameter_names",
    "retry_count",
    "tags",
    "pathspec",
    "is_running_flow",
    "tempdir",
    "get",
    "task",
    "run",
    "graph",
    "project_name",
    "branch_name",
    "project_flow_name",
    "is_production",
    "is_user_branch",
    "card",
}

TASK = dict(
    flow_name="HelloFlow",
    run_id="7",
    step_name="start",
    task_id="3",
    origin_run_id=None,
    namespace="user:me",
    username="me",
    retry_count=1,
    parameter_names=["alpha"],
    tags={"a", "b"},
)


@pytest.fixture
def bound():
    bind_current(**TASK)
    try:
        yield current
    finally:
        clear_current()


def test_users_see_only_metaflows_current_api():
    public = {name for name in dir(current) if not name.startswith("_")}
    assert public == CURRENT_API


def test_bind_current_describes_the_task_and_clear_current_forgets_it(bound):
    assert current.is_running_flow is True
    assert current.pathspec == "HelloFlow/7/start/3"
    assert (current.retry_count, current.username, current.tags) == (1, "me", {"a", "b"})
    assert current.get("origin_run_id", "none") is None and "task_id" in current  # Metaflow: getattr
    assert current.get("project_name", "none") == "none"  # no @project: the attribute is missing
    assert repr(current) == "current(HelloFlow/7/start/3, attempt 1)"
    clear_current()
    assert current.is_running_flow is False and current.pathspec is None
    assert repr(current) == "current(not running a flow)"


def test_binding_again_replaces_every_field(bound):
    bind_current(flow_name="Other", run_id="1", step_name="end", task_id="9")
    assert current.pathspec == "Other/1/end/9"
    assert current.username is None and current.tags is None


def test_bind_current_refuses_an_unknown_field():
    with pytest.raises(TypeError, match="stepname"):
        bind_current(flow_name="F", stepname="start")
    assert current.is_running_flow is False


def test_is_step_tells_steps_from_plain_methods():
    @retry
    @step
    def a(self):
        pass

    def helper(self):
        pass

    assert is_step(a) and getattr(a, STEP_MARKER) is True
    assert not is_step(helper) and not is_step(None) and not is_step(lambda self: None)
    helper.is_step = "yes"  # only @step's own marker counts
    assert not is_step(helper)


class _Flow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_loading_for_task_keeps_a_flow_from_starting_its_command_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["flow.py", "--help"])
    with loading_for_task():
        assert isinstance(_Flow(), _Flow)  # no command line ran, nothing exited
        with loading_for_task():
            _Flow()
        _Flow()  # the inner block ending does not end the outer one
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as info:
        _Flow()  # outside: MyFlow() runs the flow's command line (here: --help)
    assert info.value.code == 0
    assert "Usage" in capsys.readouterr().out


def test_loading_for_task_ends_even_when_the_import_fails(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["flow.py", "--help"])
    with pytest.raises(ZeroDivisionError):
        with loading_for_task():
            1 / 0
    with pytest.raises(SystemExit):
        _Flow()


class _Legacy(FlowSpec):
    size = 3

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_a_flow_built_without_its_command_line_offers_metaflows_legacy_api():
    flow = _Legacy(use_cli=False)
    assert flow.name == "_Legacy" and flow.script_name == "test_authoring_seams.py"
    steps = list(flow)
    assert [s.name for s in steps] == ["start", "end"] and steps[0] is _Legacy.start
    assert (
        [node.name for node in flow._graph.sorted_nodes()]
        == ["start", "end"]
        == [n.name for n in _Legacy._graph.sorted_nodes()]
    )
    assert flow._current_step is None


def test_a_flow_without_mutators_is_settled_once_without_parsing_its_source(monkeypatch):
    # Every task calls pre_mutate; for the usual flow (no mutators) it must neither read the
    # flow's source (the _graph descriptor parses it) nor look again in a task forked later.
    from cafstore.runner import graph
    from cafstore.runner.authoring import mutators

    class _Plain(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    def refuse(cls: type) -> None:
        raise AssertionError("pre_mutate parsed the flow's source")

    monkeypatch.setattr(graph, "graph_from_class", refuse)
    mutators.pre_mutate(_Plain)
    monkeypatch.setattr(mutators, "has_mutators", refuse)
    mutators.pre_mutate(_Plain)  # settled: not looked at again
    mutators.mutate(_Plain)
