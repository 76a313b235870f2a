"""Interrupted transfers, a corrupted remote, and gc of a remote: both sides stay consistent."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from remote_helpers import FLOWS, cafstore, env_of, flow, fsck_ok, ok, remote_problems, runs_of

from cafstore import schema
from cafstore.exception import RemoteError
from cafstore.remote import config, packs
from cafstore.remote.pull import pull
from cafstore.remote.push import push
from cafstore.store import Store, records
from cafstore.store.objectid import hash_bytes


def _kill_when(store: Path, user: str, ready, *args: str) -> bool:
    """Run ``cafstore ARGS`` and SIGKILL it the moment ``ready()`` holds (polled every ms): a kill in
    the middle of a transfer, at a point the test chooses. False if the command finished first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store), *args],
        env=env_of(user),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while proc.poll() is None:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.001)
    return False


def _files(folder: Path, pattern: str = "*") -> list:
    return list(folder.glob(pattern)) if folder.exists() else []


def test_killed_push_and_pull_leave_both_sides_consistent_and_a_rerun_completes(tmp_path, anne_store, as_user):
    flow(anne_store, "anne", FLOWS / "shared_flow.py", "run", "--big-bytes", "16000000", "--width", "20")
    remote = tmp_path / "remote"
    config.add(Store(anne_store), "origin", str(remote))
    # Killed while writing its first key, after the large object, after a pack: never a ref before its objects.
    for ready in (
        lambda: _files(remote / "tmp"),
        lambda: _files(remote / "objects"),
        lambda: _files(remote / "packs", "*.idx"),
    ):
        assert _kill_when(anne_store, "anne", ready, "push", "origin")
        assert remote_problems(remote) == []
        fsck_ok(anne_store)
    rerun = ok(cafstore(anne_store, "anne", "push", "origin"))  # the rerun completes it, reusing what arrived
    assert re.search(r"[1-9]\d* objects \([\d.]+ MiB\) already there", rerun), rerun
    assert remote_problems(remote) == []
    as_user("anne")
    assert push(Store(anne_store), "origin").objects_sent == 0

    bob = tmp_path / "bob"
    config.add(Store(bob), "origin", str(remote))
    # Killed while downloading the large object, then while storing objects: no run half there.
    for ready in (lambda: _files(bob / "tmp"), lambda: _files(bob / "objects", "*/*")):
        assert _kill_when(bob, "bob", ready, "pull", "origin")
        fsck_ok(bob)
        for meta in runs_of(bob).values():  # a run that is there is whole: its tasks came with it
            assert Store(bob).list_refs(schema.tasks_prefix(meta["flow"], meta["run_id"]))
    as_user("bob")
    pull(Store(bob), "origin")
    assert sorted(m["user"] for m in runs_of(bob).values()) == ["anne"] * 3
    fsck_ok(bob)

    # Leftovers of the killed pushes (temp files, packs no ref names) go with gc --remote, and only they.
    kept = ok(cafstore(anne_store, "anne", "gc", "--remote", "origin"))
    assert "remove 0 keys" in kept, kept
    ok(cafstore(anne_store, "anne", "gc", "--remote", "origin", "--grace", "0s"))
    assert remote_problems(remote) == []
    assert not (remote / "tmp").exists() or not list((remote / "tmp").iterdir())
    as_user("carol")
    carol = Store(tmp_path / "carol")
    config.add(carol, "origin", str(remote))
    assert len(pull(carol, "origin").runs_sent) == 3
    fsck_ok(carol.path)


def _pushed(tmp_path: Path, anne_store: Path, as_user) -> Path:
    as_user("anne")
    remote = tmp_path / "remote"
    store = Store(anne_store)
    config.add(store, "origin", str(remote))
    push(store, "origin")  # SharedFlow/1 and HelloWorldFlow/1, their small objects in one pack
    return remote


