"""Task output: captured at the fd level, echoed live with a timestamp and the pathspec, stored per task."""

from __future__ import annotations

import re
from datetime import datetime

from helpers import Stored, run_flow

PREFIX = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \[LogFlow/1/(start|end)/(\d+) \(pid (\d+)\)\] (.*)$")


def test_prefix_format_and_print_time(tmp_path):
    store = tmp_path / "store"
    done = run_flow("logging_flow.py", store=store)
    assert done.returncode == 0, done.stderr
    lines = {}
    for line in done.stdout.splitlines() + done.stderr.splitlines():
        match = PREFIX.match(line)
        if match:
            lines[match.group(5)] = (datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f"), int(match.group(4)))
    for text in ("first line", "second line", "raw fd write", "no newline at the end", "unicode é ✓"):
        assert text in lines, (text, done.stdout)
    assert "to stderr" in lines and "to stderr" in done.stderr
    # stamped when printed: the two lines are 0.6 s apart, though the task ended later
    gap = (lines["second line"][0] - lines["first line"][0]).total_seconds()
    assert 0.5 <= gap <= 3.0
    assert lines["first line"][1] != lines["unicode é ✓"][1]  # different tasks, different pids

    view = Stored(store)
    start = view.task("LogFlow", "start")
    assert view.log(start) == "first line\nsecond line\nraw fd write\nno newline at the end\n"
    assert view.log(start, "stderr") == "to stderr\n"
    raw = view.raw_log(start)
    assert re.match(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z first line\n", raw)
    assert start["env"]["pid"] == lines["first line"][1]
    assert view.log(view.task("LogFlow", "end")) == "unicode é ✓\n"
    view.close()


def test_failed_step_traceback_is_in_stored_stderr(tmp_path):
    store = tmp_path / "store"
    done = run_flow("failing.py", store=store)
    assert done.returncode == 1
    view = Stored(store)
    bad = view.task("FailingFlow", "bad")
    assert "ZeroDivisionError" in view.log(bad, "stderr")
    assert bad["exception"]["type"] == "ZeroDivisionError"
    view.close()
