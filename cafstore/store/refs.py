"""Refs, the store's only mutable state: names, range scans, and ``Transaction``.

A ref is a key of the LMDB ``refs`` table (1 to 500 bytes of UTF-8) whose
value uses the record encoding. ``Transaction`` groups ref, counter and
record changes so that readers in other processes see all or none of them;
``RefVerbs`` is the ref half of ``Store``'s API (get/set/list/iterate refs,
counters); ``range_scan`` walks any table by key prefix, surviving a remap
of the environment while it is suspended.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterable, Iterator, Optional, TypeVar

import lmdb

from cafstore.exception import RefConflict, StoreError
from cafstore.store import records, serialize
from cafstore.store.index import ENCODING_ARTIFACT, ENCODING_RAW, ENCODING_RECORD
from cafstore.store.objectid import ObjectId

if TYPE_CHECKING:
    from cafstore.store.index import Index

T = TypeVar("T")

MISSING: Any = object()  # ``expected=`` default of set_ref: no compare-and-swap
MAX_REF_BYTES = 500


def ref_key(name: str) -> bytes:
    """The LMDB key of ref ``name``, with a message users can act on if it cannot be one."""
    try:
        key = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreError(f"Ref name {name[:80]!r} is not valid Unicode text ({exc.reason}).") from exc
    if not key or len(key) > MAX_REF_BYTES:
        raise StoreError(f"Ref name {name[:80]!r} must be 1 to {MAX_REF_BYTES} bytes of UTF-8.")
    return key


def prefix_key(prefix: str) -> bytes:
    """The key prefix of a ref-name prefix (any length, including empty)."""
    try:
        return prefix.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreError(f"Ref prefix {prefix[:80]!r} is not valid Unicode text ({exc.reason}).") from exc


class Transaction:
    """A group of ref, counter and record changes committed atomically.

    Obtained from ``Store.transaction()`` or ``Store.atomically(body)``;
    readers in other processes see either none or all of its changes.
    """

    def __init__(self, store: "RefVerbs", txn: Any) -> None:
        self._store = store
        self._txn = txn
        self._refs = store.index.tables["refs"]

    @property
    def lmdb_txn(self) -> Any:
        """The LMDB write transaction underneath, for store modules that index objects in it
        (``detached.adopt``): whatever they write commits or aborts with the refs."""
        return self._txn

    def get_ref(self, name: str, default: Any = None) -> Any:
        raw = self._txn.get(ref_key(name), db=self._refs)
        return default if raw is None else records.decode(raw)

    def set_ref(self, name: str, value: Any, expected: Any = MISSING) -> None:
        """Point ``name`` at ``value``; with ``expected``, only if it still holds that (None: absent)."""
        key = ref_key(name)
        encoded = records.encode(value)
        if expected is not MISSING:
            raw = self._txn.get(key, db=self._refs)
            # Compared as canonical bytes: Python's 1 == 1.0 == True must not let a CAS
            # succeed against a different JSON value.
            if raw != (None if expected is None else records.encode(expected)):
                current = None if raw is None else records.decode(raw)
                raise RefConflict(
                    f"Ref {name!r} changed while it was being updated (expected {expected!r}, found "
                    f"{current!r}); re-read it and try again."
                )
        self._txn.put(key, encoded, db=self._refs)

    def delete_ref(self, name: str) -> bool:
        return self._txn.delete(ref_key(name), db=self._refs)

    def get_raw_ref(self, name: str) -> Optional[bytes]:
        """The ref's stored bytes, undecoded (None if absent)."""
        return self._txn.get(ref_key(name), db=self._refs)

    def has_object(self, oid: ObjectId) -> bool:
        """Whether ``oid`` is indexed, as of this transaction (a ref about to name it may)."""
        return self._store.index.object_meta(self._txn, ObjectId(oid).digest) is not None

    def list_refs(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        start = prefix_key(prefix)
        cursor = self._txn.cursor(db=self._refs)
        if not cursor.set_range(start):
            return
        for key, raw in cursor:
            if not key.startswith(start):
                break
            yield key.decode("utf-8"), records.decode(raw)

    def next_counter(self, name: str) -> int:
        """Increment and return a named counter (1 the first time): how run ids are allocated."""
        db = self._store.index.tables["counters"]
        key = ref_key(name)
        raw = self._txn.get(key, db=db)
        value = (int.from_bytes(raw, "little") if raw else 0) + 1
        self._txn.put(key, value.to_bytes(8, "little"), db=db)
        return value

    def put_record(self, record: dict) -> ObjectId:
        return self._store.put_inline(self._txn, records.encode_record(record), ENCODING_RECORD)

    def put_bytes(self, data: bytes) -> ObjectId:
        return self._store.put_encoded(self._txn, [data], len(data), ENCODING_RAW)

    def put_artifact(self, value: Any, name: str = "") -> ObjectId:
        return self.put_serialized(serialize.dumps(value, name))

    def put_serialized(self, blob: "serialize.Serialized") -> ObjectId:
        """A serialised value, inside this transaction if small (large ones are files written first)."""
        return self._store.put_encoded(self._txn, blob.pieces, blob.size, ENCODING_ARTIFACT)


class RefVerbs:
    """The ref half of ``Store``'s API (``Store`` inherits it; ``self.index`` is the store's index).

    Every change goes through a ``Transaction``; the one-ref verbs run theirs
    through ``atomically`` so a write that must grow the index is replayed.
    """

    if TYPE_CHECKING:  # what the host class (``Store``) provides, as this mixin and ``Transaction`` use it

        @property
        def index(self) -> Index: ...

        def put_inline(self, txn: Any, data: bytes, encoding: int) -> ObjectId: ...

        def put_encoded(self, txn: Any, pieces: list, size: int, encoding: int) -> ObjectId: ...

    def transaction(self) -> ContextManager[Transaction]:
        """``with store.transaction() as txn:`` groups ref/counter/record changes atomically."""

        @contextlib.contextmanager
        def scope() -> Iterator[Transaction]:
            with self.index.write() as txn:
                yield Transaction(self, txn)

        return scope()

    def atomically(self, body: Callable[[Transaction], T]) -> T:
        """``body(txn)`` in one write transaction, replayed if the index had to grow; its result.

        Unlike ``transaction()``, the body may run more than once, so it must
        only read and write through ``txn`` (a read-modify-write of refs).
        """
        return self.index.retrying(lambda t: body(Transaction(self, t)))

    def get_ref(self, name: str, default: Any = None) -> Any:
        raw = self.get_raw_ref(name)
        return default if raw is None else records.decode(raw)

    def get_raw_ref(self, name: str) -> Optional[bytes]:
        """The ref's stored bytes, undecoded (None if absent): for readers that judge a damaged value."""
        index = self.index
        with index.read() as txn:
            return txn.get(ref_key(name), db=index.tables["refs"])

    def set_ref(self, name: str, value: Any, expected: Any = MISSING) -> None:
        self.atomically(lambda t: t.set_ref(name, value, expected))

    def delete_ref(self, name: str) -> bool:
        return self.atomically(lambda t: t.delete_ref(name))

    def list_refs(self, prefix: str = "") -> list[tuple[str, Any]]:
        """Refs whose names start with ``prefix``, sorted by name (an LMDB range scan)."""
        with self.index.read() as txn:
            return list(Transaction(self, txn).list_refs(prefix))

    def iter_refs(
        self, prefix: str = "", reverse: bool = False, containing: Iterable[str] = ()
    ) -> Iterator[tuple[str, Any]]:
        """Refs under ``prefix`` lazily, optionally newest-name-first, within one read snapshot.

        ``latest_run`` is a reverse scan that stops at the first match, so it
        costs the same with ten runs or ten thousand. ``containing``: only refs
        whose value holds each of these strings as a JSON string (a tag, a
        user); the test is a byte search on the encoded value, so refs that
        cannot match are skipped without being decoded (~2 us each instead of
        ~50). Callers still check matches exactly.
        """
        for name, raw in self.iter_raw_refs(prefix, reverse, containing):
            yield name, records.decode(raw)

    def iter_raw_refs(
        self, prefix: str = "", reverse: bool = False, containing: Iterable[str] = ()
    ) -> Iterator[tuple[str, bytes]]:
        """``iter_refs`` with the values left undecoded: for a reader that must report a ref whose
        value does not decode and go on with the others, instead of stopping at it."""
        marks = [json.dumps(text, ensure_ascii=False).encode("utf-8") for text in containing]
        for key, raw in self.scan("refs", prefix_key(prefix), reverse):
            if all(mark in raw for mark in marks):
                yield key.decode("utf-8"), raw

    def scan(self, table: str, start: bytes, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Raw (key, value) entries of index table ``table`` whose keys start with ``start``, lazily.

        One read snapshot that survives a remap or fork while suspended (see
        ``refs.range_scan``). Values are undecoded, so maintenance can report a
        ref that does not decode instead of failing on it.
        """
        return range_scan(self, table, start, reverse)

    def next_counter(self, name: str) -> int:
        return self.atomically(lambda t: t.next_counter(name))

    def update_ref(self, name: str, change, default: Any = None) -> Any:
        """Read-modify-write of one ref in a single transaction: ``change(old) -> new``.

        Concurrent updaters serialise on LMDB's writer lock, so no change is lost.
        """

        def body(t: Transaction) -> Any:
            new = change(t.get_ref(name, default))
            t.set_ref(name, new)
            return new

        return self.atomically(body)


def range_scan(store: "RefVerbs", table: str, start: bytes, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
    """Entries of ``table`` whose keys start with ``start``, in key order or reversed, lazily.

    One read snapshot, except in one case: when this process remaps or closes
    the LMDB environment while the scan is suspended (a write that grows the
    map, a read adopting another process's growth, a ``fork()``: see index.py),
    py-lmdb invalidates every open transaction; the scan then resumes after the
    last key it yielded, in a fresh snapshot, instead of failing.
    """
    last: Optional[bytes] = None
    while True:
        index = store.index  # re-read: a fork or close replaces the handle
        generation = index.generation
        try:
            with index.read() as txn:
                cursor = txn.cursor(db=index.tables[table])
                found = _position(cursor, start, reverse, last)
                while found:
                    key = cursor.key()
                    if not key.startswith(start):
                        return
                    value = cursor.value()
                    last = key
                    yield key, value
                    found = cursor.prev() if reverse else cursor.next()
                return
        except lmdb.Error:
            if index.generation == generation:
                raise


def _position(cursor: Any, start: bytes, reverse: bool, after: Optional[bytes]) -> bool:
    """Put ``cursor`` on the first entry of a range scan over keys starting with ``start``.

    ``after``: the last key already seen (resuming), so the scan continues past it.
    Returns False if there is no such entry at all.
    """
    if not reverse:
        if after is None:
            return cursor.set_range(start)
        if not cursor.set_range(after):
            return False
        return cursor.next() if cursor.key() == after else True
    if after is not None:
        bound = after  # walk back from just before the last key seen
    else:
        bound = _prefix_end(start)  # walk back from just past the prefix range
    if bound and cursor.set_range(bound):
        return cursor.prev()
    return cursor.last()  # nothing sorts after the bound: start from the very last key


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (b"" if none)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return b""
    return stripped[:-1] + bytes([stripped[-1] + 1])
