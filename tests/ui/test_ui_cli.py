"""The UI's command lines and data without a browser: show formats, report and ui errors, paging, previews."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from ui_helpers import ROOT, cli_env

from cafstore.client import Task
from cafstore.client.views import dag
from cafstore.exception import MissingExtra
from cafstore.store import Store


def cafstore(*args: str, cwd: Path = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=str(cwd) if cwd else None,
        timeout=60,
    )


def test_flow_show_formats(tmp_path: Path) -> None:
    flow = ROOT / "examples" / "merge_example.py"
    shown = {}
    for fmt in ("text", "mermaid", "dot"):
        done = subprocess.run(
            [sys.executable, str(flow), "show", "--format", fmt], capture_output=True, text=True, cwd=str(tmp_path)
        )
        assert done.returncode == 0, done.stderr
        shown[fmt] = done.stdout
    assert "Step branch1\n    => join" in shown["text"]
    assert shown["mermaid"].startswith("flowchart TD\n")
    assert "    s_start --> s_branch1\n    s_start --> s_branch2\n" in shown["mermaid"]
    assert shown["dot"].startswith('digraph "MergeExampleFlow" {') and "s_join -> s_end;" in shown["dot"]
    assert cafstore("show", str(flow), "--format", "mermaid").stdout == shown["mermaid"]


def test_cafstore_show_of_a_run_draws_its_recorded_graph(ui_store: Dict[str, Any], tmp_path: Path) -> None:
    done = cafstore("--store", str(ui_store["store"]), "show", "ShowcaseFlow/1", "--format", "dot")
    assert done.returncode == 0, done.stderr
    assert 's_start -> s_fan [label="foreach items"];' in done.stdout
    latest = cafstore("--store", str(ui_store["store"]), "show", "ShowcaseFlow")
    assert latest.returncode == 0 and "Step fan\n    => join" in latest.stdout
    for args, code, text in (
        (["show", "NoSuchFlow/3"], 1, "does not exist"),
        (["show", "ShowcaseFlow/x"], 1, "is not a number"),
        (["show", str(tmp_path / "missing.py")], 1, "Cannot read the flow file"),
        (["show", "ShowcaseFlow/1", "--format", "png"], 2, "Invalid value"),
    ):
        done = cafstore("--store", str(ui_store["store"]), *args)
        assert done.returncode == code and text in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_show_offers_every_format_the_renderer_has() -> None:
    from cafstore.cli.show_commands import FORMATS

    assert FORMATS == dag.FORMATS


def test_diagram_text_is_escaped_for_its_language() -> None:
    steps = [
        {"name": "start", "type": "split-switch", "next": ["a", "end"], "switch_cases": {'x"]<b>': "a", "y": "end"}},
        {"name": "a", "type": "linear", "next": ["end"], "foreach": None},
        {"name": "end", "type": "end", "next": []},
    ]
    mermaid = dag.mermaid(steps)
    assert '-->|"x#quot;]#lt;b#gt;"|' in mermaid and "<b>" not in mermaid
    dot = dag.dot(steps, 'Fl"ow')
    assert 'digraph "Fl\\"ow"' in dot and '[label="x\\"]<b>"]' in dot


def test_report_writes_one_file_and_refuses_bad_runs(ui_store: Dict[str, Any], tmp_path: Path) -> None:
    done = cafstore("--store", str(ui_store["store"]), "report", "ShowcaseFlow/2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "ShowcaseFlow-2.html").read_text()
    assert "<link" not in html and 'src="http' not in html and 'href="http' not in html  # nothing to fetch
    assert "&lt;script&gt;window.__xss" in html
    for args, code, text in ((["report", "ShowcaseFlow/9"], 1, "has no run 9"), (["report", "Nope"], 2, "not a run")):
        done = cafstore("--store", str(ui_store["store"]), *args, cwd=tmp_path)
        assert done.returncode == code and text in done.stderr, done.stderr


def test_ui_refuses_a_remote_address_unless_allowed(ui_store: Dict[str, Any]) -> None:
    done = cafstore("--store", str(ui_store["store"]), "ui", "--host", "0.0.0.0")
    assert done.returncode == 1
    assert "--allow-remote" in done.stderr and "Traceback" not in done.stderr


def test_without_the_extra_the_ui_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from cafstore.ui import require

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "starlette" else real(name, *a))
    with pytest.raises(MissingExtra, match=r"pip install 'cafstore\[ui\]'"):
        require()


def test_runs_list_pages_newest_first_by_a_cursor(ui_store: Dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from cafstore.ui import facts

    monkeypatch.setattr(facts, "RUNS_PER_PAGE", 1)
    store = Store(ui_store["store"])
    first = facts.runs_page(store, "ShowcaseFlow", None, [], None)
    assert [r["pathspec"] for r in first["runs"]] == ["ShowcaseFlow/2"] and first["older"] == 2
    second = facts.runs_page(store, "ShowcaseFlow", None, [], first["older"])
    assert [r["pathspec"] for r in second["runs"]] == ["ShowcaseFlow/1"] and second["older"] is None
    tagged = facts.runs_page(store, "ShowcaseFlow", None, ["<b>tag</b>"], None)
    assert [r["pathspec"] for r in tagged["runs"]] == ["ShowcaseFlow/1"]
    assert facts.runs_page(store, "ShowcaseFlow", "user:nobody", [], None)["runs"] == []


def test_big_artifacts_are_listed_without_being_loaded(ui_store: Dict[str, Any]) -> None:
    from cafstore.ui.preview import artifact_rows

    store = Store(ui_store["store"])
    task = Task("ShowcaseFlow/1/start/1", store=store, _namespace_check=False)
    rows = {row["name"]: row for row in artifact_rows(store, task, load_limit=200)}
    assert rows["numbers"]["type"] == "(not loaded)" and "too big" in rows["numbers"]["preview"]["text"]
    assert rows["items"]["type"] == "list"  # a small one is loaded and previewed


def test_a_remote_address_when_allowed_is_served_with_a_warning(ui_store: Dict[str, Any], ui_server: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(ui_store["store"]), "ui", "--port", "0"]
        + ["--host", "127.0.0.2", "--allow-remote"],  # another loopback address: not "this machine only"
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert "http://127.0.0.2:" in proc.stdout.readline()
        assert "warning: serving the store" in proc.stderr.readline()
    finally:
        proc.kill()
        proc.wait()
    port = ui_server.rsplit(":", 1)[1]
    taken = cafstore("--store", str(ui_store["store"]), "ui", "--port", port)
    assert taken.returncode == 1 and f"cannot serve on 127.0.0.1:{port}" in taken.stderr
