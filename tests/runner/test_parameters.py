"""Parameters from the command line, the environment and defaults; IncludeFile; immutability."""

from __future__ import annotations

import json

import pytest
from helpers import Stored, fsck_ok, run_flow


@pytest.fixture
def files(tmp_path):
    (tmp_path / "t.txt").write_text("hello\nworld\n", encoding="utf-8")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01\xff")
    (tmp_path / "l.txt").write_bytes("caf\xe9".encode("latin-1"))
    return tmp_path


def values(done):
    line = next(line for line in done.stdout.splitlines() if "] values " in line)
    return json.loads(line.split("] values ", 1)[1])


def test_defaults_and_conversions(tmp_path, files):
    store = tmp_path / "store"
    done = run_flow("params.py", "--creature", "seal", "--text", str(files / "t.txt"), store=store)
    assert done.returncode == 0, done.stderr
    got = values(done)
    assert got == {
        "animal": "seal",
        "count": 1,
        "ratio": None,
        "flag": False,
        "mapping": {"some": "default"},
        "names": ["x", "y"],
        "dashed": 5,
        "stamp": "made-for-stamp",
        "text": "hello\nworld\n",
        "blob": None,
        "latin": None,
    }
    assert "types int bool" in done.stdout
    assert "'animal', 'blob', 'count'" in done.stdout  # current.parameter_names: attribute names
    view = Stored(store)
    run = view.run("ParamFlow")
    assert sorted(run["parameters"]) == sorted(
        ["animal", "count", "ratio", "flag", "mapping", "names", "dashed", "stamp", "text", "blob", "latin"]
    )
    # parameters are artifacts of every task, after joins too
    for record in view.tasks("ParamFlow"):
        assert view.data(record)["animal"] == "seal" and record["artifacts"]["count"] == run["parameters"]["count"]
    view.close()


def test_every_type_from_the_command_line(tmp_path, files):
    store = tmp_path / "store"
    done = run_flow(
        "params.py",
        "--creature",
        "otter",
        "--count",
        "10",
        "--ratio",
        "0.25",
        "--flag",
        "YES",
        "--mapping",
        '{"k": [1, 2]}',
        "--names",
        "a,b,c",
        "--max-size",
        "7",
        "--stamp",
        "given",
        "--text",
        str(files / "t.txt"),
        "--blob",
        str(files / "b.bin"),
        "--latin",
        str(files / "l.txt"),
        store=store,
    )
    assert done.returncode == 0, done.stderr
    assert values(done) == {
        "animal": "otter",
        "count": 10,
        "ratio": 0.25,
        "flag": True,
        "mapping": {"k": [1, 2]},
        "names": ["a", "b", "c"],
        "dashed": 7,
        "stamp": "given",
        "text": "hello\nworld\n",
        "blob": [0, 1, 255],
        "latin": "café",
    }


@pytest.mark.parametrize(
    "word, expected", [("false", False), ("False", False), ("0", False), ("no", False), ("TRUE", True), ("1", True)]
)
def test_bool_words(tmp_path, files, word, expected):
    done = run_flow(
        "params.py", "--creature", "x", "--flag", word, "--text", str(files / "t.txt"), store=tmp_path / "store"
    )
    assert done.returncode == 0, done.stderr
    assert values(done)["flag"] is expected


def test_environment_and_command_line_precedence(tmp_path, files):
    env = {
        "CAFSTORE_RUN_CREATURE": "dinosaur",
        "CAFSTORE_RUN_COUNT": "3",
        "CAFSTORE_RUN_FLAG": "false",
        "CAFSTORE_RUN_MAX_SIZE": "9",
        "CAFSTORE_RUN_TEXT": str(files / "t.txt"),
    }
    done = run_flow("params.py", "--count", "4", store=tmp_path / "store", env=env)
    assert done.returncode == 0, done.stderr
    got = values(done)
    assert (got["animal"], got["count"], got["flag"], got["dashed"]) == ("dinosaur", 4, False, 9)


def test_include_file_is_kept_after_the_file_changes(tmp_path, files):
    store = tmp_path / "store"
    done = run_flow("params.py", "--creature", "x", "--text", str(files / "t.txt"), store=store)
    assert done.returncode == 0
    (files / "t.txt").unlink()
    view = Stored(store)
    assert view.data(view.task("ParamFlow", "end"))["text"] == "hello\nworld\n"
    view.close()


@pytest.mark.parametrize(
    "args, env, words",
    [
        (["--text", "t.txt"], {}, ["Missing required parameter 'creature'", "--creature", "CAFSTORE_RUN_CREATURE"]),
        (["--creature", "x", "--count", "ten"], {}, ["'ten'", "'count'", "integer"]),
        (["--creature", "x", "--ratio", "1/2"], {}, ["'1/2'", "'ratio'"]),
        (["--creature", "x", "--flag", "maybe"], {}, ["'maybe'", "'flag'", "true/false"]),
        (["--creature", "x", "--mapping", '{"a": }'], {}, ["Invalid JSON", "'mapping'", "line 1 column 7"]),
        (["--creature", "x", "--text", "missing.txt"], {}, ["missing.txt", "--text", "No such file"]),
        (["--creature", "x"], {"CAFSTORE_RUN_COUNT": "many"}, ["'many'", "CAFSTORE_RUN_COUNT"]),
    ],
)
def test_bad_parameters_are_one_clear_error_before_any_run(tmp_path, files, args, env, words):
    store = tmp_path / "store"
    done = run_flow("params.py", *args, store=store, env=env, cwd=files)
    assert done.returncode != 0
    assert done.stderr.startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)
    assert not store.exists() or not Stored(store).runs("ParamFlow")  # no run was created


def test_required_include_file_missing(tmp_path):
    done = run_flow("params.py", "--creature", "x", store=tmp_path / "store")
    # text is not required: it is None; the run goes on
    assert done.returncode == 0, done.stderr
    assert values(done)["text"] is None


def test_parameter_assignment_is_refused(tmp_path):
    flow = tmp_path / "assign.py"
    flow.write_text(
        "from cafstore import FlowSpec, Parameter, step\n"
        "class AssignFlow(FlowSpec):\n"
        "    count = Parameter('count', default=1)\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.count += 1\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    AssignFlow()\n"
    )
    store = tmp_path / "store"
    done = run_flow(flow, store=store)
    assert done.returncode == 1
    assert "self.count" in done.stderr and "self.my_count = self.count" in done.stderr
    assert "assign.py:6" in done.stderr and "Traceback" not in done.stderr
    assert fsck_ok(store)
