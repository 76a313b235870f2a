"""Tags: mutation from a step and from the client with Metaflow's rules, and namespace filtering of every
object level (runs, steps, tasks, artifacts)."""

from __future__ import annotations

import pytest
from shapes import SHAPE_NAMES, render_flow

from cafstore.exception import MetaflowNamespaceMismatch, TaggingError

MUTATE = """
from cafstore import Run
run = Run(f"{current.flow_name}/{current.run_id}")
tag = current.step_name
run.add_tag(tag)
assert tag in run.user_tags
run.remove_tag(tag)
assert tag not in run.user_tags
"""


@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_steps_mutate_their_run_tags_and_namespaces_filter_every_level(lab, shape):
    from cafstore import Flow, namespace

    lab.run(render_flow(shape, {"all": MUTATE + "self.x = 1"}), "--tag", "keep")
    run = lab.latest()
    assert run.user_tags == {"keep"}
    for ns in ("keep", "user:tester"):
        namespace(ns)
        flow = Flow("FidelityFlow")
        assert [r.id for r in flow.runs()] == [run.id] and list(flow.runs("not_a_tag")) == []
        for step in flow[run.id]:
            assert ns in step.tags and list(step.tasks("not_a_tag")) == []
            for task in step.tasks(ns):
                assert all(ns in artifact.tags for artifact in task)
    namespace("user:nobody")
    assert list(Flow("FidelityFlow").runs()) == []
    for pathspec in (run.pathspec, f"{run.pathspec}/end", run["end"].task.pathspec):
        with pytest.raises(MetaflowNamespaceMismatch):
            type(run["end"].task if pathspec.count("/") == 3 else run if pathspec.count("/") == 1 else run["end"])(
                pathspec
            )


def test_client_tag_rules_match_metaflow(lab):
    from cafstore import Run

    lab.run(render_flow("linear", {}))
    run = Run(lab.latest().pathspec, _namespace_check=False)
    system = sorted(run.system_tags)[0]
    run.add_tags(["tag_along", system])  # a system tag is not added again, and is no error
    assert "tag_along" in run.user_tags and system not in run.user_tags
    with pytest.raises(TaggingError):
        run.remove_tags(["tag_along", system])  # all or nothing
    assert "tag_along" in run.user_tags
    run.replace_tags(["tag_along"], ["BBB", "CCC", "新想法"])
    assert run.user_tags == {"BBB", "CCC", "新想法"}
    run.add_tag(["whoop", "eee"])  # Metaflow's older list form
    run.replace_tag(["whoop", "eee"], ["woo"])
    run.remove_tag(["woo"])
    assert run.user_tags == {"BBB", "CCC", "新想法"}
    for bad in ("", "a" * 600, b"\xff\xfe", 4):
        with pytest.raises(TaggingError):
            run.add_tag(bad)
    with pytest.raises(TaggingError):
        run.remove_tag(4)
    with pytest.raises(TaggingError):
        run.replace_tags([], [])
    assert run.end_task.tags == run.tags == Run(run.pathspec, _namespace_check=False).tags


def test_metadata_names_the_store_and_switches_it(lab, tmp_path):
    import cafstore
    from cafstore import Flow, namespace
    from cafstore.exception import NotFound

    lab.run(render_flow("linear", {}))
    assert cafstore.get_metadata() == f"local@{lab.store_path}"
    other = tmp_path / "elsewhere"
    other.mkdir()
    proc = lab.cli("run", env={"CAFSTORE_HOME": str(other / ".cafstore")})
    assert proc.returncode == 0, proc.stderr
    namespace(None)
    assert cafstore.metadata(f"local@{other}") == f"local@{other / '.cafstore'}"
    assert Flow("FidelityFlow").latest_run.id == "1"
    with pytest.raises(cafstore.CafstoreError):
        cafstore.metadata("service@http://example.com")
    cafstore.metadata(str(lab.store_path))
    assert Flow("FidelityFlow").latest_run.id == "1"
    with pytest.raises(NotFound):
        cafstore.metadata(f"local@{tmp_path / 'nothing'}")
