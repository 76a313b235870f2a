"""Which refs reach which objects: the question a damaged object raises.

When an object is corrupt or gone, the user needs to know what it breaks.
This walks refs -> records -> artifacts and chunk lists (the edges gc marks
along, ``freshen.children``), each object once, and reports for every ref
the damaged objects it reaches. It knows refs and objects only; what a ref
name means (which run it belongs to) is for the layers above
(``cafstore.schema.runs_using``).
"""

from __future__ import annotations

from typing import Any, Iterable

from cafstore.exception import CafstoreError
from cafstore.store import freshen, records
from cafstore.store.objectid import ObjectId


def refs_reaching(store: Any, prefixes: Iterable[str], oids: Iterable = (), include_missing: bool = False) -> dict:
    """{ref name: {object ids}} for every ref under ``prefixes`` whose value reaches one of ``oids``.

    With ``include_missing``, any object that is referenced but not indexed
    counts as a target too. One memo of what each object reaches, so the cost
    is one pass over the objects the refs reach, however many refs share them.
    """
    targets = {ObjectId(o).digest for o in oids}
    index = store.index
    memo: dict = {}
    out: dict = {}
    with index.read() as txn:

        def reach(root: bytes) -> frozenset:
            stack = [(root, False)]
            while stack:
                digest, expanded = stack.pop()
                if digest in memo:
                    continue
                meta = index.object_meta(txn, digest)
                if meta is None:
                    memo[digest] = frozenset([digest]) if include_missing or digest in targets else frozenset()
                    continue
                try:
                    kids = [c.digest for c in freshen.children(index, txn, ObjectId(digest), meta)]
                except (CafstoreError, ValueError):
                    kids = []
                if not expanded:
                    stack.append((digest, True))
                    stack.extend((k, False) for k in kids if k not in memo)
                    continue
                found = {digest} & targets
                for kid in kids:
                    found |= memo.get(kid, frozenset())
                memo[digest] = frozenset(found)
            return memo[root]

        for prefix in prefixes:
            for name, raw in store.iter_raw_refs(prefix):
                try:
                    value = records.decode(raw)
                except (CafstoreError, ValueError):  # a damaged ref: fsck reports it, this answer goes on
                    continue
                hits: set = set()
                for oid in records.referenced_ids(value):
                    hits |= reach(oid.digest)
                if hits:
                    out[name] = {ObjectId(d) for d in hits}
    return out
