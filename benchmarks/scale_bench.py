"""Scaling curves: does the cost per task, per run and per object stay flat as counts grow?

    python benchmarks/scale_bench.py [--tasks 100,1000,10000] [--artifacts 1000,10000,100000]
        [--runs 1000,10000,100000] [--objects 10000,100000] [--huge] [--plot FILE] [--json FILE]
    python benchmarks/scale_bench.py --replot FILE.json --plot FILE.png

``--huge`` adds the sizes that take minutes: a 100,000-task foreach and gc/fsck
over 1,000,000 objects. Each part uses fresh stores in a temp directory under
the current one (``--dir`` to choose); fsync stays on, as for a user.

1. foreach of N trivial tasks (``benchmarks/flows/foreach.py``, ``--max-workers 2``):
   wall time per task, the scheduler's peak RSS (its own ``ru_maxrss``, read
   as it exits), then the client listing the step's N tasks (``list(Step(...))``,
   fresh objects, in this process);
2. one step storing N small artifacts (``setattr`` N times): wall per artifact;
3. a history of N runs (written straight into refs and records, as
   client_bench.py does): ``Flow.latest_run`` and ``Run()`` (median of 200
   calls, microseconds) and ``cafstore log -n 20 --all`` as a whole command (median
   of 5, including the interpreter's start);
4. gc and fsck over N objects (half reachable from refs): seconds, and
   microseconds per object;
5. peak RSS of the 256 MiB artifact flow (``benchmarks/flows/big_artifact.py``):
   the scheduler and the largest task, against the artifact's size.

The figures print as tables; ``--plot`` draws the curves (needs matplotlib,
``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Runs the flow file given as argv[1] as ``python flow.py run ...`` and reports, on stderr, this
# process's peak RSS (the scheduler's) and the largest of its children's (the tasks').
# (VmHWM, not ru_maxrss, for the scheduler: Linux carries ru_maxrss across exec, so a large benchmark
# process would lend its own size to the flow it starts.)
_WRAPPER = """
import atexit, resource, runpy, sys
def report():
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()
    own = int(status[0])
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stderr.write(f"\\nSCALE-RSS-KB {own} {kids}\\n")
atexit.register(report)
flow = sys.argv[1]
sys.argv = [flow] + sys.argv[2:]
runpy.run_path(flow, run_name="__main__")
"""

ARTIFACT_FLOW = """
from cafstore import FlowSpec, step

N_ARTIFACTS = {n}


class ManyArtifactsFlow(FlowSpec):
    @step
    def start(self):
        for i in range(N_ARTIFACTS):
            setattr(self, f"a{{i}}", i)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ManyArtifactsFlow()
