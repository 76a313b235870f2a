"""Timing helpers shared by the benchmarks that compare cafstore with Metaflow.

- ``time_command``: run a command as a whole process (``subprocess``, wall clock by
  ``time.perf_counter``) after warm-up runs, each run in a fresh scratch directory, and
  report median, min and max. It also records the CPU seconds (user + system) the
  process tree used, which other load on the machine inflates far less than wall time.
  Only descendants that were waited for are counted: a tool that leaves orphaned or
  daemonised processes behind shows less CPU than it used.
- ``extrapolate``: fit ``seconds = fixed + per_task * n`` through measured task counts and
  predict another count, for cases too slow to measure directly.
- ``print_table``: the ``case | cafstore s | metaflow s | ratio (metaflow/cafstore)`` table.
- ``write_flow_pair``: render one flow source twice, once importing ``cafstore`` and once
  importing ``metaflow``, optionally rewriting module-level constants.
"""

from __future__ import annotations

import os
import re

try:
    import resource
except ImportError:  # not on Windows
    resource = None
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

HERE = Path(__file__).resolve().parent
FLOWS_DIR = HERE / "flows"
TOOLS = ("cafstore", "metaflow")


# ---------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Wall-clock seconds of the timed runs of one command (warm-ups excluded)."""

    samples: List[float] = field(default_factory=list)
    cpu_samples: List[float] = field(default_factory=list)  # user+sys seconds, same runs
    error: Optional[str] = None  # set when a run failed or timed out
    estimated: bool = False  # True when the figure is an extrapolation
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_median(self) -> Optional[float]:
        return statistics.median(self.cpu_samples) if self.cpu_samples else None

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def summary(self) -> str:
        if not self.ok:
            return f"FAILED: {self.error}"
        if self.estimated:
            return f"~{self.median:.2f}s (estimated{': ' + self.note if self.note else ''})"
        cpu = "" if self.cpu_median is None else f"  cpu {self.cpu_median:.3f}s"
        return f"median {self.median:.3f}s  min {self.min:.3f}s  max {self.max:.3f}s{cpu}  (n={len(self.samples)})"


def _tail(path: Path, lines: int = 4) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "no output"
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " / ".join(kept[-lines:]) if kept else "no output"


