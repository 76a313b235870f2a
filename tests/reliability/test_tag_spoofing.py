"""User tags cannot spoof system tags (issue 12, item 12).

``user:`` and ``production:`` tags are namespaces: a user tag under one of
them would put a run into someone else's namespace, or a production one.
Every way a user tag enters -- ``--tag`` on run and resume, ``tag add`` and
``tag replace`` on both command lines, ``Run.add_tag(s)``/``replace_tag(s)``
-- refuses system prefixes, control and bidirectional characters, and
leading or trailing spaces, with one message and nothing changed. A spoofed
tag already in a store (written by an older version) is shown escaped and
can be removed, but never counts as the namespace it imitates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cafstore
from cafstore import schema
from cafstore.client import connection, namespaces
from cafstore.exception import TaggingError
from cafstore.store import Store

FLOW = Path(__file__).with_name("flows") / "tiny_flow.py"

# Each is refused everywhere; the word the message must contain follows it.
BAD_TAGS = [
    ("user:bob", "reserved"),
    ("production:0123abcd", "reserved"),
    ("runtime:prod", "reserved"),
    ("USER:bob", "reserved"),
    ("safe\u202eexe.txt", "U+202E"),  # right-to-left override: prints as "safetxt.exe"
    ("a\u2066b", "U+2066"),  # left-to-right isolate
    ("zero\u200bwidth", "U+200B"),
    ("two\nlines", "U+000A"),
    ("bell\x07", "U+0007"),
    ("c1\x85", "U+0085"),
    ("line\u2028sep", "U+2028"),
    (" leading", "whitespace"),
    ("trailing ", "whitespace"),
    ("x" * 501, "at most 500"),
]


def _env(user: str = "anne") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env["CAFSTORE_USER"] = user
    return env


def _cafstore(store: Path, *args: str, user: str = "anne") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store), *args],
        env=_env(user),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _flow(store: Path, *args: str, user: str = "anne") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(FLOW), "--store", str(store), *args],
        env=_env(user),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tags") / "store"
    done = _flow(path, "run", "--tag", "keep")
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def store_path(one_run: Path, tmp_path: Path) -> Path:
    """A real store with one run by anne (TinyFlow/1), tagged ``keep``: a copy of one made once."""
    path = tmp_path / "store"
    shutil.copytree(one_run, path)
    return path


@pytest.fixture
def client(store_path: Path, monkeypatch):
    monkeypatch.setenv("CAFSTORE_USER", "anne")
    monkeypatch.delenv("CAFSTORE_NAMESPACE", raising=False)
    store = Store(store_path)
    connection.use_store(store)
    namespaces.namespace(None)
    yield store
    connection.use_store(None)
    namespaces._current = namespaces.UNSET
    store.close()


def _user_tags(store_path: Path) -> list:
    store = Store(store_path)
    try:
        return store.get_ref(schema.run_ref("TinyFlow", 1))["user_tags"]
    finally:
        store.close()


def _refused(proc: subprocess.CompletedProcess, word: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)  # a usage error, as click's own
    assert word in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# The command lines call the same check as the client (schema.check_user_tags), which the client test
# runs over every bad tag; through subprocesses a few kinds are enough and keep the suite fast.
CLI_BAD_TAGS = [BAD_TAGS[0], BAD_TAGS[1], BAD_TAGS[4], BAD_TAGS[11]]


def test_cafstore_tag_add_and_replace_refuse(store_path):
    for tag, word in CLI_BAD_TAGS:
        _refused(_cafstore(store_path, "tag", "add", "TinyFlow/1", "fine", tag), word)
    tag, word = CLI_BAD_TAGS[2]
    _refused(_cafstore(store_path, "tag", "replace", "TinyFlow/1", "keep", tag), word)
    assert _user_tags(store_path) == ["keep"]  # nothing changed, not even "fine"


def test_the_flows_own_command_line_refuses(store_path):
    for (tag, word), command in zip(
        CLI_BAD_TAGS,
        (
            ["tag", "add", "--run-id", "1", "fine"],
            ["tag", "replace", "--run-id", "1", "--remove", "keep", "--add"],
            ["run", "--tag"],
            ["resume", "--tag"],
        ),
    ):
        _refused(_flow(store_path, *command, tag), word)
    _refused(_flow(store_path, "run", "--tag", "ok", "--tag", CLI_BAD_TAGS[0][0]), "reserved")
    store = Store(store_path)
    try:
        assert [name for name, _ in store.list_refs(schema.runs_prefix("TinyFlow"))] == [
            schema.run_ref("TinyFlow", 1)
        ]  # no run was started, nor a production token made
        assert not list(store.list_refs(schema.PRODUCTION_PREFIX))
    finally:
        store.close()
    assert _user_tags(store_path) == ["keep"]


def test_run_production_with_a_spoofed_tag_makes_no_token(store_path):
    _refused(_flow(store_path, "run", "--production", "--tag", "production:mine"), "reserved")
    store = Store(store_path)
    try:
        assert not list(store.list_refs(schema.PRODUCTION_PREFIX))
    finally:
        store.close()


@pytest.mark.parametrize("tag, word", BAD_TAGS + [("lone\ud800", "U+D800"), (5, "not int")], ids=lambda v: repr(v)[:16])
def test_the_client_refuses(client, tag, word):
    run = cafstore.Run("TinyFlow/1")
    for change in (
        lambda: run.add_tag(tag),
        lambda: run.add_tags(["fine", tag]),
        lambda: run.replace_tag("keep", tag),
        lambda: run.replace_tags(["keep"], ["fine", tag]),
    ):
        with pytest.raises(TaggingError, match=word.replace("+", r"\+")):
            change()
    assert cafstore.Run("TinyFlow/1").user_tags == {"keep"}


def test_good_tags_still_pass(client):
    run = cafstore.Run("TinyFlow/1")
    run.add_tags(["with space", "ünïcode ✓", "a:b", "users:x", "my-user:bob", "x" * 500])
    assert {"with space", "ünïcode ✓", "a:b", "users:x", "my-user:bob"} <= run.user_tags


def test_every_system_tag_the_runner_writes_has_a_reserved_prefix(store_path):
    store = Store(store_path)
    try:
        system = store.get_ref(schema.run_ref("TinyFlow", 1))["system_tags"]
    finally:
        store.close()
    assert system and all(schema.system_tag_prefix(tag) for tag in system), system


def _spoof(store_path: Path, *tags: str) -> None:
    """What an older cafstore let anyone store: user tags under system prefixes, a bidi override."""
    store = Store(store_path)
    try:
        store.update_ref(schema.run_ref("TinyFlow", 1), lambda meta: {**meta, "user_tags": sorted(tags)})
    finally:
        store.close()


def test_a_spoofed_tag_in_the_store_opens_no_namespace(store_path, client, monkeypatch):
    client.close()
    _spoof(store_path, "user:bob", "production:tok", "keep")
    monkeypatch.setenv("CAFSTORE_USER", "bob")
    namespaces.default_namespace()  # bob's: user:bob
    assert cafstore.Flow("TinyFlow").latest_run is None
    for ns in ("user:bob", "production:tok"):
        namespaces.namespace(ns)
        assert list(cafstore.Flow("TinyFlow").runs()) == []
        with pytest.raises(cafstore.exception.NamespaceMismatch, match="it is in namespace 'user:anne'"):
            cafstore.Run("TinyFlow/1")  # the error names where the run really is
    namespaces.namespace(None)
    assert list(cafstore.Flow("TinyFlow").runs("user:bob")) == []  # a tag filter does not match it either
    run = cafstore.Run("TinyFlow/1")
    assert "user:bob" in run.user_tags  # still shown, so it can be seen and removed
    run.remove_tags(["user:bob", "production:tok"])
    assert cafstore.Run("TinyFlow/1").user_tags == {"keep"}


def test_the_cli_neither_lists_nor_prints_a_spoofed_tag_raw(store_path):
    _spoof(store_path, "user:bob", "evil\u202eexe.txt")
    log = _cafstore(store_path, "log", "--namespace", "user:bob", user="bob")
    assert log.returncode == 0 and "TinyFlow/1" not in log.stdout, log.stdout
    listed = _cafstore(store_path, "namespace", "list", user="bob")
    assert "user:bob" not in listed.stdout.replace("* user:bob", ""), listed.stdout  # only as bob's default
    assert "user:anne" in listed.stdout
    for args in (["log", "--all"], ["log", "--all", "--oneline"], ["tag", "list", "TinyFlow/1"]):
        out = _cafstore(store_path, *args)
        assert out.returncode == 0, out.stderr
        assert "\u202e" not in out.stdout and "\\u202e" in out.stdout, out.stdout
    removed = _cafstore(store_path, "tag", "remove", "TinyFlow/1", "user:bob", "evil\u202eexe.txt")
    assert removed.returncode == 0, removed.stderr
    assert _user_tags(store_path) == []
