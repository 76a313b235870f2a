"""Chunk-level dedup: what it saves, what it costs, and how fast gc is.

    python benchmarks/dedup_bench.py [--mib 64] [--growth-mib 64] [--repeat 5] [--gc-objects 10000] [--json]

Measured, each in a fresh store under a temp directory on the same disk as
the current directory (``--dir`` to choose), with fsync on:

1. growth targets (issues 8 and 18), with the default config (chunking at put time of
   values that resemble a stored one): a float64 array with a contiguous 1% changed
   in place and stored again (< 10% growth), and 1 KiB inserted at the front
   of a byte string (< 5%);
2. large-artifact put and get of unique content, three configs side by side, the
   rounds interleaved, median of ``--repeat``: "whole" (``chunk_threshold=0``,
   chunking off), "default" (the sketch is taken and looked up, the value stays
   whole: targets put >= 85%, get >= 80% of "whole") and "chunked" (every large
   value chunked, ``chunk_similar_only=False``): put of new content; get +
   reading every byte with the page cache warm; the same with the files
   evicted from the page cache (``posix_fadvise(DONTNEED)``); get_bytes;
3. gc: seconds per 10,000 objects (half of them garbage) and fsck likewise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cafstore.maintenance import dedup, gc
from cafstore.store import Store, StoreConfig, chunks

MIB = 1 << 20
CONFIGS = {
    "whole": StoreConfig(chunk_threshold=0),
    "default": StoreConfig(),
    "chunked": StoreConfig(chunk_similar_only=False),
}


def _physical(store: Store) -> int:
    return dedup.analyse(store).physical_bytes


def growth(root: Path, mib: int) -> dict:
    store = Store(root / "growth-array", config=StoreConfig())
    array = np.random.default_rng(0).random(mib * MIB // 8)
    store.put_artifact(array)
    before = _physical(store)
    start = len(array) // 3
    array[start : start + len(array) // 100] = 0.5
    store.put_artifact(array)
    in_place = (_physical(store) - before) / (mib * MIB)
    store = Store(root / "growth-bytes", config=StoreConfig())
    data = np.random.default_rng(1).integers(0, 256, mib * MIB, dtype=np.uint8).tobytes()
    store.put_bytes(data)
    before = _physical(store)
    store.put_bytes(os.urandom(1024) + data)
    inserted = (_physical(store) - before) / (mib * MIB)
    return {"one_percent_in_place_growth": in_place, "insert_1kib_front_growth": inserted}


def _evict(store: Store, oid) -> None:
    """Drop an object's files from the page cache: the next read comes from disk."""
    entries = chunks.chunk_ids(store, oid)
    ids = [cid for cid, _ in entries] if entries else [oid]
    for cid in ids:
        path = store.blobs.path(cid)
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def speed(root: Path, mib: int, repeat: int) -> dict:
    """MB/s per config and operation, the configs interleaved in every round; medians."""
    rng = np.random.default_rng(2)
    keys = ("put", "get_touch_warm", "get_touch_cold", "get_bytes")
    rates: dict = {name: {key: [] for key in keys} for name in CONFIGS}
    size = mib * MIB
    for round_ in range(repeat):
        array = rng.random(size // 8)  # new content every round, the same for every config
        names = list(CONFIGS)
        for name in names[round_ % 3 :] + names[: round_ % 3]:  # each config goes first in turn
            store = Store(root / f"speed-{name}-{round_}", config=CONFIGS[name])  # removed after: disk stays flat
            rate = rates[name]
            os.sync()  # the previous config's writes and deletions must not land in this one's timed put
            began = time.perf_counter()
            oid = store.put_artifact(array)
            rate["put"].append(size / MIB / (time.perf_counter() - began))
            for key, evict in (("get_touch_warm", False), ("get_touch_cold", True)):
                if evict:
                    _evict(store, oid)
                began = time.perf_counter()
                loaded = store.get_artifact(oid)
                float(loaded.sum())  # read every byte: an mmap is free until touched
                rate[key].append(size / MIB / (time.perf_counter() - began))
                del loaded
            began = time.perf_counter()
            store.get_bytes(oid)
            rate["get_bytes"].append(size / MIB / (time.perf_counter() - began))
            store.close()
            shutil.rmtree(store.path)
    out: dict = {name: {key: statistics.median(values) for key, values in rate.items()} for name, rate in rates.items()}
    # Paired: each round's ratio to "whole" in that same round, then the median -- steadier than a
    # ratio of medians when the machine's load drifts between rounds.
    out["paired"] = {
        name: {key: statistics.median(r / w for r, w in zip(rates[name][key], rates["whole"][key])) for key in keys}
        for name in ("default", "chunked")
    }
    return out


def gc_time(root: Path, objects: int) -> dict:
    store = Store(root / "gc", config=StoreConfig(durable=False))
    ids = [store.put_bytes(os.urandom(200) + i.to_bytes(8, "little")) for i in range(objects)]
    half = objects // 2
    for start in range(0, half, 100):
        record = store.put_record({"kind": "bench", "to": ids[start : start + 100]})
        store.set_ref(f"bench/{start:08d}", record)
    began = time.perf_counter()
    report = gc.collect(store, grace=0)
    gc_seconds = time.perf_counter() - began
    began = time.perf_counter()
    store.fsck()
    fsck_seconds = time.perf_counter() - began
    scale = 10_000 / max(report.scanned, 1)
    return {
        "gc_seconds_per_10k_objects": gc_seconds * scale,
        "fsck_seconds_per_10k_objects": fsck_seconds * scale,
        "gc_removed": len(report.removed),
        "gc_scanned": report.scanned,
    }


def main(argv: "list | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--growth-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--gc-objects", type=int, default=10_000)
    parser.add_argument("--dir", default=None, help="where to create the scratch stores (default: .)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dedup-bench-", dir=args.dir or os.getcwd()) as scratch:
        root = Path(scratch)
        results = {"growth": growth(root, args.growth_mib), "speed": speed(root, args.mib, args.repeat)}
        results["gc"] = gc_time(root, args.gc_objects)
    rates = results["speed"]
    paired = rates.pop("paired")
    results["ratio_over_whole"] = paired
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    g = results["growth"]
    print(
        f"growth, {args.growth_mib} MiB float64 array, contiguous 1% changed in place: "
        f"{g['one_percent_in_place_growth']:.2%} (target < 10%)"
    )
    print(
        f"growth, {args.growth_mib} MiB bytes, 1 KiB inserted at the front:            "
        f"{g['insert_1kib_front_growth']:.2%} (target < 5%)"
    )
    print(
        f"\n{'MB/s, median of ' + str(args.repeat):24s} {'whole':>8s} {'default':>8s} {'chunked':>8s}  each round's ratio to whole, median"
    )
    for key in rates["whole"]:
        w, d, c = (rates[name][key] for name in ("whole", "default", "chunked"))
        d_w, c_w = paired["default"][key], paired["chunked"][key]
        print(f"{key:24s} {w:8.0f} {d:8.0f} {c:8.0f}  default {d_w:.2f}, chunked {c_w:.2f}")
    gct = results["gc"]
    print(
        f"\ngc: {gct['gc_seconds_per_10k_objects']:.3f}s per 10k objects "
        f"({gct['gc_scanned']} scanned, {gct['gc_removed']} removed); "
        f"fsck: {gct['fsck_seconds_per_10k_objects']:.3f}s per 10k objects"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