def test_a_corrupt_object_on_the_remote_is_refused_and_named(tmp_path, anne_store, as_user):
    remote = _pushed(tmp_path, anne_store, as_user)
    anne = Store(anne_store)
    [(_, join)] = anne.list_refs(schema.tasks_prefix("SharedFlow", 1, "join"))
    total = anne.get_record(join)["artifacts"]["total"]
    # Flip one byte of SharedFlow's artifact `total` inside the pack it shares with HelloWorldFlow's objects.
    [idx] = (remote / "packs").glob("*.idx")
    pack_id = idx.name[: -len(".idx")]
    entry = next(e for e in packs.read_index(pack_id, idx.read_bytes()) if e.oid == total)
    pack = remote / packs.pack_key(pack_id)
    body = bytearray(pack.read_bytes())
    body[entry.offset + entry.size - 1] ^= 0xFF
    pack.write_bytes(bytes(body))
    bob = tmp_path / "bob"
    failed = cafstore(bob, "bob", "clone", remote, bob)
    assert failed.returncode == 1
    message = failed.stderr
    assert str(total) in message and "SharedFlow" in message and packs.pack_key(pack_id) in message, message
    assert "Traceback" not in message and "The other 1 run(s) were done" in message, message
    assert list(runs_of(bob)) == ["HelloWorldFlow/1"]  # the intact run came; nothing of the other one did
    bob_store = Store(bob)
    assert not bob_store.exists(total) and bob_store.fsck().ok
    objects = bob_store.stats()["objects"]

    body[entry.offset + entry.size - 1] ^= 0xFF  # repaired; now the loose object is damaged instead
    pack.write_bytes(bytes(body))
    [loose] = (remote / "objects").iterdir()
    data = bytearray(loose.read_bytes())
    data[12345] ^= 0x01
    loose.write_bytes(bytes(data))
    failed = cafstore(bob, "bob", "pull", "origin")
    assert failed.returncode == 1 and loose.name in failed.stderr and "corrupt" in failed.stderr, failed.stderr
    assert list(runs_of(bob)) == ["HelloWorldFlow/1"] and Store(bob).stats()["objects"] == objects
    assert not (bob / "tmp").exists() or not list((bob / "tmp").iterdir())


def test_remote_gc_keeps_what_refs_reach_and_fails_closed(tmp_path, anne_store, as_user):
    remote = _pushed(tmp_path, anne_store, as_user)
    store = Store(anne_store)
    transport = config.transport_of(store, "origin")
    # What an interrupted push leaves: a pack and a loose object no ref names.
    orphan = b"left by a push that was killed"
    pack_id, body, index = packs.build([(hash_bytes(orphan), 0, orphan)])
    transport.put(packs.pack_key(pack_id), body)
    transport.put(packs.index_key(pack_id), index)
    old = time.time() - 7200
    for path in (remote / packs.pack_key(pack_id), remote / packs.index_key(pack_id)):
        os.utime(path, (old, old))
    kept = ok(cafstore(anne_store, "anne", "gc", "--remote", "origin", "--dry-run", "-v"))
    assert f"would remove {packs.index_key(pack_id)}" in kept and "would remove 2 keys" in kept, kept
    [ref] = [p for p in (remote / "refs" / "runs" / "SharedFlow").rglob("*") if p.is_file()]
    saved = ref.read_bytes()
    ref.write_bytes(b"not a record")
    refused = cafstore(anne_store, "anne", "gc", "--remote", "origin")
    assert refused.returncode == 1 and "deleted nothing" in refused.stderr, refused.stderr
    assert (remote / packs.pack_key(pack_id)).exists()
    ref.write_bytes(saved)
    ok(cafstore(anne_store, "anne", "gc", "--remote", "origin"))
    assert not (remote / packs.pack_key(pack_id)).exists()
    assert remote_problems(remote) == []
    as_user("bob")
    bob = Store(tmp_path / "bob")
    config.add(bob, "origin", str(remote))
    assert sorted(pull(bob, "origin").runs_sent) == ["HelloWorldFlow/1", "SharedFlow/1"]


def test_a_run_ref_naming_paths_outside_the_remote_is_refused(tmp_path, anne_store, as_user):
    remote = _pushed(tmp_path, anne_store, as_user)
    [ref] = [p for p in (remote / "refs" / "runs" / "SharedFlow").rglob("*") if p.is_file()]
    doc = records.decode(ref.read_bytes())
    doc["packs"] = ["../../../../../../etc/passwd"]
    (ref.parent / "0000000002").write_bytes(records.encode(doc))  # a newer version, written behind our back
    as_user("bob")
    bob = Store(tmp_path / "bob")
    config.add(bob, "origin", str(remote))
    with pytest.raises(RemoteError, match="packs are not a list of pack ids"):
        pull(bob, "origin")
    assert list(runs_of(bob.path)) == ["HelloWorldFlow/1"]
    assert not (bob.path / "cache" / "etc").exists()
