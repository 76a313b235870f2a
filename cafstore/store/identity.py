"""The store knows its index is its own: an id and a high-water mark kept outside the index.

Everything gc may delete is decided by the index: an object file the index
does not name is an orphan. So an index that was emptied (a truncated
``data.mdb``, a removed ``index/``), replaced by another store's, or rolled
back to an older copy of itself would make every newer object file look like
garbage. Three facts, two of them outside the index, let every process tell
such an index from a new one before it reads or writes anything:

- the **store id**: a random id stamped into the index (``meta`` table,
  put-if-absent inside a write transaction, so racing processes agree on
  one) and then copied into ``store.json``. Stamp first, file second: a
  ``store.json`` with an id therefore proves that the index was stamped, and
  an index without the stamp (or with another) is not the store's index;
- the **generation**: a counter in the index that gc raises before it
  sweeps, copied to ``index-mark.json`` after the raise. An index whose
  generation is below the mark is an older copy (restored from a backup);
- the **snapshot** ``index-snapshot.mdb``: a compact copy of the index gc
  takes at that moment, from which ``fsck --repair`` (maintenance/rebuild.py)
  restores the runs and records the index held at the last gc.

None of this costs a task anything: checking is one LMDB get and one small
file read per index open, and only gc writes the mark and the snapshot.
Stores made before ids existed (no id anywhere, an index with content) are
adopted by the first process that opens them.
"""

from __future__ import annotations

import json
import os
import struct
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from cafstore.exception import IndexLost, StoreError
from cafstore.store import settings
from cafstore.store.durable import fsync_path

STAMP = "store-id"
GENERATION = "generation"
MARK_FILE = "index-mark.json"
SNAPSHOT_FILE = "index-snapshot.mdb"
_U64 = struct.Struct("<Q")


