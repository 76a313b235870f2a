"""Run and task refs that do not fit the data model: skipped with a warning in listings, an error when named.

One damaged ref (bad JSON, a run ref describing another run, an unknown
status, a task ref that holds no record id: ``cafstore.schema.ref_problem``)
must not hide every other run or task. A listing (``Flow.runs()``,
``latest_run``, a step's tasks, ``cafstore log``/``ls``) skips it and warns
with a ``DamagedRefWarning`` naming the ref and what is wrong; asking for it
by name (``Run('F/2')``, ``Step[...]['3']``) raises ``DamagedRef`` with the
same facts. ``cafstore fsck --repair`` moves such refs aside (to
``damaged/<name>``, docs/maintenance.md), after which neither happens.
"""

from __future__ import annotations

import warnings
from typing import Any, Generator, Iterable, Iterator, Optional

from cafstore import schema
from cafstore.exception import DamagedRef, DamagedRefWarning

_ADVICE = "`cafstore fsck --repair` moves it aside (to damaged/), keeping its bytes."


def describe(name: str, problem: str) -> str:
    run = schema.run_of_ref(name)
    return f"The ref {name!r}" + (f" (run {run})" if run else "") + f" is damaged: {problem}."


def runs(store: Any, prefix: str, needles: Iterable[str] = (), below: Optional[str] = None) -> Iterator[tuple]:
    """(ref name, run metadata) under ``prefix``, newest first, that may carry every needle (a tag);
    with ``below``, only refs whose names sort before it (older runs), the newer ones left undecoded.

    The store skips refs without the needles undecoded (cheap ``latest_run`` in a
    namespace whose newest run is far back); callers check tags exactly. A
    damaged ref is skipped with a warning.
    """
    for name, raw in store.iter_raw_refs(prefix, reverse=True, containing=needles):
        if below is not None and name >= below:
            continue
        meta, problem = schema.read_ref(name, raw)
        if problem is not None:
            warnings.warn(DamagedRefWarning(f"{describe(name, problem)} Skipped; {_ADVICE}"), stacklevel=2)
            continue
        yield name, meta


def _checked_ref(store: Any, name: str) -> Any:
    """The value of the ref ``name`` (None if there is none); ``DamagedRef`` if it is damaged."""
    raw = store.get_raw_ref(name)
    if raw is None:
        return None
    value, problem = schema.read_ref(name, raw)
    if problem is not None:
        raise DamagedRef(f"{describe(name, problem)} {_ADVICE}", name)
    return value


def run_meta(store: Any, flow: str, run_id: int) -> Optional[dict]:
    """The run ref's value (None if there is none); ``DamagedRef`` if it is damaged."""
    return _checked_ref(store, schema.run_ref(flow, run_id))


def task_refs(store: Any, prefix: str, reverse: bool = False) -> Generator[tuple, None, None]:
    """(task ref name, record id) under ``prefix``; a damaged task ref is skipped with a warning."""
    for name, raw in store.iter_raw_refs(prefix, reverse=reverse):
        oid, problem = schema.read_ref(name, raw)
        if problem is not None:
            warnings.warn(DamagedRefWarning(f"{describe(name, problem)} Skipped; {_ADVICE}"), stacklevel=2)
            continue
        yield name, oid


def task_record_id(store: Any, name: str) -> Optional[Any]:
    """The record id a task ref holds (None if there is none); ``DamagedRef`` if it is damaged."""
    return _checked_ref(store, name)
