"""Whole-run benchmarks: the same flows under cafstore and under Metaflow, side by side.

    python benchmarks/flow_bench.py            # every case, measured
    python benchmarks/flow_bench.py --quick    # fewer runs; foreach-1000 extrapolated

Each case renders one flow from ``benchmarks/flows/`` twice (``from cafstore import`` and
``from metaflow import``) and times ``python flow.py run ...`` as a whole process, every
run in a fresh scratch directory with its own HOME and store (see ``_metaflow_env.py``).

cafstore runs with the interpreter running this script (``sys.executable``, normally the
dev venv's) and its store in ``$CAFSTORE_HOME`` inside the scratch directory. Metaflow
runs from ``benchmarks/.venv-metaflow``, created from PyPI on first use; if that fails
the Metaflow column says "skipped" and cafstore is still timed.

Cases:
  hello            start -> hello -> end
  foreach-100      foreach over 100 trivial tasks, --max-workers 2 --max-num-splits 100
  foreach-1000     the same over 1000 tasks (measured; with --quick or --estimate-1000,
                   extrapolated per task from 10 and 100 tasks)
  artifact-256MiB  a 256 MiB numpy array made in start, read in a middle step and in end

Two tables are printed: median wall seconds (the figure the targets are about) and median
CPU seconds of the whole process tree. On a machine shared with other work the wall
figures grow with the load (the load average is printed before and after); the CPU
figures much less so. Running the whole benchmark at a higher priority (as root,
``nice -n -10 python benchmarks/flow_bench.py``) keeps other work from skewing it.
On 2 cores a full run takes about 15-20 minutes (one Metaflow foreach-1000 run takes
8-9 minutes), ``--quick`` about 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Timing, extrapolate, print_table, ratio, time_command, write_flow_pair  # noqa: E402
from _metaflow_env import ensure_metaflow, isolated_env  # noqa: E402

MAX_WORKERS = 2
ARRAY_BYTES = 256 * 1024 * 1024
# How many times faster than Metaflow cafstore has to be, per case.
TARGETS = {"foreach-1000": 30.0, "artifact-256MiB": 5.0}
DISPLAY_ORDER = ["hello", "foreach-10", "foreach-100", "foreach-1000", "artifact-256MiB"]


@dataclass
class Case:
    name: str
    template: str
    args: List[str] = field(default_factory=list)
    constants: Dict[str, object] = field(default_factory=dict)
    expect: Optional[str] = None
    repeats: int = 3
    warmup: int = 1
    budget: Optional[float] = None  # stop repeating once timed runs exceed this many seconds


def foreach_case(n: int, *, repeats: int, warmup: int, budget: Optional[float] = None) -> Case:
    return Case(
        name=f"foreach-{n}",
        template="foreach",
        args=["--max-workers", str(MAX_WORKERS), "--max-num-splits", str(n)],
        constants={"N_TASKS": n},
        expect=f"total {n * (n - 1)}",
        repeats=repeats,
        warmup=warmup,
        budget=budget,
    )


def build_cases(quick: bool, estimate_1000: bool):
    """Return (cases to measure, {estimated case: (task counts to fit, target count)})."""
    hello = Case("hello", "hello", expect="done", repeats=3 if quick else 5, warmup=1)
    big = Case(
        "artifact-256MiB",
        "big_artifact",
        constants={"ARRAY_BYTES": ARRAY_BYTES},
        expect=f"bytes {ARRAY_BYTES}",
        repeats=1 if quick else 3,
        warmup=0 if quick else 1,
        budget=None if quick else 300,
    )
    estimates = {}
    if quick:
        cases = [hello, foreach_case(10, repeats=1, warmup=0), foreach_case(100, repeats=1, warmup=0)]
        estimates["foreach-1000"] = ([10, 100], 1000)
    else:
        cases = [hello, foreach_case(100, repeats=3, warmup=1, budget=240)]
        if estimate_1000:
            cases.insert(1, foreach_case(10, repeats=3, warmup=0))
            estimates["foreach-1000"] = ([10, 100], 1000)
        else:
            # warm-up skipped: foreach-100 has just warmed the same code paths, and one
            # Metaflow run of this case takes minutes.
            cases.append(foreach_case(1000, repeats=3, warmup=0, budget=120))
    cases.append(big)
    return cases, estimates


def cafstore_available(python: str) -> Optional[str]:
    """None if ``python`` can import cafstore's authoring API, else the reason it cannot."""
    with tempfile.TemporaryDirectory(prefix="cafbench-probe-") as scratch:
        proc = subprocess.run(
            [python, "-c", "from cafstore import FlowSpec, step, Parameter"],
            cwd=scratch,
            env=_cafstore_env(Path(scratch)),
            capture_output=True,
            text=True,
        )
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit {proc.returncode}"


