"""Two users with a store each share runs through a directory remote, as they would type it."""

from __future__ import annotations

import pytest
from remote_helpers import FLOWS, cafstore, client_artifacts, flow, ok, remote_problems, runs_of

from cafstore import schema
from cafstore.client import Flow, Run, namespace
from cafstore.client.connection import use_store
from cafstore.exception import RemoteError
from cafstore.remote import config
from cafstore.remote.pull import pull
from cafstore.remote.push import push
from cafstore.store import Store, StoreConfig


def test_push_clone_read_resume_and_push_back(tmp_path, anne_store):
    remote = tmp_path / "remote"
    ok(cafstore(anne_store, "anne", "remote", "add", "origin", remote))
    first = ok(cafstore(anne_store, "anne", "push", "origin"))
    assert "2 runs pushed" in first and "pushed SharedFlow/1" in first, first
    assert remote_problems(remote) == []
    again = ok(cafstore(anne_store, "anne", "push", "origin", "--json"))
    assert '"objects_sent": 0' in again and '"bytes_sent": 0' in again and '"requests": 0' in again, again

    bob = tmp_path / "bob"
    cloned = ok(cafstore(bob, "bob", "clone", remote, bob))
    assert "2 runs pulled" in cloned, cloned
    assert "SharedFlow/1" in ok(cafstore(bob, "bob", "log", "--all"))
    for path in (anne_store, bob):
        ok(cafstore(path, "x", "fsck"))

    # Bob reads Anne's run exactly as Anne does: data, logs, tags, her namespace.
    use_store(anne_store)
    namespace(None)
    theirs = client_artifacts(Flow("SharedFlow")["1"])
    use_store(bob)
    namespace("user:bob")
    assert list(Flow("SharedFlow").runs()) == []  # not in bob's namespace, like any run of anne's
    namespace("user:anne")
    pulled = Flow("SharedFlow").latest_run
    assert pulled.successful and "user:anne" in pulled.tags
    assert client_artifacts(pulled) == theirs

    # Bob resumes the pulled run, and pushes his run (his namespace only: anne's pulled run stays put).
    flow(bob, "bob", FLOWS / "shared_flow.py", "resume", "--origin-run-id", "1", "join")
    pushed = ok(cafstore(bob, "bob", "push", "origin"))
    assert "1 runs pushed" in pushed and "SharedFlow/2" in pushed, pushed
    assert remote_problems(remote) == []
    ok(cafstore(anne_store, "anne", "pull", "origin"))
    runs = runs_of(anne_store)
    [bobs] = [m for m in runs.values() if m["user"] == "bob"]
    assert bobs["resumed_from"] == 1 and bobs["origin"]["run_id"] == 2  # anne's own run 1, bob's number 2
    use_store(anne_store)
    namespace(None)
    resumed = Run(f"SharedFlow/{bobs['run_id']}")
    assert resumed["join"].task.data.total == theirs["join/" + resumed["join"].task.id][0]["total"]
    ok(cafstore(anne_store, "anne", "fsck"))


def test_tags_and_pins_merge_as_sets_on_both_sides(tmp_path, anne_store, as_user):
    remote = tmp_path / "remote"
    as_user("anne")
    a = Store(anne_store)
    config.add(a, "origin", str(remote))
    ok(cafstore(anne_store, "anne", "tag", "add", "SharedFlow/1", "shared", "old"))
    push(a, "origin", ["SharedFlow/1"])
    as_user("bob")
    b = Store(tmp_path / "bob")
    config.add(b, "origin", str(remote))
    pull(b, "origin")
    bob_run = next(m for m in runs_of(b.path).values() if m["flow"] == "SharedFlow")["run_id"]
    # Both sides change tags at once: anne drops "old" and adds "a1"; bob adds "b1" and pins the run.
    ok(cafstore(anne_store, "anne", "tag", "remove", "SharedFlow/1", "old"))
    ok(cafstore(anne_store, "anne", "tag", "add", "SharedFlow/1", "a1"))
    ok(cafstore(b.path, "bob", "tag", "add", f"SharedFlow/{bob_run}", "b1"))
    ok(cafstore(b.path, "bob", "pin", f"SharedFlow/{bob_run}"))
    as_user("bob")
    assert push(b, "origin", [f"SharedFlow/{bob_run}"]).runs_updated == [f"SharedFlow/{bob_run}"]
    as_user("anne")
    report = push(a, "origin", ["SharedFlow/1"])
    assert report.objects_sent == 0 and report.runs_updated == ["SharedFlow/1"]
    as_user("bob")
    pull(b, "origin")
    want = ["a1", "b1", "shared"]
    assert runs_of(anne_store)["SharedFlow/1"]["user_tags"] == want
    assert runs_of(b.path)[f"SharedFlow/{bob_run}"]["user_tags"] == want
    assert a.get_ref(schema.pin_ref("SharedFlow", 1)) is not None  # bob's pin travelled to anne
    assert b.get_ref(schema.pin_ref("SharedFlow", bob_run)) is not None
    assert remote_problems(remote) == []


