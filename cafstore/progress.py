"""Progress on a terminal, and nowhere else: the one helper every long job reports through.

``with progress("checking objects", total=n) as bar: ... bar.advance()``
draws ``checking objects: 120/500 (24%) 310/s ETA 1s`` on stderr when stderr
is a terminal, and does nothing at all otherwise (CI logs, pipes, files
stay clean). With the ``ui`` extra installed it draws a rich progress bar;
without it a plain one-line renderer does, so the core install shows
progress too.

Two ways to draw, because not every job owns its terminal:

- ``inline`` (the default): one line redrawn in place, for a job that
  prints nothing else meanwhile (gc, fsck, dedup, a big artifact);
- ``lines``: a full line every ``interval`` seconds, for a job whose output
  is shared with other writers (a run, where every task prints its own log
  lines: a line redrawn in place would be cut by theirs).

``delay`` hides a bar until the job has lasted that long, so quick jobs
print nothing (storing an artifact shows progress only past ~1 s).
:func:`callback` adapts a bar to code that reports ``(done, total)``, such
as a transfer loop.

Importable from every layer (store, maintenance, runner, cli): it depends
on nothing of cafstore's.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any, Callable, Optional, TextIO

INLINE, LINES = "inline", "lines"


def _is_terminal(stream: Any) -> bool:
    if os.environ.get("CAFSTORE_PROGRESS", "") == "0":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


def rate_text(done: float, seconds: float, unit: str) -> str:
    if seconds <= 0 or done <= 0:
        return ""
    rate = done / seconds
    if unit == "B":
        for name in ("B", "KiB", "MiB", "GiB"):
            if rate < 1024 or name == "GiB":
                return f"{rate:.1f} {name}/s"
            rate /= 1024
    return f"{rate:.1f}/s" if rate < 100 else f"{rate:.0f}/s"


def eta_text(done: float, total: Optional[float], seconds: float) -> str:
    if not total or done <= 0 or done >= total or seconds <= 0:
        return ""
    left = (total - done) * seconds / done
    if left < 60:
        return f"ETA {left:.0f}s"
    minutes, secs = divmod(int(left), 60)
    return f"ETA {minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"ETA {minutes}m{secs:02d}s"


def _amount(value: float, unit: str) -> str:
    if unit != "B":
        return f"{value:g}"
    for name in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or name == "GiB":
            return f"{value:.0f} {name}" if name == "B" else f"{value:.1f} {name}"
        value /= 1024
    return str(value)


class Progress:
    """One job's progress. A no-op unless its stream is a terminal; safe to use either way."""

    def __init__(
        self,
        label: str,
        total: Optional[float] = None,
        *,
        unit: str = "",
        mode: str = INLINE,
        interval: float = 0.1,
        delay: float = 0.5,
        stream: Optional[TextIO] = None,
        enabled: bool = True,
        use_rich: Optional[bool] = None,
    ) -> None:
        self.label, self.total, self.unit, self.mode = label, total, unit, mode
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and _is_terminal(self.stream)
        self.interval = interval if mode == INLINE else max(interval, 1.0)
        self.delay = delay
        self.done: float = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._rich: Any = None
        if use_rich is None:
            use_rich = mode == INLINE and importlib.util.find_spec("rich") is not None
        self._want_rich = self.enabled and use_rich

    # -- reporting -----------------------------------------------------------
    def advance(self, n: float = 1) -> None:
        self.update(self.done + n)

    def update(self, done: float, total: Optional[float] = None) -> None:
        """Set how much is done (and, when it becomes known or changes, the total)."""
        self.done = done
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < self.delay or now - self._last < self.interval or self.total == 0:
            return
        self._last = now
        self._draw(final=False)

    def text(self) -> str:
        """The line as drawn: ``label: done/total (pct) rate ETA``."""
        seconds = time.monotonic() - self.started
        amount = _amount(self.done, self.unit)
        if self.total:
            amount += f"/{_amount(self.total, self.unit)} ({100 * self.done / self.total:.0f}%)"
        extras = " ".join(
            x for x in (rate_text(self.done, seconds, self.unit), eta_text(self.done, self.total, seconds)) if x
        )
        return f"{self.label}: {amount}" + (f" {extras}" if extras else "")

    def _draw(self, final: bool) -> None:
        if self._want_rich:
            self._draw_rich(final)
            return
        if self.mode == LINES:
            self.stream.write(self.text() + "\n")
        else:
            self.stream.write("\r\x1b[K" + self.text() + ("\n" if final else ""))
        self.stream.flush()
        self._drawn = not final

    def _draw_rich(self, final: bool) -> None:
        if self._rich is None:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True) if self.unit == "B" else MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.label, total=self.total, rate="")
        seconds = time.monotonic() - self.started
        self._rich.update(
            self._task, completed=self.done, total=self.total, rate=rate_text(self.done, seconds, self.unit)
        )
        if final:
            self._rich.stop()
            self._rich = None
        self._drawn = not final

    def close(self) -> None:
        """Draw the last state (only if something was drawn: a quick job stays silent)."""
        if self.enabled and (self._drawn or self._rich is not None):
            self._draw(final=True)
        self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(label: str, total: Optional[float] = None, **options: Any) -> Progress:
    """A :class:`Progress` (a context manager): ``with progress("gc: sweeping", n) as bar: bar.advance()``."""
    return Progress(label, total, **options)


def callback(bar: Progress) -> Callable[[float, Optional[float]], None]:
    """``report(done, total)`` for code that reports absolute progress (a transfer, a remote's push)."""

    def report(done: float, total: Optional[float] = None) -> None:
        bar.update(done, total)

    return report


# One object moving: a bar only past this size, so the small-object hot path never builds one.
OBJECT_MIN_BYTES = 64 << 20
OBJECT_DELAY = 1.0


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


# Read once: a lookup in os.environ costs ~1 us when the name is absent (a raised KeyError), as much
# as 0.5% of a small put.
_OBJECT_MIN_BYTES = _env_number("CAFSTORE_PROGRESS_MIN_BYTES", OBJECT_MIN_BYTES)
_OBJECT_DELAY = _env_number("CAFSTORE_PROGRESS_DELAY", OBJECT_DELAY)


def for_object(label: str, size: int) -> Optional[Progress]:
    """A bytes bar for moving one object of ``size`` bytes (an upload, a download), or None when stderr
    is not a terminal or the object is smaller than ``OBJECT_MIN_BYTES``: only a big object can take
    more than about a second, and a small one should not pay even for an idle bar. Shown after
    ``OBJECT_DELAY`` seconds.

    ``CAFSTORE_PROGRESS_MIN_BYTES`` and ``CAFSTORE_PROGRESS_DELAY``, read when cafstore is imported,
    override both (for a slow link worth watching at smaller sizes, and for tests that cannot move
    gigabytes).
    """
    if size < _OBJECT_MIN_BYTES or not _is_terminal(sys.stderr):
        return None
    return Progress(label, size, unit="B", delay=_OBJECT_DELAY)