def _loadavg() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _cafstore_env(scratch: Path) -> Dict[str, str]:
    env = isolated_env(scratch, "cafstore")
    if "PYTHONPATH" in os.environ:  # cafstore may be importable from a source checkout
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _metaflow_env(scratch: Path) -> Dict[str, str]:
    return isolated_env(scratch, "metaflow")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs, no warm-ups past hello; foreach-1000 extrapolated"
    )
    parser.add_argument(
        "--estimate-1000",
        action="store_true",
        help="extrapolate foreach-1000 from 10 and 100 tasks instead of running it",
    )
    parser.add_argument("--tools", default="cafstore,metaflow", help="comma-separated tools to run (default: both)")
    parser.add_argument("--only", default=None, help="comma-separated case names to run (default: all)")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds before one run counts as failed (default 1800)"
    )
    parser.add_argument(
        "--no-check", action="store_true", help="do not check each run's output for the flow's final line"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    pythons: Dict[str, Optional[str]] = {}
    versions: Dict[str, str] = {}
    if "cafstore" in tools:
        reason = cafstore_available(sys.executable)
        if reason:
            print(f"cafstore unavailable: {reason}, skipped")
            pythons["cafstore"] = None
        else:
            pythons["cafstore"] = sys.executable
            versions["cafstore"] = subprocess.run(
                [sys.executable, "-c", "import cafstore; print(cafstore.__version__)"], capture_output=True, text=True
            ).stdout.strip()
    if "metaflow" in tools:
        mf = ensure_metaflow(log=say)
        if mf.available:
            pythons["metaflow"] = mf.python
            versions["metaflow"] = mf.version or "?"
        else:
            print(f"Metaflow unavailable: {mf.reason}, skipped")
            pythons["metaflow"] = None
    env_for = {"cafstore": _cafstore_env, "metaflow": _metaflow_env}

    cases, estimates = build_cases(args.quick, args.estimate_1000)
    if args.only:
        wanted = {c.strip() for c in args.only.split(",")}
        # keep the measured cases an estimate needs
        for name, (counts, _) in list(estimates.items()):
            if name in wanted:
                wanted.update(f"foreach-{n}" for n in counts)
            else:
                del estimates[name]
        cases = [c for c in cases if c.name in wanted]

    print(
        f"machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; " + ", ".join(f"{t} {v}" for t, v in versions.items())
    )
    load_before = _loadavg()
    if load_before is not None and load_before > 0.5:
        print(
            f"warning: load average {load_before:.2f} before starting: other processes "
            f"compete for the {os.cpu_count()} cores and inflate every timing"
        )

    results: Dict[str, Dict[str, Optional[Timing]]] = {}
    with tempfile.TemporaryDirectory(prefix="cafbench-flows-") as flows_dir:
        for case in cases:
            files = write_flow_pair(case.template, Path(flows_dir) / case.name, case.constants)
            results[case.name] = {}
            for tool in ("cafstore", "metaflow"):
                python = pythons.get(tool)
                if python is None:
                    results[case.name][tool] = None
                    continue
                say(f"[{case.name}] {tool}:")
                flow = files[tool]
                timing = time_command(
                    [python, flow.name, "run", *case.args],
                    env_for=env_for[tool],
                    cwd=flow.parent,
                    repeats=case.repeats,
                    warmup=case.warmup,
                    budget=case.budget,
                    timeout=args.timeout,
                    expect=None if args.no_check else case.expect,
                    progress=lambda m: say("    " + m),
                )
                say(f"    {timing.summary()}")
                results[case.name][tool] = timing

    for name, (counts, target) in estimates.items():
        results[name] = {}
        for tool in ("cafstore", "metaflow"):
            points = {n: results.get(f"foreach-{n}", {}).get(tool) for n in counts}
            if any(p is None for p in points.values()):
                results[name][tool] = None
                continue
            results[name][tool] = extrapolate(points, target)
            say(f"[{name}] {tool}: {results[name][tool].summary()}")

    order = [n for n in DISPLAY_ORDER if n in results]
    order += [n for n in results if n not in order]
    rows = [(name, results[name].get("cafstore"), results[name].get("metaflow")) for name in order]
    print()
    print_table(rows)
    print()
    print("CPU seconds (user + system of the whole process tree; less sensitive to other load):")
    print_table(rows, cpu=True)
    load_after = _loadavg()
    if load_before is not None and load_after is not None:
        print(
            f"(1-minute load average: {load_before:.2f} before, {load_after:.2f} after; "
            f"this run's own processes count too)"
        )
    print()
    for name, tool_timings in results.items():
        for tool, t in tool_timings.items():
            if t is not None and not t.ok:
                print(f"{name} / {tool} failed: {t.error}")
    for name, wanted in TARGETS.items():
        if name not in results:
            continue
        caf, mf = results[name].get("cafstore"), results[name].get("metaflow")
        r = ratio(caf, mf)
        if r is None:
            print(f"target {name}: >= {wanted:.0f}x faster than Metaflow (not measured)")
        else:
            verdict = "met" if r >= wanted else "NOT met"
            r_cpu = ratio(caf, mf, cpu=True)
            cpu = "" if r_cpu is None else f" (CPU time: {r_cpu:.1f}x)"
            print(f"target {name}: >= {wanted:.0f}x faster than Metaflow: {r:.1f}x, {verdict}{cpu}")
    for name in estimates:
        for tool, t in results[name].items():
            if t is not None and t.ok:
                print(f"{name} / {tool} is an estimate: {t.note}")

    if args.json:
        payload = {
            "versions": versions,
            "cases": {
                name: {
                    tool: (
                        None
                        if t is None
                        else {
                            "samples": t.samples,
                            "cpu_samples": t.cpu_samples,
                            "error": t.error,
                            "estimated": t.estimated,
                            "note": t.note,
                            "median": t.median if t.ok else None,
                        }
                    )
                    for tool, t in tool_timings.items()
                }
                for name, tool_timings in results.items()
            },
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))

    failed = any(t is not None and not t.ok for tt in results.values() for t in tt.values())
    return 1 if failed else 0


if __name__ == "__main__":
    # a plain `kill` still removes the scratch directories (finally blocks run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