def run_once(
    cmd: Sequence[str],
    *,
    env_for: Callable[[Path], Mapping[str, str]],
    cwd: Path,
    timeout: Optional[float] = None,
    expect: Optional[str] = None,
    keep_scratch: bool = False,
):
    """Run ``cmd`` once in a fresh scratch directory; return ``(seconds, error, cpu)``.

    ``cpu`` is the user + system CPU seconds of the process and the descendants it waited
    for (None where the ``resource`` module is missing).

    ``env_for(scratch)`` builds the process environment (see
    ``_metaflow_env.isolated_env``). Output goes to a log file in the scratch directory,
    so a chatty tool pays for writing it but no pipe can fill up. A non-zero exit, a
    timeout, or ``expect`` missing from the output is an error; its message ends with the
    last lines of the log.
    """
    scratch = Path(tempfile.mkdtemp(prefix="cafbench-"))
    try:
        env = dict(env_for(scratch))
        log = scratch / "output.log"
        with open(log, "wb") as out:
            cpu_before = _children_cpu()
            start = time.perf_counter()
            try:
                proc = subprocess.run(
                    list(cmd),
                    cwd=str(cwd),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                return time.perf_counter() - start, f"timed out after {timeout:.0f}s", None
            elapsed = time.perf_counter() - start
            cpu_after = _children_cpu()
        cpu = None if cpu_before is None else cpu_after - cpu_before
        if proc.returncode != 0:
            return elapsed, f"exit {proc.returncode}: {_tail(log)}", cpu
        if expect is not None and expect not in log.read_text(errors="replace"):
            return elapsed, f"output lacks {expect!r}: {_tail(log)}", cpu
        return elapsed, None, cpu
    finally:
        if not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _children_cpu() -> Optional[float]:
    if resource is None:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(
    cmd: Sequence[str],
    *,
    env_for: Callable[[Path], Mapping[str, str]],
    cwd: Path,
    repeats: int = 3,
    warmup: int = 1,
    budget: Optional[float] = None,
    timeout: Optional[float] = None,
    expect: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> Timing:
    """Time ``cmd`` as a whole process ``repeats`` times after ``warmup`` untimed runs.

    Every run (warm-up included) gets its own fresh scratch directory, so nothing a run
    stores is seen by the next. ``budget`` (seconds) stops repeating early once the timed
    runs add up to more than it; at least one timed run always happens. The first failing
    run ends the measurement and is reported in ``Timing.error``.
    """
    timing = Timing()
    for i in range(warmup):
        seconds, error, cpu = run_once(cmd, env_for=env_for, cwd=cwd, timeout=timeout, expect=expect)
        if progress:
            progress(f"warm-up {i + 1}/{warmup}: {seconds:.2f}s{_cpu_text(cpu)}" + (f" ({error})" if error else ""))
        if error:
            timing.error = error
            return timing
    for i in range(max(1, repeats)):
        seconds, error, cpu = run_once(cmd, env_for=env_for, cwd=cwd, timeout=timeout, expect=expect)
        if progress:
            progress(f"run {i + 1}/{repeats}: {seconds:.2f}s{_cpu_text(cpu)}" + (f" ({error})" if error else ""))
        if error:
            timing.error = error
            return timing
        timing.samples.append(seconds)
        if cpu is not None:
            timing.cpu_samples.append(cpu)
        if budget is not None and sum(timing.samples) > budget:
            break
    return timing


def _cpu_text(cpu: Optional[float]) -> str:
    return "" if cpu is None else f" (cpu {cpu:.2f}s)"


def extrapolate(points: Mapping[int, Timing], target: int) -> Timing:
    """Predict the time for ``target`` tasks from timings at other task counts.

    Fits ``seconds = fixed + per_task * n`` by least squares through the medians (two or
    more counts needed). The result is marked ``estimated`` and its note gives the fit.
    """
    good = {n: t for n, t in points.items() if t.ok}
    bad = [t for t in points.values() if not t.ok]
    if bad:
        return Timing(error=bad[0].error)
    if len(good) < 2:
        return Timing(error="need timings at two or more task counts to extrapolate")
    xs = sorted(good)
    fixed, per_task = _fit(xs, [good[n].median for n in xs])
    counts = ",".join(str(n) for n in xs)
    result = Timing(
        samples=[fixed + per_task * target],
        estimated=True,
        note=f"{fixed:.2f}s + {per_task * 1000:.1f}ms/task, fit on n={counts}",
    )
    if all(good[n].cpu_median is not None for n in xs):
        cpu_fixed, cpu_per_task = _fit(xs, [good[n].cpu_median for n in xs])
        result.cpu_samples = [cpu_fixed + cpu_per_task * target]
    return result


def _fit(xs: Sequence[float], ys: Sequence[float]):
    """Least-squares ``(intercept, slope)`` of ``ys`` against ``xs``."""
    mean_x = sum(xs) / len(xs)
    mean_y = sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    return mean_y - slope * mean_x, slope


# ---------------------------------------------------------------------------- table


def _value(t: Optional[Timing], cpu: bool) -> Optional[float]:
    if t is None or not t.ok:
        return None
    return t.cpu_median if cpu else t.median


def _cell(t: Optional[Timing], cpu: bool = False) -> str:
    if t is None:
        return "skipped"
    if not t.ok:
        return "FAILED"
    value = _value(t, cpu)
    if value is None:
        return "-"
    return ("~" if t.estimated else "") + f"{value:.2f}"


def ratio(caf: Optional[Timing], mf: Optional[Timing], cpu: bool = False) -> Optional[float]:
    """metaflow / cafstore median (wall, or CPU with ``cpu``), None if either is missing."""
    a, b = _value(caf, cpu), _value(mf, cpu)
    if a is None or b is None or a <= 0:
        return None
    return b / a


def print_table(rows: Sequence[tuple], *, cpu: bool = False, out=None) -> None:
    """Print ``case | cafstore s | metaflow s | ratio (metaflow/cafstore)``.

    ``rows`` holds ``(case, cafstore Timing or None, metaflow Timing or None)``; None means
    the tool was skipped. A ``~`` marks an extrapolated figure. With ``cpu`` the figures
    are median CPU seconds instead of median wall seconds.
    """
    unit = "cpu s" if cpu else "s"
    header = ("case", f"cafstore {unit}", f"metaflow {unit}", "ratio (metaflow/cafstore)")
    body = []
    for case, caf, mf in rows:
        r = ratio(caf, mf, cpu)
        body.append((case, _cell(caf, cpu), _cell(mf, cpu), "-" if r is None else f"{r:.1f}x"))
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(4)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line, file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for row in body:
        print(" | ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]), file=out)


# ---------------------------------------------------------------------------- flow files

_IMPORT_RE = re.compile(r"^(\s*)from cafstore(\.\w+)* import ", re.MULTILINE)


def render_flow(source: str, tool: str, constants: Optional[Mapping[str, object]] = None) -> str:
    """Return ``source`` (a flow written for cafstore) adapted to ``tool``.

    For 'metaflow' every ``from cafstore import ...`` line becomes ``from metaflow import
    ...``. Each ``NAME = value`` line at module level whose NAME is in ``constants`` gets
    ``repr(value)`` instead.
    """
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}")
    if tool == "metaflow":
        source = _IMPORT_RE.sub(lambda m: f"{m.group(1)}from metaflow import ", source)
    for name, value in (constants or {}).items():
        pattern = re.compile(rf"^{re.escape(name)} = .*$", re.MULTILINE)
        source, count = pattern.subn(lambda m, line=f"{name} = {value!r}": line, source)
        if count != 1:
            raise ValueError(f"expected one module-level '{name} = ...' line, found {count}")
    return source


def write_flow_pair(
    template: "str | os.PathLike", dest: "str | os.PathLike", constants: Optional[Mapping[str, object]] = None
) -> Dict[str, Path]:
    """Write ``template`` as ``dest/<tool>/<name>.py`` for both tools; return the paths.

    ``template`` is a path, or a bare name looked up in ``benchmarks/flows/`` (``"hello"``
    means ``flows/hello.py``). Each tool gets its own directory so neither finds the
    other's files.
    """
    path = Path(template)
    if not path.suffix:
        path = FLOWS_DIR / f"{template}.py"
    source = path.read_text()
    written = {}
    for tool in TOOLS:
        folder = Path(dest) / tool
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        target.write_text(render_flow(source, tool, constants))
        written[tool] = target
    return written
