"""The command line's smaller promises (issue 12, "Smaller items"), through the real CLI in subprocesses.

``logs --stdout --stderr`` shows both streams; ``ls`` of a task lists its
artifacts (and says so when there are none); ``dump`` takes an artifact
pathspec; a bad option value is a usage error with click's exit status 2 on
both command lines; ``log --oneline`` keeps its columns for long names and
cuts long tag lists; a ``CAFSTORE_HOME`` that is a file or a dangling link
is named as such; the README and the docs say how a store comes to exist.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOW = Path(__file__).with_name("flows") / "tiny_flow.py"
WITH_PARAMETER = ROOT / "tests" / "client" / "flows" / "tagflow.py"  # TagFlow: --count, an int


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env["CAFSTORE_USER"] = "anne"
    env.update(extra)
    return env


def _run(argv: list, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=str(cwd), env=_env(**env), capture_output=True, text=True, timeout=60)


def cafstore(store: "Path | None", *args: str, cwd: "Path | None" = None, **env: str) -> subprocess.CompletedProcess:
    head = [sys.executable, "-m", "cafstore.cli.main"] + (["--store", str(store)] if store else [])
    return _run(head + list(args), cwd or Path.cwd(), **env)


def flow(store: Path, *args: str, path: Path = FLOW, **env: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, str(path), "--store", str(store), *args], store.parent, **env)


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> Path:
    """TinyFlow/1: start prints to both streams and stores nothing; mid stores x = 42."""
    path = tmp_path_factory.mktemp("polish") / "store"
    done = flow(path, "run")
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def store(one_run: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(one_run, path)
    return path


# -- logs ---------------------------------------------------------------------
def test_logs_with_both_stream_flags_shows_both(one_run):
    for proc in (
        cafstore(one_run, "logs", "TinyFlow/1/start/1", "--stdout", "--stderr"),
        cafstore(one_run, "logs", "TinyFlow/1/start/1", "--stderr", "--stdout"),
    ):
        assert proc.returncode == 0, proc.stderr
        assert "out from start" in proc.stdout and "err from start" in proc.stderr
    both = flow(one_run, "logs", "1/start/1", "--stdout", "--stderr")  # Metaflow's format: all text on stdout
    assert both.returncode == 0 and "out from start\nerr from start\n" in both.stdout
    only_out = cafstore(one_run, "logs", "TinyFlow/1/start/1", "--stdout")
    assert "out from start" in only_out.stdout and "err from start" not in only_out.stderr
    only_err = flow(one_run, "logs", "1/start/1", "--stderr")
    assert "out from start" not in only_err.stdout and "err from start" in only_err.stdout


# -- ls and dump ----------------------------------------------------------------
def test_ls_of_a_task_lists_its_artifacts_or_says_it_has_none(one_run):
    listed = cafstore(one_run, "ls", "TinyFlow/1/mid/2")
    assert listed.returncode == 0 and listed.stdout.split()[:2] == ["TinyFlow/1/mid/2/x", "21"], listed.stdout
    empty = cafstore(one_run, "ls", "TinyFlow/1/start/1")
    assert empty.returncode == 0 and empty.stdout.strip() == "TinyFlow/1/start/1: no artifacts", empty.stdout


def test_dump_of_an_artifact_pathspec_shows_that_artifact(one_run):
    import json

    proc = cafstore(one_run, "dump", "TinyFlow/1/end/3/x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "--- TinyFlow/1/end/3 ---"
    assert re.match(r"x\s+int\s+21 B\s+42$", proc.stdout.splitlines()[1]), proc.stdout
    in_flow = flow(one_run, "dump", "1/end/3/x")  # the flow's command line prints Metaflow's format
    assert in_flow.returncode == 0 and in_flow.stdout == "x [size: 21 type: <class 'int'>] = 42\n", in_flow.stderr
    as_json = json.loads(cafstore(one_run, "dump", "TinyFlow/1/end/3/x", "--json").stdout)
    assert [row["value"] for row in as_json["TinyFlow/1/end/3"]] == [42]
    missing = cafstore(one_run, "dump", "TinyFlow/1/end/3/nope")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: not found") and "has: x" in missing.stderr


# -- one exit status for a bad value ----------------------------------------------
# Through subprocesses, as a user types them (a handful: each costs an interpreter start) ...
CAFSTORE_BAD_VALUES = [
    ["dedup", "--top", "-5"],
    ["gc", "--grace", "soon"],
    ["rm", "--yes", "TinyFlow"],
    ["logs", "TinyFlow/one"],
    ["tag", "add", "TinyFlow", "x"],
    ["namespace", "set"],
    ["run", "FLOWFILE", "--max-workers", "0"],
    ["run", "PARAMFLOW", "--count", "abc"],
]
FLOW_BAD_VALUES = [
    ["run", "--executor", "nope"],
    ["resume", "--origin-run-id", "0"],
    ["tag", "add", "--run-id", "x1", "ok"],
]
# ... and the rest in-process, through the same click command (cafstore.cli.main.cli).
IN_PROCESS_BAD_VALUES = [
    ["log", "TinyFlow/1"],
    ["log", "-n", "-1"],
    ["gc", "--flow", "TinyFlow/1"],
    ["gc", "--keep-last", "-2"],
    ["pin", "TinyFlow/one"],
    ["undelete", "1"],
    ["dump", "TinyFlow/1/mid/two"],
    ["dump", "TinyFlow/1", "--max-value-size", "-1"],
    ["ls", "TinyFlow/1/mid/2/x/y"],
    ["tag", "list", "TinyFlow/x"],
    ["tag", "replace", "TinyFlow/1", "a", "user:bob"],
    ["namespace", "set", "a", "--global"],
    ["run", "FLOWFILE", "--max-num-splits", "-1"],
    ["run", "FLOWFILE", "--executor", "nope"],
    ["resume", "FLOWFILE", "--origin-run-id", "x"],
    ["run", "no-such-flow-file.py"],
]
PLACEHOLDERS = {"FLOWFILE": str(FLOW), "PARAMFLOW": str(WITH_PARAMETER)}


def test_a_bad_option_value_exits_2_everywhere(store):
    for args in CAFSTORE_BAD_VALUES:
        args = [PLACEHOLDERS.get(a, a) for a in args]
        proc = cafstore(store, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.returncode, proc.stderr)
        assert proc.stderr.strip(), args
    for args in FLOW_BAD_VALUES:
        proc = flow(store, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.returncode, proc.stderr)
    proc = flow(store, "run", "--count", "abc", path=WITH_PARAMETER)
    assert proc.returncode == 2 and "--count" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert cafstore(store, "log", "TinyFlow", "--oneline").stdout.count("TinyFlow/") == 1  # no run was started


def test_more_bad_option_values_exit_2(store, monkeypatch):
    from click.testing import CliRunner

    from cafstore.cli.main import cli

    monkeypatch.chdir(store.parent)
    monkeypatch.setenv("CAFSTORE_USER", "anne")
    for args in IN_PROCESS_BAD_VALUES:
        args = [PLACEHOLDERS.get(a, a) for a in args]
        result = CliRunner().invoke(cli, ["--store", str(store), *args])
        assert result.exit_code == 2, (args, result.exit_code, result.output)
        assert isinstance(result.exception, SystemExit), (args, result.exception)  # not a crash
    assert cafstore(store, "log", "--oneline").stdout.count("TinyFlow/") == 1  # nothing was run


def test_a_well_formed_value_that_names_nothing_is_not_found_exit_1(one_run):
    for proc in (cafstore(one_run, "logs", "TinyFlow/9"), flow(one_run, "tag", "add", "--run-id", "9", "x")):
        assert proc.returncode == 1 and "Error: not found" in proc.stderr, proc.stderr


# -- log --oneline ----------------------------------------------------------------
LONG_FLOW = """
from cafstore import FlowSpec, step


