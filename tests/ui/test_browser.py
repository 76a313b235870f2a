"""The web UI and the report in a real browser (Debian's Chromium through Playwright), over real runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

from ui_helpers import FLOWS, cli_env, wait_until


def steps_shown(page: Any) -> Dict[str, str]:
    """step name -> status, as the DAG picture shows them."""
    return {
        box.get_attribute("data-step"): box.get_attribute("data-status") for box in page.locator("#dag g.step").all()
    }


def test_flows_list_runs_and_pagination_links(page: Any, ui_server: str, shoot: Any) -> None:
    page.goto(ui_server + "/")
    names = page.locator("#flows td:first-child a").all_inner_texts()
    assert {"HelloWorldFlow", "ForeachFlow", "MergeExampleFlow", "ShowcaseFlow"} <= set(names)
    page.click("text=ShowcaseFlow")
    rows = page.locator("#runs tr td:first-child a").all_inner_texts()
    assert rows == ["ShowcaseFlow/2", "ShowcaseFlow/1"]  # newest first
    assert "resumed from ShowcaseFlow/1" in page.locator("#runs").inner_text()
    page.fill("input[name=tag]", "<b>tag</b>")
    page.click("text=filter")
    assert page.locator("#runs tr td:first-child a").all_inner_texts() == ["ShowcaseFlow/1"]
    assert "<b>tag</b>" in page.locator("#runs").inner_text()  # shown as text, not markup
    shoot("runs")
    assert not page.problems


def test_run_page_shows_every_step_with_its_status(page: Any, ui_server: str, shoot: Any) -> None:
    page.goto(ui_server + "/run/MergeExampleFlow/1")
    assert steps_shown(page) == {s: "succeeded" for s in ("start", "branch1", "branch2", "join", "end")}
    page.goto(ui_server + "/run/ShowcaseFlow/1")
    assert steps_shown(page) == {s: "succeeded" for s in ("start", "fan", "join", "end")}
    fan = page.locator('#dag g.step[data-step="fan"]').text_content()
    assert "3 tasks" in fan
    assert "foreach items \u00d73" in page.locator("#dag").text_content()  # the fan-out, on the edge
    assert page.locator("#timeline rect").count() == 6  # one bar per task
    assert "<script>" in page.locator("#parameters").inner_text()
    shoot("run-page")
    page.goto(ui_server + "/run/ShowcaseFlow/2")
    assert "resumed from ShowcaseFlow/1" in page.locator("#origin").inner_text()
    reused = page.locator('#steps tr[data-step="fan"]').inner_text()
    assert "3 from run 1" in reused
    assert not page.problems


def test_task_page_previews_logs_and_attempts(page: Any, ui_server: str, shoot: Any) -> None:
    page.goto(ui_server + "/run/ShowcaseFlow/1")
    page.click('#steps tr[data-step="start"] a')
    assert page.url.endswith("/task/ShowcaseFlow/1/start/1")
    art = page.locator("#artifacts")
    assert "shape (3, 4)" in art.inner_text() and "dtype float64" in art.inner_text()
    assert page.locator('tr[data-artifact="picture"] img').evaluate("img => img.naturalWidth") == 2
    assert "..." in page.locator('tr[data-artifact="numbers"]').inner_text()  # a 500-item list is shortened
    assert "start says <script>" in page.locator('table.log[data-stream="stdout"]').inner_text()
    shoot("task-page")
    page.goto(ui_server + "/run/ShowcaseFlow/1")
    links = [a.get_attribute("href") for a in page.locator('#steps tr[data-step="fan"] a').all()]
    assert len(links) == 3
    for link in links:
        page.goto(ui_server + link)
        if page.locator("h2:has-text('Attempt 1')").count():
            break
    else:
        raise AssertionError("no fan task shows a second attempt")
    text = page.locator("main").inner_text()
    assert "Attempt 0 failed" in text and "ValueError: first attempt fails on purpose <script>" in text
    assert "Traceback" in page.locator(".exception pre").inner_text()
    assert not page.problems


def test_script_payloads_never_run(page: Any, ui_server: str) -> None:
    for path in ("/", "/flow/ShowcaseFlow", "/run/ShowcaseFlow/1", "/task/ShowcaseFlow/1/start/1"):
        page.goto(ui_server + path)
        assert page.evaluate("window.__xss === undefined"), path
        assert page.locator("main script, main img[src=x]").count() == 0, path
    assert not page.problems


def test_bad_addresses_are_clear_pages(page: Any, ui_server: str) -> None:
    for path, status, text in (
        ("/run/ShowcaseFlow/abc", 400, "is not a number"),
        ("/run/ShowcaseFlow/99", 404, "has no run 99"),
        ("/task/ShowcaseFlow/1/nostep/1", 404, "no step"),
        ("/flow/%3Cscript%3E", 404, "does not exist"),
        ("/no/such/page/here/at/all", 404, "There is no page"),
    ):
        response = page.goto(ui_server + path)
        assert response.status == status, path
        assert text in page.locator("#error").inner_text(), path
        assert "Traceback" not in page.content()


def test_report_opens_offline_from_a_file(page: Any, ui_store: Dict[str, Any], shoot: Any, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(ui_store["store"]), "report", "ShowcaseFlow/1"]
        + ["-o", str(out)],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stderr
    requests = []
    page.context.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()))
    page.context.set_offline(True)
    page.goto(out.as_uri())
    assert steps_shown(page) == {s: "succeeded" for s in ("start", "fan", "join", "end")}
    assert [url for url in requests if not url.startswith("file://")] == []  # nothing from the network
    assert page.evaluate("window.__xss === undefined")
    shoot("report")
    assert not page.problems


def test_a_live_run_page_changes_as_tasks_finish(page: Any, ui_server: str, ui_store: Dict[str, Any]) -> None:
    gates = ui_store["base"] / "gates"
    gates.mkdir()
    env = cli_env({"CAFSTORE_HOME": str(ui_store["store"]), "SLOW_GATES": str(gates)})
    run = subprocess.Popen(
        [sys.executable, str(FLOWS / "slowflow.py"), "run"],
        cwd=str(ui_store["base"]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = ui_server + "/run/SlowFlow/1"
        assert wait_until(lambda: page.goto(base).status == 200, timeout=30)
        page.wait_for_selector('#dag g.step[data-step="start"][data-status="succeeded"]', timeout=30_000)
        assert steps_shown(page)["end"] == "pending"
        assert page.locator("#run-status").inner_text() == "running"
        page.evaluate("window.__loaded_once = true")
        (gates / "work").touch()
        page.wait_for_selector('#dag g.step[data-step="work"][data-status="succeeded"]', timeout=30_000)
        (gates / "end").touch()
        page.wait_for_selector("#run-status:text-is('succeeded')", timeout=30_000)
        assert steps_shown(page)["end"] == "succeeded"
        assert page.evaluate("window.__loaded_once === true")  # updated in place, never reloaded
    finally:
        (gates / "work").touch()
        (gates / "end").touch()
        run.wait(timeout=60)
    assert run.returncode == 0, run.stderr.read() if run.stderr else ""
    assert not page.problems
