"""``current`` in a step: Metaflow's fields, with Metaflow's types, the same in every shape."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, render_flow

from cafstore import current

RECORD = """
assert current.is_running_flow is True
assert isinstance(current.run_id, str) and isinstance(current.task_id, str)
assert current.step_name == self._current_step
assert current.pathspec == '/'.join([current.flow_name, current.run_id, current.step_name, current.task_id])
assert current.retry_count == 0 and current.origin_run_id is None
assert current.tags == {'t1', 'second tag'}, current.tags  # user tags only, as a set
assert current.parameter_names == []
assert current.graph['start_step'] == 'start' and current.step_name in current.graph['steps']
assert 'project_name' not in current and current.get('branch_name') is None
self.fields = (current.flow_name, current.run_id, current.namespace, current.username)
self.step_seen = current.step_name
self.task_obj = current.task
self.run_obj = current.run
assert self.task_obj.pathspec == current.pathspec
assert Run(current.run.pathspec) == current.run and current.run == Run(current.run.pathspec)
assert current.tempdir == '.'
"""


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_current_describes_each_task_and_its_client_objects_pickle(lab, shape):
    lab.run(
        render_flow(shape, {"all": RECORD}, header="from cafstore import Run"), "--tag", "t1", "--tag", "second tag"
    )
    run = lab.latest()
    run_id = run.pathspec.split("/")[1]
    for step in run:
        for task in step:
            assert task["fields"].data == ("FidelityFlow", run_id, "user:tester", "tester")
            assert task["step_seen"].data == step.id
            assert task["task_obj"].data.pathspec == task.pathspec
            assert task["run_obj"].data.pathspec == run.pathspec
            assert task["run_obj"].data[step.id].id == step.id


def test_outside_a_run_current_is_empty_and_says_what_is_missing():
    assert current.is_running_flow is False
    assert (current.run_id, current.pathspec, current.task, current.run) == (None, None, None, None)
    with pytest.raises(AttributeError, match="@project"):
        current.project_name
    with pytest.raises(AttributeError, match="@card"):
        current.card
    with pytest.raises(RuntimeError, match="only set while a flow runs"):
        current.graph


def test_current_is_one_object_however_it_is_imported():
    import cafstore
    from cafstore.runner.authoring import current as module

    assert cafstore.current is current is module.current