class AnExtraordinarilyLongFlowNameForColumnsFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AnExtraordinarilyLongFlowNameForColumnsFlow()
"""


def test_log_oneline_columns_stay_aligned_and_tag_lists_are_cut(store, tmp_path):
    long_flow = tmp_path / "long_flow.py"
    long_flow.write_text(LONG_FLOW)
    tags = [arg for i in range(12) for arg in ("--tag", f"tag-number-{i:02d}")]
    done = flow(store, "run", *tags, path=long_flow, CAFSTORE_USER="someone-with-a-long-user-name")
    assert done.returncode == 0, done.stderr
    out = cafstore(store, "log", "--all", "--oneline")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, lines
    dates = [re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line) for line in lines]
    assert all(dates) and len({m.start() for m in dates}) == 1, lines  # the time column lines up
    assert len({line.index("succeeded") for line in lines}) == 1, lines  # and so does the status
    assert len({line.index("anne" if "anne" in line else "someone") for line in lines}) == 1, lines
    long_line = next(line for line in lines if "Extraordinarily" in line)
    assert "tag-number-00" in long_line and "tag-number-11" not in long_line, long_line
    assert re.search(r" \+\d+ more$", long_line), long_line
    assert len(long_line) < 200


# -- finding the store ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["file", "dangling symlink"])
def test_cafstore_home_that_is_a_file_or_dangling_link_is_named(tmp_path, kind):
    home = tmp_path / "home"
    if kind == "file":
        home.write_text("not a store")
        words = "which is a file"
    else:
        home.symlink_to(tmp_path / "nowhere")
        words = "dangling"
    checks = [
        cafstore(None, "log", cwd=tmp_path, CAFSTORE_HOME=str(home)),
        cafstore(None, "init", cwd=tmp_path, CAFSTORE_HOME=str(home)),
        _run([sys.executable, str(FLOW), "run"], tmp_path, CAFSTORE_HOME=str(home)),
        _run([sys.executable, "-c", "import cafstore; cafstore.Flow('TinyFlow')"], tmp_path, CAFSTORE_HOME=str(home)),
    ]
    for proc in checks:
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert "CAFSTORE_HOME" in proc.stderr and str(home) in proc.stderr and words in proc.stderr, proc.stderr
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / ".cafstore").exists()


# -- documentation -----------------------------------------------------------------
def test_readme_quick_start_is_two_commands_and_usage_shows_init():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick.split("```", 2)[1]
    assert len([line for line in block.splitlines() if line.strip()]) == 2
    assert "cafstore init" not in quick
    rest = text.split("## Quick start", 1)[1].split("\n## ", 1)[1]
    assert "cafstore init" in rest


def test_store_and_client_docs_agree_when_a_store_is_created(tmp_path):
    store_doc, client_doc = (" ".join((ROOT / "docs" / name).read_text().split()) for name in ("store.md", "client.md"))
    rule = "Reading never creates a store"
    assert rule in store_doc and rule in client_doc
    assert "else a new `./.cafstore`" not in store_doc  # the old wording said discovery itself made one
    # ...and the behaviour is the one they describe: reading leaves no store behind, a run or init makes one
    assert cafstore(None, "log", cwd=tmp_path).returncode == 1
    assert _run([sys.executable, str(FLOW), "logs", "1"], tmp_path).returncode == 1  # a flow's own reading too
    assert not (tmp_path / ".cafstore").exists()
    assert cafstore(None, "init", cwd=tmp_path).returncode == 0
    assert (tmp_path / ".cafstore" / "index").is_dir()
