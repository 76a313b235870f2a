"""Integrity check: every object re-hashed, every reference resolved.

fsck reads everything and changes nothing. It separates *problems* (data a
user could lose or read wrongly: corrupt or missing bytes, dangling
references) from *notes* (harmless leftovers of a crash: orphan blobs and
temp files, which ``gc`` removes).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import cafstore.progress as progress_bar
from cafstore.exception import CafstoreError, IndexLost
from cafstore.store import records
from cafstore.store.objectid import ObjectId, hash_bytes, new_hasher


@dataclasses.dataclass
class FsckReport:
    objects: int = 0
    records: int = 0
    refs: int = 0
    bytes_checked: int = 0
    problems: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    bad_objects: set = dataclasses.field(default_factory=set)
    bad_refs: set = dataclasses.field(default_factory=set)  # names of refs whose value does not decode
    index_lost: str = ""  # why identity.verify rejected the index; nothing else was checked then

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "objects": self.objects,
            "records": self.records,
            "refs": self.refs,
            "bytes_checked": self.bytes_checked,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "index_lost": self.index_lost,
        }


def _rehash_file(store: Any, oid: ObjectId, size: int) -> ObjectId:
    view = store.blobs.open(oid)
    if view.nbytes != size:
        raise ValueError(f"{view.nbytes} bytes on disk, {size} in the index")
    hasher = new_hasher(size)
    hasher.update(view)
    return ObjectId(hasher.digest())


class _RemoteCheck:
    """fsck's view of a remote backend: sizes from one listing, hashes of a sample by download."""

    def __init__(self, store: Any, stats: list, sample: Optional[int]) -> None:
        import random

        self.store = store
        self.sizes = store.blobs.stored_sizes()
        files = [st.oid for st in stats if st.location == "file"]
        self.sampled = set(files if sample is None else random.sample(files, min(sample, len(files))))

    def check(self, oid: ObjectId, size: int) -> ObjectId:
        if oid not in self.sizes:
            raise ValueError("missing from the object store")
        if self.sizes[oid] != size:
            raise ValueError(f"{self.sizes[oid]} bytes in the object store, {size} in the index")
        return self.store.blobs.rehash_stored(oid) if oid in self.sampled else oid


def _check_chunked(store: Any, st: Any, references: list) -> ObjectId:
    """A chunk list's chunks become references to check; returns the reassembled content's hash."""
    from cafstore.store import chunks

    index = store.index
    with index.read() as txn:
        payload = index.inline_bytes(txn, st.oid.digest)
    entries = chunks.decode_list(payload, st.oid)
    references.extend((f"chunk list of object {st.oid}", st.oid, cid) for cid, _ in entries)
    return chunks.rehash(store, st.oid, payload, st.size)


def fsck(store: Any, progress: bool = False, remote_sample: Optional[int] = None) -> FsckReport:
    """Check every object, ref and reference. On a remote backend (S3) every blob's presence and size
    is checked by one listing, and ``remote_sample`` of them (None: all) are re-hashed by download."""
    report = FsckReport()
    try:
        store.index  # noqa: B018 - opening it runs identity.verify
    except IndexLost as exc:
        return _lost(store, report, exc)
    stats = list(store.iter_objects())
    indexed = {st.oid for st in stats}
    bar = progress_bar.progress("fsck: checking objects", len(stats), enabled=progress)
    references: list[tuple[str, "ObjectId | None", ObjectId]] = []  # (holder, holder's id or None for a ref, target)
    remote = _RemoteCheck(store, stats, remote_sample) if store.blobs.remote else None
    for st in stats:
        report.objects += 1
        bar.advance()
        try:
            if st.location == "inline":
                index = store.index
                with index.read() as txn:
                    data = index.inline_bytes(txn, st.oid.digest)
                if data is None:
                    raise ValueError("inline bytes missing")
                actual = hash_bytes(data)
            elif st.location == "chunked":
                data = None
                actual = _check_chunked(store, st, references)
            elif remote is not None:
                data = None
                actual = remote.check(st.oid, st.size)
            else:
                data = None
                actual = _rehash_file(store, st.oid, st.size)
            report.bytes_checked += st.size
        except (CafstoreError, OSError, ValueError) as exc:
            report.problems.append(f"object {st.oid}: unreadable ({exc})")
            report.bad_objects.add(st.oid)
            continue
        if actual != st.oid:
            report.problems.append(f"object {st.oid}: corrupt, its bytes hash to {actual}")
            report.bad_objects.add(st.oid)
            continue
        if st.encoding == "record":
            report.records += 1
            try:
                record = records.decode_record(data if data is not None else store.blobs.get(st.oid))
            except (CafstoreError, ValueError) as exc:
                report.problems.append(f"record {st.oid}: undecodable ({exc})")
                continue
            references.extend((f"record {st.oid}", st.oid, ref) for ref in records.referenced_ids(record))
    bar.close()
    for key, raw in store.scan("refs", b""):
        report.refs += 1
        name = key.decode("utf-8", "replace")
        try:
            value = records.decode(raw)
        except (CafstoreError, ValueError) as exc:  # one bad ref is reported; the others are still checked
            report.problems.append(f"ref {name!r}: its value cannot be decoded ({exc})")
            report.bad_refs.add(name)
            continue
        references.extend((f"ref {name!r}", None, ref) for ref in records.referenced_ids(value))
    reachable = _reachable(references)
    for holder, holder_id, ref in references:
        if ref in indexed and ref not in report.bad_objects:
            continue
        what = "missing" if ref not in indexed else "corrupt"
        if holder_id is None or holder_id in reachable:
            report.problems.append(f"{holder} refers to {what} object {ref}")
        else:  # e.g. the records of a run removed after it lost data: no run can read them
            report.notes.append(
                f"{holder}, which no ref reaches, refers to {what} object {ref} (`cafstore gc` removes it)"
            )
    for oid in store.blobs.iter_ids():
        if oid not in indexed:
            report.notes.append(f"orphan blob {oid} (not indexed; `cafstore gc` removes it)")
    for temp in store.blobs.stray_temp_files():
        report.notes.append(f"temp file {temp.name} left by an interrupted write (`cafstore gc` removes it)")
    return report


def _lost(store: Any, report: FsckReport, exc: IndexLost) -> FsckReport:
    """A rejected index: say so, and count what the rebuild could re-index."""
    report.index_lost = str(exc)
    report.problems.append(f"index lost: {exc}")
    files = sum(1 for _ in store.blobs.iter_ids())
    report.notes.append(f"{files} object files remain outside the index; `cafstore fsck --repair` re-indexes them")
    return report


def _reachable(references: list) -> set:
    """Ids reachable from refs along records and chunk lists: damage below anything else is garbage's."""
    children: dict = {}
    for _, holder_id, ref in references:
        if holder_id is not None:
            children.setdefault(holder_id, []).append(ref)
    seen: set = set()
    stack = [ref for _, holder_id, ref in references if holder_id is None]
    while stack:
        oid = stack.pop()
        if oid not in seen:
            seen.add(oid)
            stack.extend(children.get(oid, ()))
    return seen