"""


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def run_flow(flow: Path, args: list, store: Path) -> dict:
    """Run a flow file; wall seconds and peak RSS (MiB) of the scheduler and of its largest task."""
    env = {**os.environ, "CAFSTORE_HOME": str(store), "HOME": str(store.parent)}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(flow), "run", *args], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{flow.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    found = re.search(r"SCALE-RSS-KB (\d+) (\d+)", done.stderr)
    own, kids = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    return {"wall": wall, "scheduler_mib": own / 1024, "task_mib": kids / 1024}


def foreach_curve(root: Path, sizes: list[int]) -> list[dict]:
    from cafstore import Step, namespace

    source = (HERE / "flows" / "foreach.py").read_text()
    rows = []
    for n in sizes:
        flow = root / f"foreach_{n}.py"
        flow.write_text(re.sub(r"^N_TASKS = \d+", f"N_TASKS = {n}", source, flags=re.M))
        store = root / f"foreach-store-{n}"
        got = run_flow(flow, ["--max-workers", "2", "--max-num-splits", str(n + 1)], store)
        os.environ["CAFSTORE_HOME"] = str(store)
        namespace(None)
        began = time.perf_counter()
        listed = len(list(Step("BenchForeachFlow/1/work")))
        listing = time.perf_counter() - began
        assert listed == n, (listed, n)
        rows.append({"tasks": n, "ms_per_task": got["wall"] / n * 1e3, "list_s": listing, **got})
        print(
            f"  foreach {n:>7,}: {got['wall']:8.1f} s, {rows[-1]['ms_per_task']:.2f} ms/task, scheduler peak "
            f"{got['scheduler_mib']:.0f} MiB, listing {listing:.3f} s",
            flush=True,
        )
    return rows


def artifacts_curve(root: Path, sizes: list[int]) -> list[dict]:
    rows = []
    for n in sizes:
        flow = root / f"artifacts_{n}.py"
        flow.write_text(ARTIFACT_FLOW.format(n=n))
        got = run_flow(flow, [], root / f"artifacts-store-{n}")
        rows.append({"artifacts": n, "us_per_artifact": got["wall"] / n * 1e6, **got})
        print(f"  {n:>7,} artifacts in one step: {got['wall']:7.1f} s, {rows[-1]['us_per_artifact']:.0f} us each")
    return rows


def _median_us(fn: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e6


def history_curve(root: Path, sizes: list[int]) -> list[dict]:
    import random

    from client_bench import FLOW, extend_history

    from cafstore import Flow, Run, namespace
    from cafstore.store import Store, StoreConfig

    path = root / "history-store"
    store = Store(path, StoreConfig(durable=False))
    os.environ["CAFSTORE_HOME"] = str(path)
    namespace(None)
    rows, have = [], 0
    for n in sizes:
        extend_history(store, have, n)
        have = n
        latest = _median_us(lambda: Flow(FLOW).latest_run, 200)
        run = _median_us(lambda n=n: Run(f"{FLOW}/{random.randint(1, n)}"), 200)
        log_times = []
        for _ in range(5):
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "cafstore.cli.main", "--store", str(path), "log", "-n", "20", "--all"],
                check=True,
                capture_output=True,
            )
            log_times.append(time.perf_counter() - began)
        rows.append({"runs": n, "latest_run_us": latest, "run_us": run, "log_ms": statistics.median(log_times) * 1e3})
        print(
            f"  {n:>7,} runs: latest_run {latest:.0f} us, Run() {run:.0f} us, `log -n 20` {rows[-1]['log_ms']:.0f} ms"
        )
    return rows


def maintenance_curve(root: Path, sizes: list[int]) -> list[dict]:
    from cafstore.maintenance import gc
    from cafstore.store import Store, StoreConfig

    rows = []
    for n in sizes:
        store = Store(root / f"gc-store-{n}", StoreConfig(durable=False))
        batch = 10_000
        for first in range(0, n, batch):
            with store.transaction() as txn:
                ids = [txn.put_bytes(i.to_bytes(8, "little") * 25) for i in range(first, min(first + batch, n))]
                for k in range(0, len(ids) // 2, 100):  # half of them reachable, 100 per record
                    txn.set_ref(f"bench/{first + k:010d}", txn.put_record({"kind": "bench", "to": ids[k : k + 100]}))
        began = time.perf_counter()
        report = gc.collect(store, grace=0)
        gc_s = time.perf_counter() - began
        began = time.perf_counter()
        ok = store.fsck().ok
        fsck_s = time.perf_counter() - began
        objects = report.scanned
        rows.append(
            {
                "objects": objects,
                "gc_s": gc_s,
                "fsck_s": fsck_s,
                "gc_us_per_object": gc_s / objects * 1e6,
                "fsck_us_per_object": fsck_s / max(objects - len(report.removed), 1) * 1e6,
                "removed": len(report.removed),
                "fsck_ok": ok,
            }
        )
        print(
            f"  {objects:>9,} objects: gc {gc_s:.1f} s ({rows[-1]['gc_us_per_object']:.1f} us/object, "
            f"{len(report.removed):,} removed), fsck {fsck_s:.1f} s ({rows[-1]['fsck_us_per_object']:.1f} us/object)"
        )
    return rows


def big_artifact_rss(root: Path) -> dict:
    flow = root / "big_artifact.py"
    flow.write_text((HERE / "flows" / "big_artifact.py").read_text())
    got = run_flow(flow, [], root / "big-store")
    got["artifact_mib"] = 256
    got["ratio"] = max(got["scheduler_mib"], got["task_mib"]) / 256
    print(
        f"  256 MiB artifact flow: scheduler peak {got['scheduler_mib']:.0f} MiB, largest task "
        f"{got['task_mib']:.0f} MiB ({got['ratio']:.2f}x the artifact), {got['wall']:.1f} s"
    )
    return got


def plot(results: dict, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    panels = [
        (axes[0][0], "foreach", "tasks", [("ms_per_task", "wall ms per task")], "ms"),
        (axes[0][1], "foreach", "tasks", [("list_s", "client lists the step's tasks")], "s"),
        (axes[1][0], "history", "runs", [("latest_run_us", "latest_run"), ("run_us", "Run()")], "us"),
        (
            axes[1][1],
            "maintenance",
            "objects",
            [("gc_us_per_object", "gc"), ("fsck_us_per_object", "fsck")],
            "us per object",
        ),
    ]
    for ax, part, xkey, series, unit in panels:
        rows = results.get(part) or []
        for key, label in series:
            ax.plot([r[xkey] for r in rows], [r[key] for r in rows], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel(xkey)
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("cafstore scaling (flat lines are the goal)")
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=90)


def main(argv: "list | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="100,1000,10000")
    parser.add_argument("--artifacts", default="1000,10000,100000")
    parser.add_argument("--runs", default="1000,10000,100000")
    parser.add_argument("--objects", default="10000,100000")
    parser.add_argument("--huge", action="store_true", help="add 100,000 tasks and 1,000,000 objects (minutes)")
    parser.add_argument("--skip", default="", help="parts to leave out: foreach,artifacts,history,maintenance,big")
    parser.add_argument("--dir", default=None)
    parser.add_argument("--plot", default=None, help="write the curves to this image file")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--replot", metavar="JSON", default=None, help="draw --plot from a --json file saved earlier; measure nothing"
    )
    args = parser.parse_args(argv)
    if args.replot:
        if not args.plot:
            parser.error("--replot needs --plot FILE")
        plot(json.loads(Path(args.replot).read_text()), Path(args.plot))
        return 0
    tasks, objects = _ints(args.tasks), _ints(args.objects)
    if args.huge:
        tasks.append(100_000)
        objects.append(1_000_000)
    skip = set(args.skip.split(","))
    load = os.getloadavg()[0]
    print(f"1-minute load average at the start: {load:.1f}", flush=True)
    results: dict = {"load_start": load}
    with tempfile.TemporaryDirectory(prefix="scale-bench-", dir=args.dir or os.getcwd()) as scratch:
        root = Path(scratch)
        parts = [
            ("foreach", lambda: foreach_curve(root, tasks)),
            ("artifacts", lambda: artifacts_curve(root, _ints(args.artifacts))),
            ("history", lambda: history_curve(root, _ints(args.runs))),
            ("maintenance", lambda: maintenance_curve(root, objects)),
            ("big", lambda: big_artifact_rss(root)),
        ]
        for name, part in parts:
            if name not in skip:
                print(name, flush=True)
                results[name] = part()
    results["load_end"] = os.getloadavg()[0]
    results["bench_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.plot:
        plot(results, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