def test_mistakes_get_one_paragraph_naming_what_is_wrong(tmp_path, anne_store, as_user):
    as_user("anne")
    store = Store(anne_store)
    with pytest.raises(RemoteError, match="no remote named 'nowhere'.*remote add nowhere URL"):
        push(store, "nowhere")
    with pytest.raises(RemoteError, match="of no known form.*s3://BUCKET/PREFIX"):
        config.add(store, "web", "https://example.com/runs")
    with pytest.raises(RemoteError, match="cannot name a remote"):
        config.add(store, "a/b", str(tmp_path))
    config.add(store, "gone", str(tmp_path / "does-not-exist"))
    with pytest.raises(RemoteError, match="does-not-exist does not exist"):
        pull(store, "gone")
    with pytest.raises(RemoteError, match="exists already"):
        config.add(store, "gone", str(tmp_path))
    config.add(store, "origin", str(tmp_path / "remote"))
    with pytest.raises(RemoteError, match="no run SharedFlow/9 in the store"):
        push(store, "origin", ["SharedFlow/9"])
    push(store, "origin")
    with pytest.raises(RemoteError, match="has no run 'Nope'"):
        pull(store, "origin", ["Nope"])
    done = cafstore(anne_store, "anne", "pull", "origin", "SharedFlow/x")
    assert done.returncode == 1 and "names no run" in done.stderr and "Traceback" not in done.stderr, done.stderr
    listed = ok(cafstore(anne_store, "anne", "remote", "list"))
    assert "origin\t" in listed and "gone\t" in listed
    ok(cafstore(anne_store, "anne", "remote", "remove", "gone"))
    assert [name for name, _ in config.listing(store)] == ["origin"]


def test_many_packs_and_loose_objects_move_in_parallel(tmp_path, anne_store, as_user, monkeypatch):
    from cafstore.remote import packs

    monkeypatch.setattr(packs, "PACK_TARGET", 1024)  # a pack every few objects: many parallel uploads
    monkeypatch.setattr(packs, "LOOSE_MIN", 600)  # the logs and larger artifacts travel alone
    as_user("anne")
    store = Store(anne_store)
    config.add(store, "origin", str(tmp_path / "remote"))
    sent = push(store, "origin", jobs=6)
    assert sent.requests > 10 and len(list((tmp_path / "remote" / "objects").iterdir())) > 3
    assert remote_problems(tmp_path / "remote") == []
    as_user("bob")
    bob = Store(tmp_path / "bob", StoreConfig(inline_threshold=256))  # records above it stay inline all the same
    config.add(bob, "origin", str(tmp_path / "remote"))
    assert len(pull(bob, "origin", jobs=6).runs_sent) == 2
    assert bob.fsck().ok
    use_store(anne_store)
    namespace(None)
    theirs = client_artifacts(Flow("SharedFlow")["1"])
    use_store(bob.path)
    assert client_artifacts(Flow("SharedFlow").latest_run) == theirs


def test_push_and_pull_report_bytes_to_a_progress_bar(tmp_path, anne_store, as_user):
    import io

    from cafstore.progress import Progress, callback

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    as_user("anne")
    store = Store(anne_store)
    config.add(store, "origin", str(tmp_path / "remote"))
    shown = Terminal()
    with Progress("push origin", unit="B", stream=shown, delay=0, interval=0, use_rich=False) as bar:
        sent = push(store, "origin", progress=callback(bar))
    assert sent.bytes_sent > 0 and bar.done == bar.total == sent.bytes_sent
    assert "push origin:" in shown.getvalue() and "(100%)" in shown.getvalue()
    as_user("bob")
    bob = Store(tmp_path / "bob")
    config.add(bob, "origin", str(tmp_path / "remote"))
    shown = Terminal()
    with Progress("pull origin", unit="B", stream=shown, delay=0, interval=0, use_rich=False) as bar:
        pull(bob, "origin", progress=callback(bar))
    assert bar.done > 0 and bar.total is None and "pull origin:" in shown.getvalue()
