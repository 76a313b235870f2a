"""The real `cafstore` command, in subprocesses: init, fsck, stats, and how it finds the store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import cafstore
from cafstore.store import Store, StoreConfig


def stats_of(run_cli, *args, **kwargs) -> dict:
    out = run_cli(*args, "stats", "--json", **kwargs)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def no_store_above(path: Path) -> bool:
    return not any((parent / ".cafstore").exists() for parent in path.resolve().parents)


def test_version_and_help(run_cli):
    out = run_cli("--version")
    assert out.returncode == 0 and cafstore.__version__ in out.stdout and "cafstore" in out.stdout
    out = run_cli("--help")
    assert out.returncode == 0
    for word in ("--store", "init", "fsck", "stats"):
        assert word in out.stdout
    out = run_cli("fsck", "--help")
    assert out.returncode == 0 and "--json" in out.stdout


def test_help_does_not_create_a_store(run_cli, tmp_path):
    run_cli("--help", cwd=tmp_path)
    run_cli("stats", "--help", cwd=tmp_path)
    assert not (tmp_path / ".cafstore").exists()


def test_init_explicit_path_and_default(run_cli, tmp_path):
    target = tmp_path / "explicit store"
    out = run_cli("init", target)
    assert out.returncode == 0, out.stderr
    assert str(target) in out.stdout
    assert (target / "index" / "data.mdb").is_file()
    assert (target / "objects").is_dir() and (target / "tmp").is_dir()
    # Without PATH: ./.cafstore here, even inside a directory that has a store above (like `git init`).
    sub = target.parent / "project" / "sub"
    sub.mkdir(parents=True)
    (sub.parent / ".cafstore").mkdir()
    out = run_cli("init", cwd=sub)
    assert out.returncode == 0, out.stderr
    assert (sub / ".cafstore" / "index" / "data.mdb").is_file()
    # Re-running init on an existing store keeps its content.
    store = Store(target)
    oid = store.put_bytes(b"keep me")
    assert run_cli("init", target).returncode == 0
    assert Store(target).get_bytes(oid) == b"keep me"


def test_fsck_good_then_corrupt(run_cli, tmp_path):
    path = tmp_path / "store"
    store = Store(path, StoreConfig(inline_threshold=64, chunk_threshold=0))
    victim = store.put_bytes(b"v" * 5000)
    # a run ref as the data model has it (fsck judges the shape of cafstore's refs too)
    store.set_ref("runs/F/1", {"flow": "F", "run_id": 1, "status": "succeeded", "data": victim})
    out = run_cli("--store", path, "fsck")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok" in out.stdout.splitlines()[-1]
    blob = path / "objects" / victim[:2] / victim[2:]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"w" * 5000)
    out = run_cli("--store", path, "fsck")
    assert out.returncode == 1
    problems = [line for line in out.stdout.splitlines() if line.startswith("problem:")]
    assert any(victim in line and "corrupt" in line for line in problems)
    assert any("runs/F/1" in line for line in problems)
    assert "Traceback" not in out.stderr
    out = run_cli("--store", path, "fsck", "--json")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["ok"] is False and any(victim in p for p in report["problems"])


def test_stats_text_and_json(run_cli, tmp_path):
    path = tmp_path / "store"
    store = Store(path, StoreConfig(inline_threshold=64, chunk_threshold=0))
    store.put_bytes(b"tiny")
    store.put_bytes(b"f" * 1000)
    store.put_artifact({"a": 1})
    store.put_record({"r": 1})
    store.set_ref("x", 1)
    figures = stats_of(run_cli, "--store", path)
    assert figures["objects"] == 4 and figures["refs"] == 1 and figures["records"] == 1
    assert figures["artifacts"] == 1 and figures["raw"] == 2
    assert figures["inline"] + figures["files"] == 4 and figures["file_bytes"] >= 1000
    assert figures["physical_bytes"] >= figures["file_bytes"]
    out = run_cli("--store", path, "stats")
    assert out.returncode == 0
    assert "objects:" in out.stdout and "logical bytes:" in out.stdout and str(path) in out.stdout


def test_cafstore_home_is_honoured(run_cli, tmp_path):
    home = tmp_path / "home-store"
    Store(home).put_bytes(b"in the home store")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    figures = stats_of(run_cli, env={"CAFSTORE_HOME": str(home)}, cwd=elsewhere)
    assert figures["objects"] == 1
    assert not (elsewhere / ".cafstore").exists()
    # --store wins over CAFSTORE_HOME.
    other = tmp_path / "other"
    missing = run_cli("--store", other, "stats", env={"CAFSTORE_HOME": str(home)}, cwd=elsewhere)
    assert missing.returncode == 1 and "no cafstore store" in missing.stderr and not other.exists()
    assert run_cli("--store", other, "init", cwd=elsewhere).returncode == 0
    figures = stats_of(run_cli, "--store", other, env={"CAFSTORE_HOME": str(home)}, cwd=elsewhere)
    assert figures["objects"] == 0 and (other / "index").is_dir()


def test_discovery_from_a_subdirectory(run_cli, tmp_path):
    project = tmp_path / "project"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    assert run_cli("init", cwd=project).returncode == 0
    Store(project / ".cafstore").put_bytes(b"found upward")
    figures = stats_of(run_cli, cwd=deep)
    assert figures["objects"] == 1
    assert not (deep / ".cafstore").exists() and not (project / "a" / ".cafstore").exists()
    out = run_cli("fsck", cwd=deep)
    assert out.returncode == 0, out.stdout + out.stderr


def test_reading_commands_never_create_a_store(run_cli, tmp_path):
    """Like git outside a repository: say so, create nothing; `init` (or a run) creates one here."""
    if not no_store_above(tmp_path):
        pytest.skip("a .cafstore above the temp directory would be found first")
    here = tmp_path / "fresh"
    here.mkdir()
    for command in (["stats"], ["fsck"], ["log"]):
        out = run_cli(*command, cwd=here)
        assert out.returncode == 1 and "no cafstore store" in out.stderr, command
    assert not (here / ".cafstore").exists()
    assert run_cli("init", cwd=here).returncode == 0
    assert stats_of(run_cli, cwd=here)["objects"] == 0
    assert (here / ".cafstore" / "index").is_dir()


def test_store_path_that_is_a_file_is_a_clean_error(run_cli, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("hello")
    out = run_cli("--store", not_a_dir, "stats")
    assert out.returncode == 1
    assert out.stderr.startswith("Error:") and "Traceback" not in out.stderr


def test_discovery_in_process(tmp_path, monkeypatch):
    """Store() and Store.discover() follow the same rules as the command line."""
    project = tmp_path / "project"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    (project / ".cafstore").mkdir()
    monkeypatch.chdir(deep)
    assert Store().path == (project / ".cafstore").resolve()
    assert Store.discover(deep).path == (project / ".cafstore").resolve()
    home = tmp_path / "home"
    monkeypatch.setenv("CAFSTORE_HOME", str(home))
    assert Store().path == home and home.is_dir()
    monkeypatch.delenv("CAFSTORE_HOME")
    if no_store_above(tmp_path):
        lonely = tmp_path / "lonely"
        lonely.mkdir()
        monkeypatch.chdir(lonely)
        store = Store()
        assert store.path == (lonely / ".cafstore").resolve()
        store.set_ref("x", 1)
        assert (lonely / ".cafstore" / "index").is_dir()
