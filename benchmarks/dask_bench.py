"""The Dask executor side by side with the local fork executor and Metaflow's local runtime.

    python benchmarks/dask_bench.py                    # foreach-100, foreach-1000, artifact-256MiB
    python benchmarks/dask_bench.py --repeats 5 --only foreach-100
    python benchmarks/dask_bench.py --tools dask,fork  # leave Metaflow out (its foreach-1000 takes minutes)

A Dask cluster is started for the benchmark exactly as the tests start one: ``dask scheduler``
and two ``dask worker --nworkers 1 --nthreads 1`` on 127.0.0.1; it stays up for every run (as a
user's cluster would), so a run pays for connecting, not for starting workers.  Each case
renders a flow from ``benchmarks/flows/`` and times ``python flow.py run`` as a whole process,
in a fresh scratch directory and store per run, the tools interleaved run by run (dask, fork,
metaflow, dask, fork, ...) so that load from elsewhere hits them alike.  Reported: median wall
seconds, the ratios, and the Dask executor's marginal cost per task: (foreach-1000 -
foreach-100) / 900 tasks, with two workers.

Dask runs with ``--max-workers 8`` (tasks queued on the workers while the coordinator commits
results); fork and Metaflow with ``--max-workers 2`` (this machine's two cores).  The store is
local (the workers are on this machine); S3 blobs add their transfer time (benchmarks/s3_transfer.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import run_once, write_flow_pair  # noqa: E402
from _metaflow_env import ensure_metaflow, isolated_env  # noqa: E402

ARRAY_BYTES = 256 * 1024 * 1024
CASES = {
    "foreach-100": ("foreach", {"N_TASKS": 100}, "total 9900"),
    "foreach-1000": ("foreach", {"N_TASKS": 1000}, "total 999000"),
    "artifact-256MiB": ("big_artifact", {"ARRAY_BYTES": ARRAY_BYTES}, f"bytes {ARRAY_BYTES}"),
}
TARGET_PER_TASK_MS = 25.0
TARGET_VS_METAFLOW = 5.0  # foreach-1000 on Dask against Metaflow local


class Cluster:
    """``dask scheduler`` + two single-threaded workers on 127.0.0.1, started and stopped by pid."""

    def __init__(self, root: Path, workers: int = 2) -> None:
        self.root, self.workers, self.procs = root, workers, []  # type: ignore[var-annotated]
        self.address = ""

    def start(self) -> None:
        dask = str(Path(sys.executable).parent / "dask")
        info = self.root / "scheduler.json"
        self._spawn(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--scheduler-file", str(info)],
            self.root,
        )
        while not info.exists() or not info.read_text().strip():
            time.sleep(0.05)
        self.address = json.loads(info.read_text())["address"]
        for number in range(self.workers):
            home = self.root / f"worker{number}"
            home.mkdir()
            self._spawn(
                [dask, "worker", self.address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1"]
                + ["--no-dashboard", "--local-directory", str(home)],
                home,
            )
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(self.workers, timeout=60)

    def _spawn(self, args: List[str], cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
        log = open(cwd / "log.txt", "ab")
        self.procs.append(subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool and case (default 3)")
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--tools", default="dask,fork,metaflow", help="comma-separated: dask, fork, metaflow")
    parser.add_argument(
        "--metaflow-repeats", type=int, default=None, help="timed Metaflow runs per case (default: --repeats)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    cases = [c for c in args.only.split(",") if c]
    pythons: Dict[str, str] = {"dask": sys.executable, "fork": sys.executable}
    if "metaflow" in tools:
        mf = ensure_metaflow(log=lambda m: print(m, file=sys.stderr))
        if mf.available and mf.python:
            pythons["metaflow"] = mf.python
        else:
            print(f"Metaflow unavailable ({mf.reason}): left out")
            tools.remove("metaflow")
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} before starting")
    root = Path(tempfile.mkdtemp(prefix="cafbench-dask-"))
    cluster = Cluster(root / "cluster")
    (root / "cluster").mkdir()
    cluster.start()
    medians: Dict[str, Dict[str, float]] = {}
    try:
        for case in cases:
            template, constants, expect = CASES[case]
            files = write_flow_pair(template, root / "flows" / case, constants)
            samples: Dict[str, List[float]] = {tool: [] for tool in tools}
            n = int(constants.get("N_TASKS", 1))  # type: ignore[call-overload]
            for repeat in range(args.repeats):
                for tool in tools:
                    if tool == "metaflow" and repeat >= (args.metaflow_repeats or args.repeats):
                        continue
                    flow = files["metaflow" if tool == "metaflow" else "cafstore"]
                    command = [pythons[tool], flow.name, "run", "--max-num-splits", str(max(n, 100))]
                    if tool == "dask":
                        command += ["--executor", "dask", "--dask-scheduler", cluster.address, "--max-workers", "8"]
                    else:
                        command += ["--max-workers", "2"] + (["--executor", "fork"] if tool == "fork" else [])
                    kind = "metaflow" if tool == "metaflow" else "cafstore"
                    seconds, error, _ = run_once(
                        command,
                        env_for=lambda scratch, kind=kind: isolated_env(scratch, kind),
                        cwd=flow.parent,
                        timeout=args.timeout,
                        expect=expect,
                    )
                    if error:
                        print(f"[{case}] {tool} run {repeat + 1} failed: {error}")
                        continue
                    samples[tool].append(seconds)
                    print(f"[{case}] {tool} run {repeat + 1}: {seconds:.2f} s", file=sys.stderr, flush=True)
            medians[case] = {tool: statistics.median(s) for tool, s in samples.items() if s}
            row = "  ".join(f"{tool} {value:8.2f} s" for tool, value in medians[case].items())
            print(f"{case:16s} {row}")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    print()
    for case, values in medians.items():
        dask = values.get("dask")
        for other in ("fork", "metaflow"):
            if dask and values.get(other):
                print(
                    f"{case}: dask / {other} = {dask / values[other]:.2f} ({other} / dask = {values[other] / dask:.2f})"
                )
    small, large = medians.get("foreach-100", {}), medians.get("foreach-1000", {})
    for tool in ("dask", "fork", "metaflow"):
        if tool in small and tool in large:
            per_task = (large[tool] - small[tool]) / 900 * 1000
            print(f"{tool}: {per_task:.1f} ms per task (marginal, foreach-1000 minus foreach-100)")
    if "dask" in small and "dask" in large:
        per_task = (large["dask"] - small["dask"]) / 900 * 1000
        verdict = "met" if per_task <= TARGET_PER_TASK_MS else "NOT met"
        print(f"target: per-task overhead on Dask <= {TARGET_PER_TASK_MS:g} ms: {per_task:.1f} ms, {verdict}")
    if "dask" in large and "metaflow" in large:
        speedup = large["metaflow"] / large["dask"]
        verdict = "met" if speedup >= TARGET_VS_METAFLOW else "NOT met"
        print(
            f"target: foreach-1000 on Dask >= {TARGET_VS_METAFLOW:g}x faster than Metaflow: {speedup:.1f}x, {verdict}"
        )
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
