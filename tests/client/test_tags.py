"""User tags change at any time, atomically; system tags never change."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from client_helpers import write_run

from cafstore import Flow, Run, namespace
from cafstore.exception import NotFound, TaggingError, TaggingException


@pytest.fixture
def run(cstore):
    write_run(cstore, "TagFlow", user_tags=["keep"])
    return Run("TagFlow/1")


def test_add_remove_replace(run):
    run.add_tag("a")
    run.add_tags(["b", "c", "b"])
    assert run.user_tags == {"keep", "a", "b", "c"}
    assert Run("TagFlow/1").user_tags == run.user_tags  # visible to every reader
    run.remove_tag("a")
    run.remove_tags(["b", "never-there"])
    assert run.user_tags == {"keep", "c"}
    run.replace_tag("c", "d")
    run.replace_tags(["keep"], ["e", "f"])
    assert run.user_tags == {"d", "e", "f"} and "d" in run.tags
    assert run.system_tags == {"user:anne", "runtime:dev"}


def test_system_tags_are_immutable(run):
    with pytest.raises(TaggingError, match="system tag") as err:
        run.remove_tag("user:anne")
    assert isinstance(err.value, TaggingException)
    with pytest.raises(TaggingError):
        run.replace_tag("runtime:dev", "runtime:prod")
    assert Run("TagFlow/1").system_tags == {"user:anne", "runtime:dev"}
    assert Run("TagFlow/1").user_tags == {"keep"}  # the failed replace changed nothing
    run.add_tag("user:anne")  # the run's own system tag: not added again, no error (Metaflow's rule)
    assert Run("TagFlow/1").user_tags == {"keep"}
    with pytest.raises(TaggingError, match="reserved"):
        run.add_tag("user:will")  # another system-prefixed tag is never a user tag
    assert Run("TagFlow/1").user_tags == {"keep"}


@pytest.mark.parametrize("bad", ["", "   ", "x" * 501, "two\nlines", 5, None])
def test_bad_tags_are_refused(run, bad):
    with pytest.raises(TaggingError):
        run.add_tags([bad])
    with pytest.raises(TaggingError):
        run.add_tags("a-string-not-a-list")


def test_a_user_tag_can_be_a_namespace_to_share_runs_in(cstore, as_user):
    write_run(cstore, "TagFlow", user="will")
    namespace(None)
    Run("TagFlow/1").add_tag("team-vision")  # Will shares his run under a tag of his choosing
    as_user("anne")
    namespace("team-vision")
    assert Flow("TagFlow").latest_run.id == "1"


def test_tags_of_a_deleted_run_cannot_change(run, cstore):
    cstore.update_ref("runs/TagFlow/0000000001", lambda meta: {**meta, "deleted": 1.0})
    with pytest.raises(NotFound):
        run.add_tag("x")


def test_concurrent_tag_changes_lose_nothing(run, cstore):
    workers, count = 4, 15
    start_at = time.time() + 1.5
    worker = Path(__file__).parent / "tag_worker.py"
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(cstore.path), "TagFlow/1", str(w), str(count), str(start_at)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    expected = {"keep"}
    for w in range(workers):
        expected |= {f"w{w}-{i}" for i in range(count)}
        expected |= {f"r{w}-{i}" for i in range(1, count, 2)}
    assert Run("TagFlow/1").user_tags == expected
    assert Run("TagFlow/1").system_tags == {"user:anne", "runtime:dev"}


def test_a_tag_given_at_run_time_can_always_be_removed(cstore):
    write_run(cstore, "TagFlow", user_tags=["odd\ttag"])
    run = Run("TagFlow/1")
    run.remove_tag("odd\ttag")
    assert run.user_tags == frozenset()
