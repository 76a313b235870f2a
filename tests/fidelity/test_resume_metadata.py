"""Resume metadata as Metaflow records it: origin-run-id on every task of a resumed run, origin-task-id on
the tasks it reused, the same metadata as the origin task otherwise; origin_pathspec of Run, Step, Task."""

from __future__ import annotations

import pytest
from shapes import render_flow

END = """
import os
self.origin_seen = current.origin_run_id
if os.environ.get("FAIL_END"):
    raise RuntimeError("fail the end step")
"""
ORIGIN_KEYS = {"origin-run-id", "origin-task-id", "python_version"}


@pytest.mark.parametrize("shape", ["linear", "branch", "foreach", "nested_foreach"])
def test_resumed_run_records_its_origins(lab, shape):
    from cafstore import Task

    lab.run(render_flow(shape, {"end": END, "all": "self.x = 1"}), env={"FAIL_END": "1"}, ok=False)
    proc = lab.cli("resume")
    assert proc.returncode == 0, proc.stderr
    run = lab.latest()
    assert run.id == "2" and run.origin_pathspec == "FidelityFlow/1"
    end = run["end"].task
    assert end.data.origin_seen == "1"
    assert end.metadata_dict["origin-run-id"] == "1" and "origin-task-id" not in end.metadata_dict
    assert end.origin_pathspec is None and run["end"].origin_pathspec == "FidelityFlow/1/end"
    for step in run:
        if step.id == "end":
            continue
        for task in step:
            meta = task.metadata_dict
            assert meta["origin-run-id"] == "1" and isinstance(meta["origin-task-id"], str)
            origin = Task(f"FidelityFlow/1/{step.id}/{meta['origin-task-id']}", _namespace_check=False)
            assert task.origin_pathspec == origin.pathspec
            original = origin.metadata_dict
            assert {k: v for k, v in original.items() if k not in ORIGIN_KEYS} == {
                k: v for k, v in meta.items() if k not in ORIGIN_KEYS
            }
            assert "origin-run-id" not in original and original["attempt"] == "0"
            assert all(m.task == task and isinstance(m.created_at, int) for m in task.metadata)
