"""How many tasks a foreach split starts, and which values it refuses.

Metaflow splits over anything it can iterate: a list, a tuple, a range, a
string (one task per character), a set; each task then finds its item by
position (``values[i]``, or the i-th item of an iteration for values that
cannot be indexed). This module applies the same rule in the task that
splits, so the count is known before any child starts, and it refuses up
front, naming the step and the artifact, the values Metaflow would accept
and then fail on later, in every child or while storing the list:

- an iterator or generator: counting it consumes it, and it cannot be stored;
- a dict: Metaflow counts its keys but then looks items up as ``d[0]``,
  ``d[1]`` ..., which fails in every child (cafstore says so at the split).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Dict, TextIO

from cafstore.exception import ForeachError
from cafstore.progress import LINES, Progress


def count_splits(items: Any, var: str, step: str) -> int:
    """The number of tasks ``self.next(..., foreach=var)`` in ``step`` starts over ``items``.

    Raises :class:`ForeachError` (naming ``step`` and ``self.<var>``) for a value
    that is not iterable, one that can be iterated only once, a mapping, or an
    empty one.
    """
    where = f"self.next(..., foreach={var!r}) in step {step!r}"
    kind = f"{type(items).__module__}.{type(items).__qualname__}".replace("builtins.", "")
    if isinstance(items, Mapping):
        raise ForeachError(
            f"{where}: self.{var} is a mapping ({kind}). A foreach needs values it can number 0, 1, 2 ...; "
            f"split over its keys or items instead, e.g. self.{var} = list(d.items())."
        )
    if isinstance(items, Iterator):
        raise ForeachError(
            f"{where}: self.{var} is an iterator ({kind}) that can be read only once and cannot be "
            f"stored, so the split's tasks could not find their items. Make it a list: self.{var} = list(...)."
        )
    try:
        count = len(items) if hasattr(items, "__len__") else sum(1 for _ in items)
    except TypeError as exc:
        raise ForeachError(
            f"{where}: self.{var} ({kind}) is not iterable ({exc}). A foreach runs one task "
            f"per item of a list, tuple, range, string or other iterable."
        ) from exc
    if count == 0:
        raise ForeachError(f"{where}: self.{var} is empty, so there would be no task to run and nothing to join.")
    return count


class FanOutProgress:
    """Each foreach's tasks done/total, with rate and ETA, on the run's terminal (nothing elsewhere).

    A line every few seconds rather than a line redrawn in place: the tasks print their own log lines to
    the same terminal, and would cut a redrawn one. Steps inside the same foreach fan out again per item,
    so a step's total grows with each split that targets it.
    """

    def __init__(self, out: TextIO, run_pathspec: str) -> None:
        self.out, self.run_pathspec = out, run_pathspec
        self.bars: Dict[str, Progress] = {}

    def split(self, step: str, count: int) -> None:
        bar = self.bars.get(step)
        if bar is None:
            label = f"[{self.run_pathspec}/{step}] foreach tasks done"
            bar = self.bars[step] = Progress(label, 0, mode=LINES, interval=2.0, delay=2.0, stream=self.out)
        bar.update(bar.done, (bar.total or 0) + count)

    def task_ended(self, step: str) -> None:
        bar = self.bars.get(step)
        if bar is not None:
            bar.advance()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
