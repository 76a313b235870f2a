"""Naming the runs a corrupt object breaks, when the client reads one.

The store raises ``CorruptObject`` with the object's id only: it knows
nothing about runs. A user reading ``Run('F/3').data.x`` needs more: which
runs lost data, so they can re-run or remove them. The client adds that
here, on the error path only (it costs one pass over the runs' records).
"""

from __future__ import annotations

from typing import Any, NoReturn

from cafstore.exception import CafstoreError, CorruptObject
from cafstore.schema import runs_using


def raise_with_runs(store: Any, exc: CorruptObject) -> NoReturn:
    """Re-raise ``exc`` with the runs that use its object named (``exc`` as its cause)."""
    if exc.runs or not exc.oid:
        raise exc
    try:
        runs = list(runs_using(store, [exc.oid]))
    except CafstoreError:
        raise exc from None  # the lookup failing too must not hide the corruption itself
    if not runs:
        raise exc
    raise exc.with_runs(runs) from exc
