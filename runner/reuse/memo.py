"""Memoised steps: reuse a task whose code and inputs were seen before.

With ``run --cache`` (every step) or ``@cache`` (one step), a task's *key*
is the hash of what determines its result: the step's source code, the
artifact ids of its inputs (parameters included, since they are artifacts of
every task) and its foreach position. A successful task stores its record
under ``cache/<key>``; a later task with the same key reuses that record
instead of running — provided every object the record references still
exists, otherwise it runs. The ``cache/`` refs are weak: gc does not keep
what they point at, so caching never stops ``rm`` + ``gc`` from reclaiming a
run's space.

Caveats (docs/resume.md): a step with side effects (writing files, calling
services) or randomness without a fixed seed is *not* repeated on a hit;
steps that read files or the network by path see the same key even if the
file changed. Leave such steps uncached, or pass what they read as
parameters or IncludeFile.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Dict, Iterable, List, Optional, Tuple

from cafstore import schema
from cafstore.exception import CafstoreError
from cafstore.store import ObjectId, hash_bytes
from cafstore.store.records import referenced_ids


def step_code_hash(flow_cls: type, step: str) -> str:
    """Hash of the step function's own source: editing any other step keeps this step's hits."""
    function = inspect.unwrap(getattr(flow_cls, step))
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = function.__code__.co_code.hex()
    return str(hash_bytes(source.encode("utf-8")))


def cache_key(
    flow: str,
    step: str,
    code_hash: str,
    parent_records: List[dict],
    foreach_stack: Iterable[dict],
    params: Optional[Dict[str, str]] = None,
    parent_steps: Iterable[str] = (),
) -> str:
    """The key of a task: same key, same inputs and code, so (barring side effects) same result.

    ``params`` (parameter artifact ids by attribute) matter for ``start``, which has no parent
    records to carry them; ``parent_steps`` for a join, whose ``inputs.<step>`` names them.
    """
    description = {
        "flow": flow,
        "step": step,
        "code": code_hash,
        "params": sorted((name, str(oid)) for name, oid in (params or {}).items()),
        "inputs": [
            sorted((name, str(oid)) for name, oid in (r.get("artifacts") or {}).items()) for r in parent_records
        ],
        "input_steps": list(parent_steps),
        "foreach": [(f["step"], int(f["index"]), str(f.get("values", ""))) for f in foreach_stack],
    }
    return str(hash_bytes(json.dumps(description, sort_keys=True).encode("utf-8")))


def lookup(store: Any, key: str) -> Optional[Tuple[ObjectId, dict]]:
    """The cached record for ``key`` if it and everything it references are still in the store.

    ``cache/`` refs are weak (the record id is kept as text, which gc does not follow), so gc may
    have swept the record or what it references: then this is a miss and the task runs. A hit
    freshens the record and everything it reaches (store/freshen.py), so that a gc running now
    keeps them until the new run's task ref points at the record.
    """
    value = store.get_ref(schema.cache_ref(key))
    if value is None:
        return None
    try:
        record_id = ObjectId(value)
    except (CafstoreError, TypeError, ValueError):
        return None
    if not store.reuse(record_id):
        return None
    record = store.get_record(record_id)
    if record.get("status") != "ok":
        return None
    if not all(store.exists(oid) for oid in referenced_ids(record)):
        return None  # partly swept: recompute rather than hand out a task with missing data
    return record_id, record


def remember(store: Any, entries: Dict[str, str]) -> None:
    """Point ``cache/<key>`` at successful task records, all in one transaction.

    The value is the record id as hex text, not an ObjectId: a weak reference that keeps nothing
    alive, so ``cafstore rm`` + ``gc`` still reclaim a cached run (lookup checks what is left).
    """
    if not entries:
        return
    with store.transaction() as txn:
        for key, record_id in entries.items():
            txn.set_ref(schema.cache_ref(key), str(ObjectId(record_id)))
