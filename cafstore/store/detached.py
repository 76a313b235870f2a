"""A store seen from a process that may not open its index: a *detached* view, and its way back in.

Only one process writes a store's LMDB index (design §5): a task that runs
on another machine (a Dask worker) cannot open it, and must not. So the
process that owns the index ships the task a :class:`Parcel` -- the small
objects the task will read (records, inline artifacts, chunk lists), the
store's settings, and which blob backend holds the large objects -- and the
task works on a :class:`DetachedStore` built from it:

- reads come from the parcel, else (large objects) straight from the blob
  backend, verified by hash like any read;
- large objects the task makes go straight to the blob backend (durable
  before anything refers to them, as in a local put); small ones and the
  record are kept in memory;
- at the end :meth:`DetachedStore.bundle` is what the task hands back: the
  small objects with their bytes, the large ones by id and size.

The owner then calls :func:`adopt` inside the write transaction that commits
the task: every large object is checked to exist in the backend with the
size the task claimed, every small one is re-hashed, and all are indexed
together, so a record never names a missing object (invariant 1) and a task
that died half-way leaves at most unindexed blobs, which gc removes.

Nothing here knows about flows or tasks: the runner decides which objects to
ship (``cafstore.runner.execution.detached``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from cafstore.exception import CorruptObject, ObjectNotFound, StoreError
from cafstore.store import freshen, records, serialize
from cafstore.store.backends import BlobBackend, shared_backend_class
from cafstore.store.config import StoreConfig
from cafstore.store.index import (
    ENCODING_ARTIFACT,
    ENCODING_RAW,
    ENCODING_RECORD,
    LOCATION_CHUNKED,
    LOCATION_FILE,
)
from cafstore.store.objectid import ObjectId, hash_bytes, hash_pieces

# One shipped object: (location, encoding, bytes) -- the bytes of an inline object or a chunk list.
Shipped = Tuple[int, int, bytes]


@dataclasses.dataclass
class Parcel:
    """What a detached process needs to read and write a store: plain, picklable data.

    ``backend`` / ``options``: the store's blob backend as its settings name it.
    ``store_path``: where the owner keeps the store (a local backend's blobs
    live there, so it is only usable on the owner's machine).  ``objects``:
    shipped objects by hex id.
    """

    store_path: str
    backend: str
    options: Dict[str, Any]
    config: StoreConfig
    objects: Dict[str, Shipped] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, store: Any) -> "Parcel":
        """An empty parcel for ``store`` (a ``Store``): its settings, no objects yet."""
        from cafstore.store.settings import backend_choice

        name, options = backend_choice(store.path, store.config)
        return cls(str(store.path), name, dict(options), store.config)

    @property
    def machine_bound(self) -> bool:
        """Whether the blobs are reachable only on the owner's machine (a local directory)."""
        return not shared_backend_class(self.backend).remote

    def ship(self, store: Any, oids: Iterable[Any]) -> None:
        """Add the small objects among ``oids`` (and a chunked object's list and small chunks).

        Large objects are left out: the detached side reads them from the
        blob backend.  One read transaction; ids the store lacks are skipped
        (the task's own read then says which object is missing).
        """
        index = store.index
        with index.read() as txn:
            todo = [ObjectId(oid) for oid in oids]
            while todo:
                oid = todo.pop()
                if str(oid) in self.objects:
                    continue
                meta = index.object_meta(txn, oid.digest)
                if meta is None or meta[0] == LOCATION_FILE:
                    continue
                data = index.inline_bytes(txn, oid.digest)
                if data is None:
                    continue
                self.objects[str(oid)] = (meta[0], meta[1], bytes(data))
                if meta[0] == LOCATION_CHUNKED:
                    from cafstore.store.chunks import decode_list

                    todo.extend(cid for cid, _ in decode_list(data, oid))


class DetachedStore:
    """The store API a task uses (``open``, ``get_record``, ``put_*``), without the index.

    ``scratch``: a directory of this process's own, for backends that keep
    local files (a read cache, temp files); unused for a local backend,
    whose blobs are the owner's own directory.
    """

    def __init__(self, parcel: Parcel, scratch: "Path | str", blobs: Optional[BlobBackend] = None) -> None:
        self.parcel = parcel
        self.config = parcel.config
        self.path = Path(parcel.store_path)
        if blobs is None:
            cls = shared_backend_class(parcel.backend)
            root = self.path if parcel.machine_bound else Path(scratch)
            blobs = cls.from_settings(root, parcel.config, dict(parcel.options))
        self.blobs = blobs
        self._small: Dict[str, Tuple[int, bytes]] = {}  # made here: hex -> (encoding, bytes)
        self._large: Dict[str, Tuple[int, int]] = {}  # written to the backend: hex -> (size, encoding)

    def __repr__(self) -> str:
        return f"DetachedStore({self.parcel.store_path!r}, {self.parcel.backend})"

    # -- reads ---------------------------------------------------------------
    def open(self, oid: "ObjectId | str", verify: bool = True) -> memoryview:
        oid = ObjectId(oid)
        made = self._small.get(str(oid))
        if made is not None:
            return memoryview(bytearray(made[1]))
        shipped = self.parcel.objects.get(str(oid))
        if shipped is None:
            try:
                view = self.blobs.open(oid)
            except ObjectNotFound as exc:
                raise ObjectNotFound(
                    f"Object {oid} was not shipped with this task and is not in the store's blob backend "
                    f"({self.parcel.backend}); the task cannot read it away from the store's own machine."
                ) from exc
            if verify:
                _verify(oid, view)
            return view
        location, _, data = shipped
        if location == LOCATION_CHUNKED:
            return self._assemble(oid, data)
        _verify(oid, data)  # small objects are always checked, as in Store.open
        return memoryview(bytearray(data))

    def _assemble(self, oid: ObjectId, chunk_list: bytes) -> memoryview:
        from cafstore.store.chunks import decode_list

        buffer = bytearray()
        for cid, _ in decode_list(chunk_list, oid):
            buffer += self.open(cid, verify=False)
        _verify(oid, buffer)
        return memoryview(buffer)

    def get_bytes(self, oid: "ObjectId | str", verify: bool = True) -> bytes:
        return bytes(self.open(oid, verify=verify))

    def get_record(self, oid: "ObjectId | str") -> dict:
        return records.decode_record(self.open(oid))

    def get_artifact(self, oid: "ObjectId | str", verify: bool = True, name: str = "") -> Any:
        return serialize.loads(self.open(oid, verify=verify), name)

    def exists(self, oid: "ObjectId | str") -> bool:
        oid = ObjectId(oid)
        return str(oid) in self._small or str(oid) in self.parcel.objects or self.blobs.exists(oid)

    # -- writes ----------------------------------------------------------------
    def put_encoded(self, pieces: List[Any], size: int, encoding: int) -> ObjectId:
        """Small: kept for the bundle.  Large: written to the blob backend now (durable, put-if-absent)."""
        if size <= self.config.inline_threshold:
            data = b"".join(bytes(memoryview(piece).cast("B")) for piece in pieces)
            oid = hash_bytes(data)
            self._small.setdefault(str(oid), (encoding, data))
            return oid
        oid = hash_pieces(pieces, size)
        if str(oid) not in self._large:
            self.blobs.put_pieces(oid, pieces, size)
            self._large[str(oid)] = (size, encoding)
        return oid

    def put_serialized(self, blob: "serialize.Serialized") -> ObjectId:
        return self.put_encoded(blob.pieces, blob.size, ENCODING_ARTIFACT)

    def put_artifact(self, value: Any, name: str = "") -> ObjectId:
        return self.put_serialized(serialize.dumps(value, name))

    def put_bytes(self, data: "bytes | bytearray | memoryview") -> ObjectId:
        view = memoryview(data).cast("B")
        return self.put_encoded([view], view.nbytes, ENCODING_RAW)

    def put_record(self, record: dict) -> ObjectId:
        data = records.encode_record(record)
        oid = hash_bytes(data)
        self._small.setdefault(str(oid), (ENCODING_RECORD, data))
        return oid

    def bundle(self) -> Dict[str, Any]:
        """What the task made, for :func:`adopt`: ``{"small": {hex: [encoding, bytes]}, "large": {hex: [size, encoding]}}``."""
        return {
            "small": {key: [enc, data] for key, (enc, data) in self._small.items()},
            "large": {key: [size, enc] for key, (size, enc) in self._large.items()},
        }


def adopt(store: Any, txn: Any, bundle: Dict[str, Any]) -> None:
    """Index what a detached process made, inside the owner's write transaction ``txn`` (a ``Transaction``).

    Large objects must be in the blob backend with the size the bundle
    claims; small ones must hash to their ids.  Raises ``StoreError`` (or
    ``CorruptObject``) before anything is indexed if either is not so, and
    the caller's transaction then commits nothing.
    """
    large = [(ObjectId(key), int(size), int(enc)) for key, (size, enc) in bundle.get("large", {}).items()]
    for oid, size, _ in large:
        if txn.has_object(oid):
            continue
        found = store.blobs.size(oid)
        if found is None:
            raise StoreError(
                f"A task reported writing object {oid} to the store's blob backend ({_where(store)}), "
                "but it is not there; nothing of the task was committed."
            )
        if found != size:
            raise CorruptObject(
                f"Object {oid} in the blob backend ({_where(store)}) has {found} bytes, but the task that "
                f"wrote it reported {size}; nothing of the task was committed.",
                oid,
            )
    small = []
    for key, (enc, data) in bundle.get("small", {}).items():
        data = bytes(data)
        if hash_bytes(data) != key:
            raise CorruptObject(
                f"A task sent object {key} whose bytes do not hash to that id; nothing of the task was committed.",
                ObjectId(key),
            )
        small.append((data, int(enc)))
    now = time.time()
    for oid, size, enc in large:
        if not freshen.known(store, txn.lmdb_txn, oid):
            store.index.put_meta(txn.lmdb_txn, oid.digest, (LOCATION_FILE, enc, size, now), overwrite=False)
    for data, enc in small:
        store.put_inline(txn.lmdb_txn, data, enc)


def _where(store: Any) -> str:
    return str(getattr(store.blobs, "where", store.path))


def _verify(oid: ObjectId, data: "bytes | bytearray | memoryview") -> None:
    if hash_bytes(memoryview(data)) != oid:
        raise CorruptObject(
            f"Object {oid} is corrupt: the bytes read for it no longer hash to its id. "
            "Run `cafstore fsck` on the store to list every run that uses it.",
            oid,
        )


__all__ = ["DetachedStore", "Parcel", "adopt"]
