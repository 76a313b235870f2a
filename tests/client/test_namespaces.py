"""Namespaces exactly as the namespaces-and-tags seed describes (Anne and Will)."""

from __future__ import annotations

import pytest
from client_helpers import write_run

from cafstore import Flow, Metaflow, Run, Step, Task, default_namespace, get_namespace, namespace
from cafstore.client import namespaces
from cafstore.exception import MetaflowNamespaceMismatch


@pytest.fixture
def teams(cstore):
    """PredictionFlow: anne 1-3, will 4-5, anne 6; FeatureFlow: will 1 (tag xyz_features), anne 2 (same tag)."""
    for user in ("anne", "anne", "anne", "will", "will", "anne"):
        write_run(cstore, "PredictionFlow", user=user, artifacts={"who": user})
    write_run(cstore, "FeatureFlow", user="will", user_tags=["xyz_features"])
    write_run(cstore, "FeatureFlow", user="anne", user_tags=["xyz_features", "date:20180301"])
    write_run(cstore, "WillOnlyFlow", user="will")
    return cstore


def test_default_namespace_is_the_user(teams, as_user, monkeypatch):
    assert get_namespace() == "user:anne" == default_namespace()
    assert Flow("PredictionFlow").latest_run.pathspec == "PredictionFlow/6"
    as_user("will")
    assert get_namespace() == "user:will"
    assert Flow("PredictionFlow").latest_run.pathspec == "PredictionFlow/5"
    assert [r.id for r in Flow("PredictionFlow")] == ["5", "4"]


def test_user_falls_back_to_user_then_username(monkeypatch):
    monkeypatch.delenv("CAFSTORE_USER")
    monkeypatch.setenv("USER", "u1")
    assert namespaces.current_user() == "u1"
    monkeypatch.delenv("USER")
    monkeypatch.setenv("USERNAME", "u2")
    assert namespaces.current_user() == "u2"
    monkeypatch.delenv("USERNAME")
    assert namespaces.current_user()  # the login name


def test_switching_namespace(teams):
    assert namespace("user:will") == "user:will" == get_namespace()
    assert Flow("PredictionFlow").latest_run.id == "5"
    run = Run("PredictionFlow/5")
    assert run.data.who == "will"
    namespace(None)
    assert get_namespace() is None
    assert Flow("PredictionFlow").latest_run.id == "6" and len(Flow("PredictionFlow")) == 6
    assert Run("PredictionFlow/5").data.who == "will"
    assert default_namespace() == "user:anne" == get_namespace()


def test_run_outside_namespace_raises_naming_its_namespace(teams):
    with pytest.raises(MetaflowNamespaceMismatch) as err:
        Run("PredictionFlow/5")
    text = str(err.value)
    assert "'user:anne'" in text and "'user:will'" in text
    assert "namespace('user:will')" in text and "namespace(None)" in text
    for make in (
        lambda: Step("PredictionFlow/5/start"),
        lambda: Task("PredictionFlow/5/start/1"),
        lambda: Flow("PredictionFlow")["5"],
    ):
        with pytest.raises(MetaflowNamespaceMismatch):
            make()
    assert "5" not in Flow("PredictionFlow")
    assert Run("PredictionFlow/5", _namespace_check=False).data.who == "will"


def test_flow_is_reachable_but_empty_outside_namespace(teams):
    flow = Flow("WillOnlyFlow")
    assert flow.latest_run is None and list(flow) == [] and not flow.is_in_namespace()
    assert [f.id for f in Metaflow()] == ["FeatureFlow", "PredictionFlow"]
    namespace(None)
    assert [f.id for f in Metaflow()] == ["FeatureFlow", "PredictionFlow", "WillOnlyFlow"]


def test_tag_as_namespace(teams):
    namespace("xyz_features")
    assert Flow("FeatureFlow").latest_run.id == "2"
    assert [r.user for r in Flow("FeatureFlow")] == ["anne", "will"]
    assert Flow("PredictionFlow").latest_run is None


def test_runs_filter_requires_all_tags_and_the_namespace(teams):
    flow = Flow("FeatureFlow")
    assert [r.id for r in flow.runs("xyz_features")] == ["2"]  # will's run 1 is outside user:anne
    assert [r.id for r in flow.runs("xyz_features", "date:20180301")] == ["2"]
    assert list(flow.runs("xyz_features", "nope")) == []
    assert [r.id for r in flow.runs("runtime:dev")] == ["2"]  # system tags filter too
    namespace(None)
    assert [r.id for r in flow.runs("xyz_features")] == ["2", "1"]
    assert [r.id for r in flow.runs("user:will")] == ["1"]


def test_is_in_namespace(teams):
    run = Run("PredictionFlow/5", _namespace_check=False)
    assert not run.is_in_namespace()
    namespace("user:will")
    assert run.is_in_namespace() and Flow("PredictionFlow").is_in_namespace()


def test_saved_default_and_environment(teams, monkeypatch):
    namespaces.save_default(teams, "user:will")
    assert default_namespace() == "user:will"
    assert Flow("PredictionFlow").latest_run.id == "5"
    namespaces.save_default(teams, None)
    assert default_namespace() is None
    monkeypatch.setenv("CAFSTORE_NAMESPACE", "xyz_features")
    assert default_namespace() == "xyz_features"
    monkeypatch.setenv("CAFSTORE_NAMESPACE", "")
    assert default_namespace() is None
    monkeypatch.delenv("CAFSTORE_NAMESPACE")
    namespaces.save_default(teams, namespaces.UNSET)
    assert default_namespace() == "user:anne"


def test_saved_default_is_per_user(teams, as_user):
    namespaces.save_default(teams, None)
    as_user("will")
    assert get_namespace() == "user:will"


def test_apply_flow_namespace(teams, monkeypatch):
    monkeypatch.delenv("CAFSTORE_NAMESPACE", raising=False)
    namespaces.apply_flow_namespace("user:will")
    try:
        assert get_namespace() == "user:will" and default_namespace() == "user:will"
        namespaces.apply_flow_namespace("")
        assert get_namespace() is None
    finally:
        monkeypatch.delenv("CAFSTORE_NAMESPACE", raising=False)


def test_bad_namespace_value():
    from cafstore.exception import ClientError

    with pytest.raises(ClientError):
        namespace("")
    with pytest.raises(ClientError):
        namespace(3)


def test_prefiltered_scan_still_checks_exactly(cstore):
    write_run(cstore, "F", user="anne")
    namespace("flow.py")  # the bytes '"flow.py"' are in every run ref (code_path), yet no run has the tag
    assert Flow("F").latest_run is None and list(Flow("F").runs()) == []
    namespace(None)
    assert list(Flow("F").runs("flow.py")) == []
    assert [r.id for r in Flow("F").runs("user:anne")] == ["1"]
