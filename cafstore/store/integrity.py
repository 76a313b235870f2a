"""Is an object's data really there? The check a reuse makes before trusting a stored result.

The index says which objects exist; the bytes of large ones live in the blob
backend, where a file can vanish or be damaged behind the index's back.
Reusing a task (resume, ``run --cache``) hands its stored artifacts to a new
run without reading them, so a damaged object would be passed on silently.
:class:`Checker` answers, object by object, what fsck answers for the whole
store, at a cost chosen per check:

- always: the object is indexed; an inline object's bytes hash to its id
  (a few KiB); a file's size in the backend equals the size in the index (a
  stat: catches a missing or truncated file); every chunk of a chunked object
  passes the same checks;
- with ``rehash`` (the default): the bytes of files and chunks are hashed,
  which catches a flipped byte (blake3 on every core: 0.055 s per 512 MiB
  in the page cache on the 2-core development VM, docs/resume.md).

Each object is checked once per Checker, however many records reference it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, Optional, Tuple

from cafstore.exception import CafstoreError
from cafstore.store.index import LOCATION_CHUNKED, LOCATION_FILE, LOCATION_INLINE
from cafstore.store.objectid import ObjectId, hash_bytes, new_hasher


@dataclasses.dataclass(frozen=True)
class Damage:
    """What is wrong with one object a caller wanted to use.

    ``oid``: the object asked about. ``bad``: the objects whose bytes are
    missing or wrong (the object itself, or one of its chunks).
    ``reason``: a few words for a message ("its file is missing").
    """

    oid: ObjectId
    bad: Tuple[ObjectId, ...]
    reason: str

    def describe(self) -> str:
        culprit = self.bad[0] if self.bad else self.oid
        where = "" if culprit == self.oid else f" (its chunk {culprit.short})"
        return f"object {self.oid.short}{where}: {self.reason}"


class Checker:
    """Checks objects for missing or damaged bytes, remembering each answer.

    ``rehash=False`` keeps to the cheap checks (index, presence, size), for
    callers that must not read large files.
    """

    def __init__(self, store: Any, rehash: bool = True) -> None:
        self.store = store
        self.rehash = rehash
        self._seen: Dict[ObjectId, Optional[Damage]] = {}
        self.bytes_hashed = 0

    def all_damage(self, oids: Iterable[ObjectId]) -> list:
        """Every one of ``oids`` whose data is missing or corrupt (each once), in order."""
        found: Dict[ObjectId, Damage] = {}
        for oid in oids:
            damage = self.check(oid)
            if damage is not None:
                found.setdefault(damage.oid, damage)
        return list(found.values())

    def forget_damage(self) -> None:
        """Drop every remembered *damaged* answer: after damaged objects were set aside and maybe
        stored again, they must be looked at afresh (intact answers stay true)."""
        self._seen = {oid: damage for oid, damage in self._seen.items() if damage is None}

    def check(self, oid: ObjectId) -> Optional[Damage]:
        """None if ``oid`` is intact, else what is wrong with it."""
        oid = ObjectId(oid)
        if oid not in self._seen:
            self._seen[oid] = self._check(oid)
        return self._seen[oid]

    def _check(self, oid: ObjectId) -> Optional[Damage]:
        index = self.store.index
        with index.read() as txn:
            meta = index.object_meta(txn, oid.digest)
            inline = index.inline_bytes(txn, oid.digest) if meta is not None and meta[0] != LOCATION_FILE else None
        if meta is None:
            return Damage(oid, (oid,), "it is not in the store's index")
        location, size = meta[0], meta[2]
        if location == LOCATION_INLINE:
            if inline is None or hash_bytes(inline) != oid:
                return Damage(oid, (oid,), "its bytes in the index are missing or corrupt")
            return None
        if location == LOCATION_CHUNKED:
            return self._check_chunked(oid, inline, size)
        return self._check_file(oid, size)

    def _check_file(self, oid: ObjectId, size: int) -> Optional[Damage]:
        blobs = self.store.blobs
        stored = blobs.size(oid)
        if stored is None:
            return Damage(oid, (oid,), "its file is missing")
        if stored != size:
            return Damage(oid, (oid,), f"its file has {stored} bytes where the index says {size}")
        if self.rehash:
            try:
                with blobs.reading(oid) as view:
                    hasher = new_hasher(view.nbytes)
                    hasher.update(view)
                    self.bytes_hashed += view.nbytes
            except (CafstoreError, OSError) as exc:
                return Damage(oid, (oid,), f"its file cannot be read ({exc})")
            if ObjectId(hasher.digest()) != oid:
                return Damage(oid, (oid,), "its bytes are corrupt (they no longer hash to its id)")
        return None

    def _check_chunked(self, oid: ObjectId, payload: Optional[bytes], size: int) -> Optional[Damage]:
        from cafstore.store import chunks

        try:
            entries = chunks.decode_list(payload, oid)
        except CafstoreError as exc:
            return Damage(oid, (oid,), f"its chunk list is unreadable ({exc})")
        if sum(length for _, length in entries) != size:
            return Damage(oid, (oid,), f"its chunk list does not add up to its {size} bytes")
        for cid, length in entries:
            if cid not in self._seen:
                self._seen[cid] = self._check_chunk(cid, length)
            damage = self._seen[cid]
            if damage is not None:  # the chunk and the object built on it are both bad
                return Damage(oid, (cid, oid), damage.reason)
        return None

    def _check_chunk(self, cid: ObjectId, length: int) -> Optional[Damage]:
        index = self.store.index
        with index.read() as txn:
            meta = index.object_meta(txn, cid.digest)
        if meta is None:
            return Damage(cid, (cid,), "a chunk of it is not in the store's index")
        if meta[2] != length:
            return Damage(cid, (cid,), f"a chunk has {meta[2]} bytes, its chunk list says {length}")
        if meta[0] == LOCATION_FILE:
            return self._check_file(cid, length)
        return self._check(cid)
