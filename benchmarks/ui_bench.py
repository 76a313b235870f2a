"""How fast the web UI renders its two biggest pages: a runs list over 10,000 runs, a 1,000-task run page.

    python benchmarks/ui_bench.py [--runs 10000] [--tasks 1000] [--calls 15]

The store: ``--runs`` runs of a two-step flow written straight into refs and
records (client_bench.extend_history: the runner's layout, without an hour
of real runs), plus one *real* run of examples/wide_foreach.py with
``--tasks`` foreach tasks. Then, side by side in this process (medians over
``--calls`` calls, the lowest of three rounds):

- runs list, page 1 / the last page (``?before=``) / filtered by a namespace:
  the whole page's HTML, next to ``cafstore log -n 50``'s data for the same runs
  (cafstore.client.views.text.history), what the page must at least read;
- run page of the wide run (DAG picture, timeline, every task's record),
  next to ``cafstore ls Flow/N/multiply``'s listing (every task record read,
  no rendering): as its first reader sees it, and again (the server keeps
  what it derived from each immutable task record, by record id);

and end to end over HTTP: a ``cafstore ui`` server (a subprocess, on a free
port of 127.0.0.1) answering ``GET`` for both pages, timed by the client.

The target is 300 ms per page; the report gives each page's time, its ratio
to the target, and its ratio to the read-only comparison.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from client_bench import FLOW, extend_history  # noqa: E402

TARGET_MS = 300.0


def median_ms(fn, calls: int, rounds: int = 3) -> float:
    fn()  # warm-up: imports, template compilation
    best = []
    for _ in range(rounds):
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        best.append(statistics.median(samples))
    return min(best) * 1000


def cold_run_page(store, pathspec: str) -> str:
    """The run page as its first reader gets it: no task record's facts cached by an earlier view."""
    from cafstore.client import Run
    from cafstore.ui import facts, pages

    facts.forget_record_facts()
    return pages.run_page(store, Run(pathspec, store=store, _namespace_check=False))


def http_ms(url: str, calls: int) -> float:
    def get() -> None:
        with urllib.request.urlopen(url, timeout=60) as response:
            assert response.status == 200, url
            response.read()

    return median_ms(get, calls, rounds=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()

    from cafstore.client import Run
    from cafstore.client.views import text
    from cafstore.store import Store
    from cafstore.ui import pages

    with tempfile.TemporaryDirectory(prefix="ui-bench-") as scratch:
        home = Path(scratch) / ".cafstore"
        store = Store(home)
        began = time.perf_counter()
        extend_history(store, 0, args.runs)
        print(f"wrote {args.runs} runs in {time.perf_counter() - began:.1f} s", flush=True)
        store.close()
        flow = ROOT / "examples" / "wide_foreach.py"
        source = flow.read_text().replace("range(1000)", f"range({args.tasks})")
        (Path(scratch) / "wide.py").write_text(source)
        began = time.perf_counter()
        env = {**os.environ, "CAFSTORE_HOME": str(home)}
        done = subprocess.run(
            [sys.executable, "wide.py", "run", "--max-num-splits", str(args.tasks)],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.exit(f"the wide run failed:\n{done.stderr[-2000:]}")
        print(f"ran a {args.tasks}-task foreach in {time.perf_counter() - began:.1f} s", flush=True)
        store = Store(home)
        wide = Run("WideForeachFlow/1", store=store, _namespace_check=False)
        last_page = 51  # ?before=51: the 50 oldest runs, after skipping all the newer ones
        rows = [
            (
                "runs list, page 1",
                median_ms(lambda: pages.runs_page(store, FLOW, None, "", None), args.calls),
                "log -n 50 (data)",
                median_ms(lambda: text.history(store, FLOW, None, 50), args.calls),
            ),
            (
                f"runs list, last page (skips {args.runs - 50})",
                median_ms(lambda: pages.runs_page(store, FLOW, None, "", last_page), args.calls),
                "log, oldest 50 (data)",
                median_ms(lambda: text.history(store, FLOW, None, args.runs)[-50:], args.calls),
            ),
            (
                "runs list, namespace user:bench",
                median_ms(lambda: pages.runs_page(store, FLOW, "user:bench", "", None), args.calls),
                "log -n 50 in the ns",
                median_ms(lambda: text.history(store, FLOW, "user:bench", 50), args.calls),
            ),
            (
                f"run page, {args.tasks}-task foreach, first view",
                median_ms(lambda: cold_run_page(store, wide.pathspec), 5),
                "ls F/1/multiply",
                median_ms(lambda: text.listing(store, "WideForeachFlow/1/multiply", None), 5),
            ),
            (
                f"run page, {args.tasks}-task foreach, again",
                median_ms(lambda: pages.run_page(store, Run(wide.pathspec, store=store, _namespace_check=False)), 5),
                "ls F/1/multiply",
                median_ms(lambda: text.listing(store, "WideForeachFlow/1/multiply", None), 5),
            ),
        ]
        server = subprocess.Popen(
            [sys.executable, "-m", "cafstore.cli.main", "--store", str(home), "ui", "--port", "0", "--all"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            line = server.stdout.readline() if server.stdout else ""
            base = re.search(r"http://[^ ]+/", line).group()[:-1]  # type: ignore[union-attr]
            over_http = [
                ("GET /flow/F (page 1)", http_ms(f"{base}/flow/{FLOW}", args.calls)),
                ("GET /run/WideForeachFlow/1", http_ms(f"{base}/run/WideForeachFlow/1", 5)),
            ]
        finally:
            server.terminate()
            server.wait(timeout=10)

    print()
    print(f"{'page':<50} {'ms':>8} {'/300ms':>7}   {'read-only comparison':<22} {'ms':>8} {'ratio':>6}")
    for name, ms, what, compared in rows:
        print(f"{name:<50} {ms:8.1f} {ms / TARGET_MS:7.2f}   {what:<22} {compared:8.1f} {ms / compared:6.2f}")
    for name, ms in over_http:
        print(f"{name:<50} {ms:8.1f} {ms / TARGET_MS:7.2f}   (over HTTP, end to end)")
    slow = [name for name, ms, _what, _compared in rows if ms > TARGET_MS] + [
        name for name, ms in over_http if ms > TARGET_MS
    ]
    print("\nall pages under 300 ms" if not slow else f"\nover 300 ms: {', '.join(slow)}")


if __name__ == "__main__":
    main()
