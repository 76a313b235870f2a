"""Memoised steps: reuse a task whose code and inputs were seen before.

With ``run --cache`` (every step) or ``@cache`` (one step), a task's *key*
is the hash of what determines its result: the step's source code, the
artifact ids of its inputs (parameters included, since they are artifacts of
every task) and its foreach position. A successful task stores its record
under ``cache/<key>``; a later task with the same key reuses that record
instead of running — provided every object the record references still
exists (``gc`` may have swept some), otherwise it runs.

Caveats (docs/runner.md): a step with side effects (writing files, calling
services) or randomness without a fixed seed is *not* repeated on a hit;
steps that read files or the network by path see the same key even if the
file changed. Leave such steps uncached, or pass what they read as
parameters or IncludeFile.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Dict, Iterable, List, Optional, Tuple

from cafstore.store import ObjectId, hash_bytes
from cafstore.store.records import referenced_ids

CACHE_PREFIX = "cache/"


def step_code_hash(flow_cls: type, step: str) -> str:
    """Hash of the step function's own source: editing any other step keeps this step's hits."""
    function = inspect.unwrap(getattr(flow_cls, step))
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = function.__code__.co_code.hex()
    return str(hash_bytes(source.encode("utf-8")))


def cache_key(flow: str, step: str, code_hash: str, parent_records: List[dict],
              foreach_stack: Iterable[dict], params: Dict[str, str]) -> str:
    """The key of a task: same key, same inputs and code, so (barring side effects) same result.

    Parameters are named explicitly: ``start`` has no parent records, yet its
    result depends on them.
    """
    description = {
        "flow": flow,
        "step": step,
        "code": code_hash,
        "params": sorted((name, str(oid)) for name, oid in params.items()),
        "inputs": [sorted((name, str(oid)) for name, oid in (r.get("artifacts") or {}).items())
                   for r in parent_records],
        "foreach": [(f["step"], int(f["index"]), str(f.get("values", ""))) for f in foreach_stack],
    }
    return str(hash_bytes(json.dumps(description, sort_keys=True).encode("utf-8")))


def lookup(store: Any, key: str) -> Optional[Tuple[ObjectId, dict]]:
    """The cached record for ``key`` if it and everything it references are still in the store."""
    record_id = store.get_ref(CACHE_PREFIX + key)
    if record_id is None or not store.exists(record_id):
        return None
    record = store.get_record(record_id)
    if record.get("status") != "ok":
        return None
    if not all(store.exists(oid) for oid in referenced_ids(record)):
        return None  # swept by gc: recompute rather than hand out a task with missing data
    return ObjectId(record_id), record


def remember(store: Any, entries: Dict[str, str]) -> None:
    """Point ``cache/<key>`` at successful task records, all in one transaction."""
    if not entries:
        return
    with store.transaction() as txn:
        for key, record_id in entries.items():
            txn.set_ref(CACHE_PREFIX + key, ObjectId(record_id))
