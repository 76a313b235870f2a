"""Per-task overhead on a quiet machine and with CPU-bound processes competing for the cores.

    python benchmarks/contention_bench.py [--tasks 300] [--competitors 4] [--rounds 3]

The issue's target: with four CPU-bound processes running, the per-task overhead of a
foreach at ``--max-workers 2`` stays within 2x of the quiet figure. Per-task overhead is
the marginal cost: (wall of a foreach of ``--tasks`` - wall of a foreach of 10) / the
difference in tasks, so the interpreter's start and the run's fixed costs drop out.

Each round times the two foreach sizes quiet, then again with ``--competitors`` busy
loops (``python -c "while True: pass"``) started just before and killed just after;
rounds alternate, so a change of the machine's own load affects both columns alike. The
competitors run at the same priority as the flow, as another user's jobs would.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import render_flow  # noqa: E402

SMALL = 10


def _flow_file(folder: Path, tasks: int) -> Path:
    source = (Path(__file__).resolve().parent / "flows" / "foreach.py").read_text()
    path = folder / f"foreach_{tasks}.py"
    path.write_text(render_flow(source, "cafstore", {"N_TASKS": tasks}))
    return path


def _wall(flow: Path, tasks: int, scratch: Path) -> float:
    env = dict(os.environ, CAFSTORE_HOME=str(scratch / f"store-{time.monotonic_ns()}"), CAFSTORE_PROGRESS="0")
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, str(flow), "run", "--max-workers", "2", "--max-num-splits", str(tasks)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def _per_task_ms(small: Path, large: Path, tasks: int, scratch: Path) -> float:
    return (_wall(large, tasks, scratch) - _wall(small, SMALL, scratch)) / (tasks - SMALL) * 1000


def _competitors(count: int) -> List[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def _stop(processes: List[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGKILL)
    for process in processes:
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--competitors", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, 1-minute load average at the start: {os.getloadavg()[0]:.1f}")
    quiet: List[float] = []
    busy: List[float] = []
    with tempfile.TemporaryDirectory(prefix="cafbench-contention-") as folder:
        scratch = Path(folder)
        small, large = _flow_file(scratch, SMALL), _flow_file(scratch, args.tasks)
        _wall(small, SMALL, scratch)  # warm the page cache and the interpreter's files
        for round_number in range(1, args.rounds + 1):
            quiet.append(_per_task_ms(small, large, args.tasks, scratch))
            hogs = _competitors(args.competitors)
            try:
                time.sleep(0.5)  # let the scheduler see them as running
                busy.append(_per_task_ms(small, large, args.tasks, scratch))
            finally:
                _stop(hogs)
            print(
                f"  round {round_number}: quiet {quiet[-1]:.2f} ms per task, "
                f"with {args.competitors} competing {busy[-1]:.2f} ms per task ({busy[-1] / quiet[-1]:.2f}x)"
            )
    q, b = statistics.median(quiet), statistics.median(busy)
    print(
        f"per-task overhead, foreach of {args.tasks} at --max-workers 2 (medians of {args.rounds}): "
        f"quiet {q:.2f} ms, with {args.competitors} CPU-bound competitors {b:.2f} ms: {b / q:.2f}x (target <= 2x)"
    )
    print(f"1-minute load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
