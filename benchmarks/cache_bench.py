"""Memoised steps: how long an unchanged 5-step flow takes to rerun with ``run --cache``.

    python benchmarks/cache_bench.py                 # 5 rounds, ~0.3 s of work per step
    python benchmarks/cache_bench.py --work 1.0 --rounds 3

Each round makes a fresh store, runs the flow once with ``run --cache`` (every step does its
work; the tasks are filed under their cache keys) and then again, unchanged (every task should
be reused: the script checks that no task process starts). Both are timed as whole processes,
as a user would see them (interpreter start, flow import, run ref, scheduling, exit).

The per-step work is a fixed number of SHA-256 rounds, calibrated once so that it takes about
``--work`` seconds on this machine, so every round of every run does the same work and produces
the same artifacts. The issue's target: the cached rerun takes under 20% of the first run's
time. Exit status 1 if the median ratio misses it (or a task ran on the rerun).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.20
STEPS = ["start", "s1", "s2", "s3", "end"]

FLOW = """
import hashlib

from cafstore import FlowSpec, Parameter, step

ROUNDS = {rounds}


def work(seed):
    digest = str(seed).encode()
    for _ in range(ROUNDS):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


class CacheBenchFlow(FlowSpec):
    seed = Parameter("seed", default=1)

    @step
    def start(self):
        self.h0 = work(self.seed)
        self.next(self.s1)

    @step
    def s1(self):
        self.h1 = work(self.h0)
        self.next(self.s2)

    @step
    def s2(self):
        self.h2 = work(self.h1)
        self.next(self.s3)

    @step
    def s3(self):
        self.h3 = work(self.h2)
        self.next(self.end)

    @step
    def end(self):
        self.h4 = work(self.h3)
        print("result", self.h4[:16])


if __name__ == "__main__":
    CacheBenchFlow()
"""


def calibrate(seconds: float) -> int:
    """SHA-256 rounds that take about ``seconds`` here."""
    rounds, digest = 50_000, b"x"
    began = time.perf_counter()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    per_round = (time.perf_counter() - began) / rounds
    return max(1, int(seconds / per_round))


def timed(flow: Path, store: Path, *args: str) -> "tuple[float, str]":
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env["CAFSTORE_HOME"] = str(store)
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(flow), "run", *args], env=env, capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        sys.exit(f"the flow failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=float, default=0.3, help="seconds of work per step [0.3]")
    parser.add_argument("--rounds", type=int, default=5, help="fresh stores to measure [5]")
    args = parser.parse_args()

    rounds = calibrate(args.work)
    firsts, reruns = [], []
    with tempfile.TemporaryDirectory(prefix="cafstore-cache-bench-") as scratch:
        flow = Path(scratch) / "cache_bench_flow.py"
        flow.write_text(FLOW.format(rounds=rounds))
        for number in range(args.rounds):
            store = Path(scratch) / f"store{number}"
            first, _ = timed(flow, store, "--cache")
            rerun, out = timed(flow, store, "--cache")
            ran = len(re.findall(r"Task is starting", out))
            hits = len(re.findall(r"\] Reused .* \(from the cache\)", out))
            if ran or hits != len(STEPS):
                print(f"round {number + 1}: the rerun started {ran} task(s) and reused {hits} of {len(STEPS)}:\n{out}")
                return 1
            firsts.append(first)
            reruns.append(rerun)
            print(f"round {number + 1}: first run {first:.3f} s, cached rerun {rerun:.3f} s ({rerun / first:.1%})")

    first, rerun = statistics.median(firsts), statistics.median(reruns)
    ratio = rerun / first
    print(f"\n5-step flow, ~{args.work:g} s of work per step ({rounds} SHA-256 rounds), {args.rounds} rounds:")
    print(
        f"  first run (run --cache, empty cache)   median {first:.3f} s  (min {min(firsts):.3f}, max {max(firsts):.3f})"
    )
    print(
        f"  unchanged rerun (run --cache, 5 hits)  median {rerun:.3f} s  (min {min(reruns):.3f}, max {max(reruns):.3f})"
    )
    print(f"  ratio {ratio:.1%}  (target < {TARGET:.0%}: {'met' if ratio < TARGET else 'MISSED'})")
    return 0 if ratio < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
