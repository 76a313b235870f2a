"""Which large objects to chunk at put time: a sketch of sampled content, and an index of sketches.

Chunking every large value halves put speed and turns zero-copy reads into
copies (docs/maintenance.md), yet it only pays when a value shares bytes with
one already stored. So a put first takes a *sketch* of the new value -- cheap,
it reads a few percent of the bytes -- and looks its fingerprints up in the
index's ``similar`` table; only a value that resembles a stored one is cut
into chunks (and the stored one too, if it was kept whole), everything else
takes the whole-object path at full speed.

The sketch: content-defined mini-chunks are cut inside small windows placed
every ``stride`` bytes (the store's ``chunk_size``); the first and last
mini-chunk of each window depend on where the window starts and are dropped,
the others depend only on content, so a value with bytes changed in place, or
a few KiB inserted or removed, yields mostly the same ones. A mini-chunk's
fingerprint mixes the cutter's rolling hash at its end with its length (no
extra pass over its bytes). The ``KEEP`` smallest fingerprints (min-hash
bottom-k) are the sketch: two values share about as many of them as the
fraction of content they share. Shifts larger than about half a window move
every window off its old content and are not seen; ``cafstore dedup``
re-chunks such values offline.

The table maps fingerprint (8 bytes) -> object digest (32 bytes). Entries are
hints, written in the transaction that indexes their object: one pointing at
an object gc swept is ignored, and gc removes such entries (``prune``).
Nothing else relies on this table, so a store without it (an older store
opened read-only, a rebuilt index) just chunks nothing until values are stored.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Optional

from cafstore.store.objectid import ObjectId

TABLE = "similar"
KEEP = 32  # fingerprints per sketch (min-hash bottom-k)
MIN_SHARE = 0.25  # the fraction of a sketch that must be found to call two values similar
_MASK = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio): spreads a length over all bits
_cutters: dict = {}


def geometry(chunk_size: int) -> tuple[int, int, int]:
    """(stride, window, mini-chunk average) for a store whose chunks average ``chunk_size``.

    Windows of 1/32 of the stride (32 KiB for 1 MiB chunks) read ~3% of a
    value; mini-chunks of 1/8 of a window leave ~6 content-defined ones each.
    """
    stride = max(chunk_size, 4096)
    window = max(stride // 32, 4096)
    return stride, window, max(window // 8, 256)


def _cutter(average: int) -> Any:
    cutter = _cutters.get(average)
    if cutter is None:
        from pyfastcdc import FastCDC

        cutter = _cutters[average] = FastCDC(average, min_size=max(64, average // 4), max_size=average * 4)
    return cutter


def _windows(pieces: list, size: int, stride: int, window: int) -> Iterator[memoryview]:
    """The bytes [k * stride, k * stride + window) of the concatenated ``pieces``, for every k."""
    views = [memoryview(p).cast("B") for p in pieces]
    starts, at = [], 0
    for view in views:
        starts.append(at)
        at += view.nbytes
    index = 0
    for begin in range(0, size, stride):
        end = min(begin + window, size)
        while index + 1 < len(views) and starts[index + 1] <= begin:
            index += 1
        local = begin - starts[index]
        if local + (end - begin) <= views[index].nbytes:
            yield views[index][local : local + end - begin]
            continue
        parts, cursor, i = [], begin, index  # the window straddles pieces: join a few KiB
        while cursor < end:
            take = min(end, starts[i] + views[i].nbytes) - cursor
            if take > 0:
                parts.append(views[i][cursor - starts[i] : cursor - starts[i] + take])
                cursor += take
            i += 1
        yield memoryview(b"".join(parts))


def sketch(pieces: list, size: int, chunk_size: int) -> list[bytes]:
    """The value's sketch: its ``KEEP`` smallest mini-chunk fingerprints (8 bytes each), sorted."""
    stride, window, average = geometry(chunk_size)
    cutter = _cutter(average)
    found: set = set()
    for view in _windows(pieces, size, stride, window):
        if view.nbytes < 3 * average:
            continue
        cuts = list(cutter.cut_buf(view))
        for chunk in cuts[1:-1]:  # the first and last depend on where the window starts
            found.add(((chunk.gear_hash ^ (chunk.length * _MIX)) * _MIX) & _MASK)
    return [value.to_bytes(8, "big") for value in sorted(found)[:KEEP]]


def find(index: Any, txn: Any, fingerprints: list[bytes]) -> Optional[ObjectId]:
    """The stored object the sketch resembles most, if enough of it is found; None otherwise.

    Enough: at least a quarter of the fingerprints (and two, so that one
    common pattern -- a run of zeros -- is not mistaken for a shared value),
    counted over every live object they point to.
    """
    table = index.tables.get(TABLE)
    if table is None or not fingerprints:
        return None
    votes: dict = {}
    for fingerprint in fingerprints:
        digest = txn.get(fingerprint, db=table)
        if digest is not None:
            votes[digest] = votes.get(digest, 0) + 1
    needed = max(2 if len(fingerprints) > 1 else 1, math.ceil(MIN_SHARE * len(fingerprints)))
    live = {digest: n for digest, n in votes.items() if index.object_meta(txn, digest) is not None}
    if sum(live.values()) < needed:
        return None
    return ObjectId(max(live, key=lambda digest: live[digest]))


def record(index: Any, txn: Any, fingerprints: list[bytes], oid: ObjectId) -> None:
    """Point the sketch's fingerprints at ``oid`` (the newest object wins: it is the likeliest base
    for the next version). Inside the write transaction that indexes ``oid``."""
    table = index.tables.get(TABLE)
    if table is None:
        return
    digest = oid.digest
    for fingerprint in fingerprints:
        txn.put(fingerprint, digest, db=table)


def prune(index: Any, txn: Any) -> int:
    """Remove entries whose object is no longer indexed (gc, after its sweep); returns how many."""
    table = index.tables.get(TABLE)
    if table is None:
        return 0
    dead = [key for key, digest in txn.cursor(db=table) if index.object_meta(txn, digest) is None]
    for key in dead:
        txn.delete(key, db=table)
    return len(dead)
