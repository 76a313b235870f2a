"""Fixtures of the UI tests: one store of real runs, one ``cafstore ui`` server and one browser per session.

The browser is Debian's Chromium (/usr/bin/chromium) driven by Playwright, never a browser a tool
downloads; without it (or without Playwright) the browser tests skip and say why. Screenshots go to
``--screenshots DIR`` when given, else to the session's temporary directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from ui_helpers import CHROMIUM, CHROMIUM_ARGS, FLOWS, ROOT, cli_env, run_flow


@pytest.fixture(scope="session")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """A store with real runs: the example flows, a showcase (foreach, a retry, previews, script payloads)
    and a resume of it, whose pathspecs the tests look at."""
    base = tmp_path_factory.mktemp("ui-store")
    store = base / ".cafstore"
    markers = base / "markers"
    markers.mkdir()
    env = {"SHOWCASE_MARKERS": str(markers)}
    for example in ("helloworld.py", "foreach.py", "merge_example.py"):
        done = run_flow(store, ROOT / "examples" / example, "run")
        assert done.returncode == 0, done.stderr
    done = run_flow(store, FLOWS / "showcaseflow.py", "run", "--tag", "<b>tag</b>", env=env)
    assert done.returncode == 0, done.stderr
    done = run_flow(store, FLOWS / "showcaseflow.py", "resume", "join", "--origin-run-id", "1", env=env)
    assert done.returncode == 0, done.stderr
    return {"store": store, "base": base, "showcase": "ShowcaseFlow/1", "resumed": "ShowcaseFlow/2"}


@pytest.fixture(scope="session")
def ui_server(ui_store: Dict[str, Any]) -> Iterator[str]:
    """``cafstore ui --port 0 --all`` over ui_store, started and stopped by pid; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(ui_store["store"]), "ui", "--port", "0", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not match:
            proc.kill()
            pytest.fail(f"cafstore ui did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        yield match.group()[:-1]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_for_browser_install(limit: float = 600.0) -> None:
    """.ci/run installs Chromium in the background while the other tests run; wait for its status file."""
    status = os.environ.get("CAFSTORE_TEST_BROWSER_INSTALL")
    if not status:
        return
    deadline = time.monotonic() + limit
    while not os.path.exists(status):
        if time.monotonic() > deadline:
            pytest.fail(f"Chromium was still being installed after {limit:.0f} s (log: {status}.log)")
        time.sleep(1.0)
    code = Path(status).read_text().strip()
    if code != "0":
        log = Path(status + ".log")
        tail = log.read_text()[-2000:] if log.exists() else ""
        pytest.fail(f"installing Chromium failed (exit {code}):\n{tail}")


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _wait_for_browser_install()
    if not os.access(CHROMIUM, os.X_OK):
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CAFSTORE_TEST_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as driver:
        # launch() gives the browser a new, empty profile directory of its own each session.
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context) that records console errors and dialogs (an alert is a failure)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.problems = []
    tab.on("dialog", lambda dialog: (tab.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    tab.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = request.config.getoption("--screenshots", default=None)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shoot(page: Any, screenshot_dir: Path):
    """``shoot('name')``: save the page as name.png (full page) among the session's screenshots."""

    def save(name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
