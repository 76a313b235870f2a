"""Per-task overhead on a quiet machine and with CPU-bound processes competing for the cores.

    python benchmarks/contention_bench.py [--tasks 300] [--competitors 4] [--rounds 3]

The issue's target: with four CPU-bound processes running, the per-task overhead of a
foreach at ``--max-workers 2`` stays within 2x of the quiet figure. Per-task overhead is
the marginal cost: (wall of a foreach of ``--tasks`` - wall of a foreach of 10) / the
difference in tasks, so the interpreter's start and the run's fixed costs drop out.

Each round times the two foreach sizes quiet, then twice with ``--competitors`` busy
loops (``python -c "while True: pass"``, same priority as the flow) started just before
and killed just after:

- **other session**: the competitors in a session of their own, as another user's jobs
  or another terminal's are. Linux (with ``sched_autogroup``, the default on desktop and
  most server kernels) then shares the cores between the sessions first;
- **same session**: the competitors in the flow's own session, like background jobs of
  the shell that started the flow. Each process then gets an equal share, so a flow whose
  two tasks and scheduler compete with four loops on two cores can get at most about a
  third of the machine: about 2.4x its quiet time before any cost of switching.

Rounds alternate, so a change of the machine's own load affects every column alike.
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
from typing import Dict, List

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


def _competitors(count: int, own_session: bool) -> List[subprocess.Popen]:
    if not own_session:
        return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    # One new session holding all of them, as one other terminal running four jobs would.
    loops = "import os\nfor _ in range(%d - 1):\n    if os.fork() == 0: break\nwhile True: pass" % count
    return [subprocess.Popen([sys.executable, "-c", loops], start_new_session=True)]


def _stop(processes: List[subprocess.Popen]) -> None:
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # a session leader: its forked loops too
        except (ProcessLookupError, PermissionError):
            pass
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
    busy: Dict[str, List[float]] = {"other session": [], "same session": []}
    with tempfile.TemporaryDirectory(prefix="cafbench-contention-") as folder:
        scratch = Path(folder)
        small, large = _flow_file(scratch, SMALL), _flow_file(scratch, args.tasks)
        _wall(small, SMALL, scratch)  # warm the page cache and the interpreter's files
        for round_number in range(1, args.rounds + 1):
            quiet.append(_per_task_ms(small, large, args.tasks, scratch))
            line = f"  round {round_number}: quiet {quiet[-1]:.2f} ms per task"
            for mode, samples in busy.items():
                hogs = _competitors(args.competitors, own_session=mode == "other session")
                try:
                    time.sleep(0.5)  # let the kernel see them running
                    samples.append(_per_task_ms(small, large, args.tasks, scratch))
                finally:
                    _stop(hogs)
                line += f"; {mode} {samples[-1]:.2f} ms ({samples[-1] / quiet[-1]:.2f}x)"
            print(line)
    q = statistics.median(quiet)
    print(f"per-task overhead, foreach of {args.tasks} at --max-workers 2, medians of {args.rounds}:")
    print(f"  quiet: {q:.2f} ms")
    for mode, samples in busy.items():
        b = statistics.median(samples)
        print(f"  {args.competitors} CPU-bound competitors, {mode}: {b:.2f} ms = {b / q:.2f}x quiet (target <= 2x)")
    print(f"1-minute load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
