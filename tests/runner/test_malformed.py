"""Malformed flows and command lines: each exits non-zero with one clear message, no traceback,
and leaves the store fsck-clean."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from helpers import env_for, fsck_ok, run_flow

HEAD = "import os\nfrom cafstore import FlowSpec, step, Parameter, IncludeFile, JSONType, retry, catch, timeout\n"


def flow(body: str, name: str = "BadFlow") -> str:
    return (
        HEAD
        + f"\nclass {name}(FlowSpec):\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + f"\nif __name__ == '__main__':\n    {name}()\n"
    )


LINEAR_END = """
        @step
        def end(self):
            pass
        """

CASES = {
    # -- graph rules ------------------------------------------------------
    "no start": (
        flow(
            """
        @step
        def begin(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["no step named 'start'"],
    ),
    "no end": (
        flow("""
        @step
        def start(self):
            self.next(self.finish)
        @step
        def finish(self):
            pass
        """),
        [],
        ["no step named 'end'"],
    ),
    "missing next": (
        flow(
            """
        @step
        def start(self):
            self.x = 1
        """
            + LINEAR_END
        ),
        [],
        ["'start' has no self.next", ":7"],
    ),
    "next not last": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
            self.x = 1
        """
            + LINEAR_END
        ),
        [],
        ["must be the last line", "'start'"],
    ),
    "next inside if": (
        flow(
            """
        @step
        def start(self):
            if True:
                self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["must be the last line"],
    ),
    "unknown target": (
        flow(
            """
        @step
        def start(self):
            self.next(self.edn)
        """
            + LINEAR_END
        ),
        [],
        ["'edn'", "Did you mean self.end"],
    ),
    "target not a step": (
        flow(
            """
        @step
        def start(self):
            self.next(self.helper)
        def helper(self):
            pass
        """
            + LINEAR_END
        ),
        [],
        ["'helper' is a method but not a step"],
    ),
    "end has next": (
        flow("""
        @step
        def start(self):
            self.next(self.end)
        @step
        def end(self):
            self.next(self.start)
        """),
        [],
        ["'end' calls self.next"],
    ),
    "start takes inputs": (
        flow(
            """
        @step
        def start(self, inputs):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["'start' takes an argument"],
    ),
    "join without inputs": (
        flow(
            """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.join)
        @step
        def b(self):
            self.next(self.join)
        @step
        def join(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["'join' is reached from several steps", "def join(self, inputs)"],
    ),
    "inputs without split": (
        flow(
            """
        @step
        def start(self):
            self.next(self.middle)
        @step
        def middle(self, inputs):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["nothing to join"],
    ),
    "split never joined": (
        flow(
            """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.end)
        @step
        def b(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["end"],
    ),
    "foreach never joined": (
        flow(
            """
        @step
        def start(self):
            self.xs = [1]
            self.next(self.each, foreach='xs')
        @step
        def each(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["still open"],
    ),
    "cycle": (
        flow(
            """
        @step
        def start(self):
            self.next(self.a)
        @step
        def a(self):
            self.next(self.b)
        @step
        def b(self):
            self.next(self.a)
        """
            + LINEAR_END
        ),
        [],
        ["cycle"],
    ),
    "unreachable": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
        @step
        def orphan(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["'orphan' can never run"],
    ),
    "two arguments": (
        flow(
            """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.join)
        @step
        def b(self):
            self.next(self.join)
        @step
        def join(self, inputs, extra):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["2 arguments"],
    ),
    "duplicate step": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["defined twice"],
    ),
    "reserved step name": (
        flow(
            """
        @step
        def start(self):
            self.next(self.index)
        @step
        def index(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["cannot be named 'index'"],
    ),
    "bad retry option": (
        flow(
            """
        @retry(times=-1)
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["@retry(times=-1)", "'start'"],
    ),
    "unknown decorator option": (
        flow(
            """
        @catch(variable='x')
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["@catch has no option 'variable'"],
    ),
    "reserved parameter name": (
        flow(
            """
        tag = Parameter('tag', default='x')
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["'tag'", "option of `run`"],
    ),
    "separator on int parameter": (
        flow(
            """
        n = Parameter('n', default=1, separator=',')
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["separator="],
    ),
    # -- command lines ----------------------------------------------------
    "unknown option": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--bogus", "1"],
        ["No such option", "--bogus"],
    ),
    "unknown command": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        None,
        ["No such command", "runn"],
    ),
    "max workers not a number": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--max-workers", "two"],
        ["--max-workers", "'two'"],
    ),
    "max workers zero": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--max-workers", "0"],
        ["--max-workers", "at least 1"],
    ),
    "missing required parameter": (
        flow(
            """
        who = Parameter('who', required=True)
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["Missing required parameter 'who'"],
    ),
    "wrong parameter type": (
        flow(
            """
        n = Parameter('n', default=1)
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--n", "1.5"],
        ["'1.5'", "'n'"],
    ),
    "bad json": (
        flow(
            """
        cfg = Parameter('cfg', type=JSONType, default='{}')
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--cfg", "{'single': 'quotes'}"],
        ["Invalid JSON", "'cfg'", "column"],
    ),
    "missing include file": (
        flow(
            """
        data = IncludeFile('data', required=True)
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--data", "nowhere.csv"],
        ["nowhere.csv", "--data"],
    ),
    "required include file not given": (
        flow(
            """
        data = IncludeFile('data', required=True)
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["Missing required file --data"],
    ),
    "run-id-file in missing directory": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--run-id-file", "/nonexistent/dir/id"],
        ["--run-id-file", "/nonexistent/dir/id"],
    ),
    "empty tag": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--tag", " "],
        ["--tag", "cannot be empty"],
    ),
    # -- found while running -----------------------------------------------
    "foreach over a dict": (
        flow(
            """
        @step
        def start(self):
            self.things = {'a': 1}
            self.next(self.each, foreach='things')
        @step
        def each(self):
            self.next(self.join)
        @step
        def join(self, inputs):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["self.things is a mapping (dict)", "list(d.items())"],
    ),
    "foreach over an int": (
        flow(
            """
        @step
        def start(self):
            self.things = 5
            self.next(self.each, foreach='things')
        @step
        def each(self):
            self.next(self.join)
        @step
        def join(self, inputs):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["self.things (int) is not iterable"],
    ),
    "foreach over an empty list": (
        flow(
            """
        @step
        def start(self):
            self.things = []
            self.next(self.each, foreach='things')
        @step
        def each(self):
            self.next(self.join)
        @step
        def join(self, inputs):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["self.things is empty"],
    ),
    "foreach too wide": (
        flow(
            """
        @step
        def start(self):
            self.things = list(range(7))
            self.next(self.each, foreach='things')
        @step
        def each(self):
            self.next(self.join)
        @step
        def join(self, inputs):
            self.next(self.end)
        """
            + LINEAR_END
        ),
        ["--max-num-splits", "6"],
        ["splits into 7 tasks", "--max-num-splits 7"],
    ),
    "unserialisable artifact": (
        flow(
            """
        @step
        def start(self):
            import threading
            self.lock = threading.Lock()
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["artifact 'lock'", "cannot be pickled"],
    ),
    "assigning a parameter": (
        flow(
            """
        n = Parameter('n', default=1)
        @step
        def start(self):
            self.n = 2
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["parameter 'n'", "self.my_n = self.n"],
    ),
    "assigning a class constant": (
        flow(
            """
        LIMIT = 3
        @step
        def start(self):
            self.LIMIT = 4
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["self.LIMIT", "class-level constant"],
    ),
    "assigning self.input": (
        flow(
            """
        @step
        def start(self):
            self.input = 4
            self.next(self.end)
        """
            + LINEAR_END
        ),
        [],
        ["self.input is part of every flow"],
    ),
    "unmerged artifact after join": (
        flow("""
        @step
        def start(self):
            self.x = 1
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.join)
        @step
        def b(self):
            self.next(self.join)
        @step
        def join(self, inputs):
            self.next(self.end)
        @step
        def end(self):
            print(self.x)
        """),
        [],
        ["self.x", "join step 'join'"],
    ),
    "next with a non-step": (
        flow(
            """
        @step
        def start(self):
            self.next(self.end if False else print)
        """
            + LINEAR_END
        ),
        [],
        [],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed(tmp_path, name):
    source, args, words = CASES[name]
    path = tmp_path / "bad_flow.py"
    path.write_text(source)
    store = tmp_path / "store"
    if args is None:
        done = run_flow(path, store=store, command="runn")
    else:
        done = run_flow(path, *args, store=store)
    assert done.returncode != 0, done.stdout
    err = done.stderr
    assert "Traceback" not in err and "Warning" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, err
    for word in words:
        assert word in err, (word, err)
    if store.exists():
        assert fsck_ok(store)


def test_at_least_25_cases():
    assert len(CASES) >= 25


def test_no_command_validates_the_graph(tmp_path):
    path = tmp_path / "bad_flow.py"
    path.write_text(CASES["unknown target"][0])
    done = run_flow(path, store=tmp_path / "store", command="")
    assert done.returncode == 1 and "'edn'" in done.stderr and "Traceback" not in done.stderr
    assert "bad_flow.py:" in done.stderr


def test_syntax_error(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("from cafstore import FlowSpec, step\nclass B(FlowSpec):\n    @step\n    def start(self)\n")
    done = subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(tmp_path / "s"), "run", str(path)],
        capture_output=True,
        text=True,
        env=env_for(),
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "broken.py:4" in done.stderr and "not valid Python" in done.stderr
    done = subprocess.run([sys.executable, str(path), "run"], capture_output=True, text=True, env=env_for(), timeout=60)
    assert done.returncode != 0 and "line 4" in done.stderr and "SyntaxError" in done.stderr
    assert "Traceback" not in done.stderr  # Python's own syntax report is already one clear message