def read_mark(store_dir: Path) -> dict:
    """``index-mark.json`` as a dict (``{}`` if absent): ``id``, ``generation``, ``objects``, ``time``."""
    try:
        return dict(json.loads((store_dir / MARK_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError) as exc:
        raise StoreError(
            f"The index mark {store_dir / MARK_FILE} is unreadable ({exc}). It only guards against a "
            "restored old index; move it aside if you are sure the index is current."
        ) from exc


def facts(index: Any, txn: Any) -> tuple[Optional[str], int]:
    """(store id stamped in the index or None, its generation) within ``txn``."""
    raw_id = index.meta_value(txn, STAMP)
    raw_gen = index.meta_value(txn, GENERATION)
    return (raw_id.decode() if raw_id else None), (_U64.unpack(raw_gen)[0] if raw_gen else 0)


def stamp(index: Any, txn: Any, store_id: str, generation: Optional[int] = None) -> None:
    """Write the id (and optionally the generation) into a fresh index: rebuild's verb."""
    index.set_meta_value(txn, STAMP, store_id.encode())
    if generation is not None:
        index.set_meta_value(txn, GENERATION, _U64.pack(generation))


_accepted: set = set()  # (data.mdb path, device, inode, size) already verified by this process (or its parent)


def verify(store: Any, index: Any) -> None:
    """Raise ``IndexLost`` unless ``index`` is this store's own, current index; adopt a legacy store.

    Called by ``Store.index`` for each new handle. The scheduler reopens the
    index after every fork and each task opens it once, so a file already
    accepted -- same device, inode and size: not truncated, not swapped --
    costs one ``stat`` (5 us) instead of the checks (about 30 us; measured, docs/store.md).
    """
    key = _file_key(index.path)
    if key is not None and key in _accepted:
        return
    _verify(store, index)
    key = _file_key(index.path)  # adoption may have grown the file
    if key is not None:
        _accepted.add(key)


def _file_key(path: Path) -> Optional[tuple]:
    try:
        st = os.stat(path / "data.mdb")
    except OSError:
        return None
    return (str(path), st.st_dev, st.st_ino, st.st_size)


def _verify(store: Any, index: Any) -> None:
    with index.read() as txn:
        store_id, generation = facts(index, txn)
        # Counted only for an index without an id: the one case whose verdict depends on it.
        has_content = store_id is None and index.count(txn, "objects") + index.count(txn, "refs") > 0
    current = settings.read_settings(store.path)
    recorded = current["id"] if current else None
    where = store.path / "index"
    if recorded is not None and store_id != recorded:
        if store_id is None:
            raise IndexLost(
                f"The index {where} is not the one the store {store.path} was using: the store has id "
                f"{recorded} (store.json) but the index carries no id, so it was emptied or recreated "
                f"{'and then written to ' if has_content else ''}(a truncated data.mdb or a removed index/). "
                f"Every run whose records lived in it is unreachable until it is rebuilt. {_ADVICE}"
            )
        raise IndexLost(
            f"The index {where} belongs to another store (id {store_id}), not to {store.path} (id {recorded}). "
            f"{_ADVICE}"
        )
    if store_id is None:
        _adopt(store, index, has_content)
        return
    if recorded is None and not index.readonly and (current is not None or store.blobs.shared):
        settings.record_id(store.path, store_id)  # stamped by an adopter that had not copied it yet
    mark = read_mark(store.path)
    if mark.get("id") == store_id and int(mark.get("generation", 0)) > generation:
        raise IndexLost(
            f"The index {where} is older than the store: its generation is {generation}, but gc "
            f"already saw generation {mark['generation']} (index-mark.json), so it was restored from an "
            f"older copy and does not name objects written since. {_ADVICE}"
        )


_ADVICE = (
    "Nothing was changed and gc refuses to run. `cafstore fsck --repair` rebuilds the index: "
    "it restores gc's last snapshot if there is one, re-indexes every object file under a "
    "`lost-found/` ref, and lists what could not be recovered."
)


def _adopt(store: Any, index: Any, has_content: bool) -> None:
    """A store with no id anywhere: a new store, or one made before ids; stamp it and record the id."""
    if not has_content and next(iter(store.blobs.iter_ids()), None) is not None:
        raise IndexLost(
            f"The index {store.path / 'index'} is empty, but the store holds object files: the index "
            f"was emptied or removed, and the runs whose records lived in it are unreachable. {_ADVICE}"
        )
    if index.readonly:  # a reader who may not write the store reads it as it is; a writer adopts it later
        return
    fresh = uuid.uuid4().hex

    def body(txn: Any) -> str:
        index.set_meta_value(txn, STAMP, fresh.encode(), overwrite=False)  # a racing adopter may have won
        return index.meta_value(txn, STAMP).decode()

    store_id = index.retrying(body)
    if (store.path / settings.SETTINGS_FILE).exists() or store.blobs.shared:
        settings.record_id(store.path, store_id)


def raise_generation(store: Any) -> int:
    """Raise the index's generation by one and return it (gc, before it snapshots and sweeps)."""
    index = store.index

    def body(txn: Any) -> int:
        _, generation = facts(index, txn)
        index.set_meta_value(txn, GENERATION, _U64.pack(generation + 1))
        return generation + 1

    return index.retrying(body)


def write_mark(store_dir: Path, store_id: str, generation: int, objects: int, when: float) -> None:
    """Record the generation outside the index (temp file -> fsync -> rename), after the index has it."""
    body = json.dumps({"id": store_id, "generation": generation, "objects": objects, "time": when}, indent=2)
    _replace(store_dir / MARK_FILE, lambda handle: handle.write(body.encode() + b"\n"))


def write_snapshot(store: Any) -> Path:
    """A compact, consistent copy of the index as ``index-snapshot.mdb`` (replaced atomically).

    A gc killed while copying leaves its temp file; the next one removes those
    older than an hour (a concurrent gc's is younger).
    """
    for stale in store.path.glob(f".{SNAPSHOT_FILE}.*"):
        try:
            if stale.stat().st_mtime < time.time() - 3600:
                stale.unlink()
        except FileNotFoundError:
            continue
    env = store.index.env
    return _replace(store.path / SNAPSHOT_FILE, lambda handle: env.copyfd(handle.fileno(), compact=True))


def snapshot_facts(path: Path) -> tuple[Optional[str], int]:
    """(store id, generation) recorded inside a snapshot file, read without touching the live index."""
    import lmdb

    from cafstore.store.index import TABLES

    env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, max_dbs=len(TABLES) + 4)
    try:
        meta = env.open_db(b"meta", create=False)
        with env.begin() as txn:
            raw_id, raw_gen = txn.get(STAMP.encode(), db=meta), txn.get(GENERATION.encode(), db=meta)
    finally:
        env.close()
    return (raw_id.decode() if raw_id else None), (_U64.unpack(raw_gen)[0] if raw_gen else 0)


def _replace(path: Path, write: Any) -> Path:
    temp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}")
    try:
        with open(temp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        fsync_path(path.parent, directory=True)
    except OSError as exc:
        raise StoreError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    finally:
        if temp.exists():
            temp.unlink()
    return path


def checkpoint(store: Any, objects: int) -> int:
    """gc's step before it sweeps: raise the generation, snapshot the index, then write the mark.

    In that order, a crash anywhere leaves the index's generation at or above
    the mark's, never below (which would read as a rolled-back index).
    """
    generation = raise_generation(store)
    index = store.index
    with index.read() as txn:
        store_id, _ = facts(index, txn)
    write_snapshot(store)
    if store_id is not None:
        write_mark(store.path, store_id, generation, objects, time.time())
    return generation
