"""Store throughput next to the raw limits of this machine, measured in the same run.

    python benchmarks/store_bench.py [--size-mib 1024] [--small 10000] [--repeat 3] [--dir DIR] [--json FILE]

Three parts, each in fresh stores under a temp directory on the disk of the
current directory (``--dir`` to choose), with the store's default config
(fsync on, chunking off) unless said otherwise:

1. One large float64 array (``--size-mib``). Raw limits on the very same
   bytes: blake3 (all cores, as the store hashes), ``pickle.dumps`` alone
   (protocol 5, in-band), plain file write + fsync, plain file read. Then
   ``put_artifact``, ``get_artifact`` and a re-put of the stored array (a
   dedup hit). "get" is judged fairly: ``get_artifact`` followed by one pass
   over every byte (``np.sum``), against reading the file into memory followed
   by the same pass. Nothing is dropped from the page cache: every read, raw
   or store, reads a file written moments before, i.e. warm on both sides.
   Best of ``--repeat``.
2. ``--small`` small artifacts (dicts of a few hundred bytes): pickle.dumps
   and blake3 of their bytes, raw writes (one file + fsync per object, and all
   of them in one file + one fsync), raw reads; then one ``put_artifact`` per
   value (each its own durable commit), the same inside one
   ``store.transaction()``, and ``get_artifact`` of each.
3. The inline threshold: ``put_bytes`` and ``get_bytes`` latency of 1 KiB ..
   1 MiB objects stored inline (in LMDB) vs as files, and where files start
   to win.

Rates are MB/s with 1 MB = 10**6 bytes. Targets (issue "Foundation"): put >= 50%
of raw write+fsync, get >= 70% of raw read, re-put <= 2x the hash time.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import blake3
import numpy as np

from cafstore.store import Store, StoreConfig

MB = 1e6
KIB = 1 << 10
MIB = 1 << 20


# -- helpers ---------------------------------------------------------------------------------
def best_of(repeat: int, run: Callable[[], float]) -> float:
    """``run`` returns the seconds of its timed part (set-up excluded); the best of ``repeat``."""
    return min(run() for _ in range(repeat))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def hash_all(view) -> bytes:
    return blake3.blake3(max_threads=blake3.blake3.AUTO).update(view).digest()


def touch(arr: np.ndarray) -> float:
    """One pass over every byte: the work any consumer of the array does at least once."""
    return float(np.sum(arr))


def write_fsync(path: Path, pieces) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for piece in pieces:
            view = memoryview(piece).cast("B")
            while view.nbytes:
                view = view[os.write(fd, view[: 1 << 30]) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_into_new_buffer(path: Path, size: int) -> np.ndarray:
    buf = np.empty(size, dtype=np.uint8)  # a fresh buffer, as any loader would need
    with open(path, "rb", buffering=0) as handle:
        view, done = memoryview(buf), 0
        while done < size:
            got = handle.readinto(view[done:])
            if not got:
                break
            done += got
    return buf


def fresh_dir(root: Path, name: str) -> Path:
    path = root / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def rate(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / MB


# -- 1. one large array ------------------------------------------------------------------------
def large(root: Path, size_mib: int, repeat: int) -> dict:
    n = size_mib * MIB // 8
    arr = np.random.default_rng(0).random(n)
    size = arr.nbytes
    view = memoryview(arr).cast("B")
    out: dict = {"bytes": size}
    raw_file = fresh_dir(root, "raw") / "array.bin"
    stores: list = []
    reused = np.ones(size, dtype=np.uint8)  # already faulted in: the strictest read baseline

    def raw_write() -> float:
        raw_file.unlink(missing_ok=True)
        return timed(lambda: write_fsync(raw_file, [view]))

    def put() -> float:
        if stores:
            shutil.rmtree(stores[-1].path, ignore_errors=True)  # keep one stored copy on disk at a time
        store = Store(fresh_dir(root, f"store-put-{len(stores)}"))
        stores.append(store)
        return timed(lambda: store.put_artifact(arr))

    def read_reused_touch() -> float:
        start = time.perf_counter()
        with open(raw_file, "rb", buffering=0) as handle:
            handle.readinto(memoryview(reused))
        touch(reused.view(np.float64))
        return time.perf_counter() - start

    def get_only() -> float:
        start = time.perf_counter()
        loaded = stores[-1].get_artifact(oid)
        elapsed = time.perf_counter() - start
        del loaded
        return elapsed

    # Each store figure is measured in the same rounds as the raw figure it is compared with,
    # alternating, so that a noisy neighbour on the disk or the CPUs hits both alike.
    out.update(
        rounds(
            repeat,
            {
                "raw_write": raw_write,
                "put": put,
            },
        )
    )
    oid = stores[-1].put_artifact(arr)
    out["location"] = stores[-1].stat(oid).location
    out.update(
        rounds(
            repeat,
            {
                "hash": lambda: timed(lambda: hash_all(view)),
                "reput": lambda: timed(lambda: stores[-1].put_artifact(arr)),
            },
        )
    )
    out.update(
        rounds(
            repeat,
            {
                "raw_read": lambda: timed(lambda: read_into_new_buffer(raw_file, size)),
                "raw_read_touch": lambda: timed(lambda: touch(read_into_new_buffer(raw_file, size).view(np.float64))),
                "raw_read_reused_touch": read_reused_touch,
                "get": get_only,
                "get_touch": lambda: timed(lambda: touch(stores[-1].get_artifact(oid))),
                "get_trusted_touch": lambda: timed(lambda: touch(stores[-1].get_artifact(oid, verify=False))),
                "touch_only": lambda: timed(lambda: touch(arr)),
            },
        )
    )
    reused = np.empty(0, dtype=np.uint8)  # free the buffer (the closure above keeps its name)
    out["hash_1thread"] = timed(lambda: blake3.blake3().update(view).digest())
    out["pickle_dumps"] = best_of(repeat, lambda: timed(lambda: pickle.dumps(arr, protocol=5)))
    assert np.array_equal(stores[-1].get_artifact(oid), arr)
    shutil.rmtree(raw_file.parent, ignore_errors=True)
    for st in stores:
        shutil.rmtree(st.path, ignore_errors=True)
    return out


def rounds(repeat: int, runs: dict) -> dict:
    """Best of ``repeat`` for each run, the runs taking turns within each round."""
    best: dict = {}
    for _ in range(repeat):
        for name, run in runs.items():
            seconds = run()
            best[name] = min(seconds, best.get(name, seconds))
    return best


# -- 1b. what verifying a read costs -----------------------------------------------------------
def verify_cost(root: Path, size_mib: int, repeat: int) -> dict:
    """Medians of ``repeat`` rounds: a large get with and without verification, alone and with one
    pass over the bytes, and blake3 of the mapped file on one thread and on all cores."""
    arr = np.random.default_rng(3).random(size_mib * MIB // 8)
    store = Store(fresh_dir(root, "store-verify"))
    oid = store.put_artifact(arr)
    del arr
    path = store.blobs.path(oid)

    def hash_mapped(threads: int) -> float:
        view = store.blobs.open(oid)
        return timed(lambda: blake3.blake3(max_threads=threads).update(view).digest())

    def cold(run: Callable[[], float]) -> Callable[[], float]:
        def drop_then_run() -> float:  # the file's pages out of the page cache: read from the disk
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
            return run()

        return drop_then_run

    runs = {
        "cold_get_touch_trusted": cold(lambda: timed(lambda: touch(store.get_artifact(oid, verify=False)))),
        "cold_get_touch_verified": cold(lambda: timed(lambda: touch(store.get_artifact(oid)))),
        "get_verified": lambda: timed(lambda: store.get_artifact(oid)),
        "get_trusted": lambda: timed(lambda: store.get_artifact(oid, verify=False)),
        "get_touch_verified": lambda: timed(lambda: touch(store.get_artifact(oid))),
        "get_touch_trusted": lambda: timed(lambda: touch(store.get_artifact(oid, verify=False))),
        "hash_mapped_1thread": lambda: hash_mapped(1),
        "hash_mapped_all_cores": lambda: hash_mapped(blake3.blake3.AUTO),
    }
    samples: dict = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            samples[name].append(run())
    shutil.rmtree(store.path, ignore_errors=True)
    out = {name: statistics.median(values) for name, values in samples.items()}
    out["bytes"] = path.stat().st_size if path.exists() else size_mib * MIB
    out["rounds"] = repeat
    return out


def verify_report(cost: dict) -> list:
    size = cost["bytes"]
    lines = [f"verified reads: {size / MIB:.0f} MiB artifact, median of {cost['rounds']} rounds, warm page cache"]
    names = ("get_trusted", "get_verified", "get_touch_trusted", "get_touch_verified")
    for name in (*names, "cold_get_touch_trusted", "cold_get_touch_verified"):
        lines.append(f"  {name:34s} {cost[name]:8.3f} s")
    for name in ("hash_mapped_1thread", "hash_mapped_all_cores"):
        lines.append(f"  {name:34s} {cost[name]:8.3f} s {rate(size, cost[name]):8.0f} MB/s")
    extra = cost["get_touch_verified"] / cost["get_touch_trusted"] - 1
    lines.append(f"  verification adds {extra:.0%} to get + one pass over the bytes (warm)")
    extra = cost["cold_get_touch_verified"] / cost["cold_get_touch_trusted"] - 1
    lines.append(f"  verification adds {extra:.0%} to get + one pass over the bytes (cold: read from the disk)")
    return lines


# -- 2. many small artifacts -------------------------------------------------------------------
def small_values(count: int) -> list:
    rng = np.random.default_rng(1)
    return [
        {"i": i, "name": f"item-{i}", "scores": rng.random(16).round(6).tolist(), "ok": bool(i % 2)}
        for i in range(count)
    ]


def small(root: Path, count: int) -> dict:
    values = small_values(count)
    out: dict = {"count": count}
    start = time.perf_counter()
    blobs = [pickle.dumps(v, protocol=5) for v in values]
    out["pickle_dumps"] = time.perf_counter() - start
    out["bytes"] = sum(len(b) for b in blobs)
    out["hash"] = timed(lambda: [blake3.blake3(b).digest() for b in blobs])

    per_file = fresh_dir(root, "raw-small")

    def write_each() -> None:
        for i, blob in enumerate(blobs):
            write_fsync(per_file / str(i), [blob])

    out["raw_write_each"] = timed(write_each)
    out["raw_read_each"] = timed(lambda: [(per_file / str(i)).read_bytes() for i in range(count)])
    one = per_file / "all.bin"
    out["raw_write_one"] = timed(lambda: write_fsync(one, blobs))
    out["raw_read_one"] = timed(lambda: one.read_bytes())
    shutil.rmtree(per_file, ignore_errors=True)

    store = Store(fresh_dir(root, "store-small"))
    oids: list = []
    out["put_each"] = timed(lambda: oids.extend(store.put_artifact(v) for v in values))
    out["get_each"] = timed(lambda: [store.get_artifact(o) for o in oids])
    out["inline"] = sum(store.stat(o).location == "inline" for o in oids[:100])
    assert store.get_artifact(oids[-1]) == values[-1]
    batched = Store(fresh_dir(root, "store-small-batched"))

    def put_batched() -> None:
        with batched.transaction() as txn:
            for v in values:
                txn.put_artifact(v)

    out["put_batched"] = timed(put_batched)
    shutil.rmtree(store.path, ignore_errors=True)
    shutil.rmtree(batched.path, ignore_errors=True)
    return out


# -- 3. the inline threshold -------------------------------------------------------------------
def threshold(root: Path, reps: int) -> list:
    rows = []
    sizes = [KIB << k for k in range(11)]  # 1 KiB .. 1 MiB
    inline = Store(fresh_dir(root, "thr-inline"), StoreConfig(inline_threshold=2 * MIB))
    files = Store(fresh_dir(root, "thr-files"), StoreConfig(inline_threshold=0))
    rng = np.random.default_rng(2)
    for size in sizes:
        row = {"size": size}
        for name, store in (("inline", inline), ("file", files)):
            datas = [rng.bytes(size) for _ in range(reps)]
            puts, gets, oids = [], [], []
            for data in datas:
                start = time.perf_counter()
                oids.append(store.put_bytes(data))
                puts.append(time.perf_counter() - start)
            for oid in oids:
                start = time.perf_counter()
                store.get_bytes(oid)
                gets.append(time.perf_counter() - start)
            assert store.stat(oids[0]).location == name
            row[f"{name}_put"] = statistics.median(puts)
            row[f"{name}_get"] = statistics.median(gets)
        rows.append(row)
    shutil.rmtree(inline.path, ignore_errors=True)
    shutil.rmtree(files.path, ignore_errors=True)
    return rows


# -- report --------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(big: dict, few: dict, rows: list, args: argparse.Namespace) -> list:
    lines = []
    say = lines.append
    size = big["bytes"]
    say(
        f"cafstore store benchmark: {size / MIB:.0f} MiB float64 array (best of {args.repeat}), "
        f"{few['count']} small artifacts, inline threshold sweep"
    )
    say(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}, "
        f"blake3 {blake3.__version__ if hasattr(blake3, '__version__') else '?'}; store default config "
        f"(inline <= {StoreConfig().inline_threshold // KIB} KiB, fsync on, chunk_threshold="
        f"{StoreConfig().chunk_threshold}); large object stored as: {big['location']}"
    )
    say(
        "page cache: nothing dropped; every read (raw and store) is of a file written moments before: warm "
        "on both sides"
    )
    say("")
    say(f"{'large array':48s} {'seconds':>8s} {'MB/s':>8s}")

    def row(label: str, seconds: float, nbytes: int = size) -> None:
        say(f"  {label:46s} {seconds:8.3f} {rate(nbytes, seconds):8.0f}")

    row("raw: blake3, all cores", big["hash"])
    row("raw: blake3, one thread", big["hash_1thread"])
    row("raw: pickle.dumps (protocol 5, in-band copy)", big["pickle_dumps"])
    row("raw: file write + fsync", big["raw_write"])
    row("raw: file read into a new buffer", big["raw_read"])
    row("raw: file read + np.sum pass", big["raw_read_touch"])
    row("raw: read into a pre-faulted buffer + np.sum", big["raw_read_reused_touch"])
    row("     (np.sum pass alone, in memory)", big["touch_only"])
    row("store: put_artifact", big["put"])
    row("store: re-put (already stored)", big["reput"])
    row("store: get_artifact alone (mmap, verified)", big["get"])
    row("store: get_artifact + np.sum pass (verified)", big["get_touch"])
    row("store: get_artifact(verify=False) + np.sum pass", big["get_trusted_touch"])
    say("")
    put_ratio = big["raw_write"] / big["put"]
    get_ratio = big["raw_read_touch"] / big["get_touch"]
    reput_ratio = big["reput"] / big["hash"]
    say("targets")
    say(f"  put rate / raw write+fsync rate   {put_ratio:6.0%}   (target >= 50%)   {verdict(put_ratio >= 0.5)}")
    say(f"  get+pass rate / read+pass rate    {get_ratio:6.0%}   (target >= 70%)   {verdict(get_ratio >= 0.7)}")
    strict = big["raw_read_reused_touch"] / big["get_touch"]
    say(f"    (against a read into a pre-faulted, reused buffer: {strict:.0%})")
    say(f"  re-put time / hash time           {reput_ratio:6.2f}x  (target <= 2x)    {verdict(reput_ratio <= 2)}")
    say("")
    n, nbytes = few["count"], few["bytes"]
    say(f"{f'{n} small artifacts ({nbytes / n:.0f} B each pickled)':48s} {'seconds':>8s} {'MB/s':>8s} {'per op':>9s}")

    def srow(label: str, seconds: float) -> None:
        say(f"  {label:46s} {seconds:8.3f} {rate(nbytes, seconds):8.1f} {seconds / n * 1e6:7.0f}us")

    srow("raw: pickle.dumps", few["pickle_dumps"])
    srow("raw: blake3", few["hash"])
    srow("raw: one file + fsync per object", few["raw_write_each"])
    srow("raw: all in one file + one fsync", few["raw_write_one"])
    srow("raw: read one file per object", few["raw_read_each"])
    srow("raw: read the one file", few["raw_read_one"])
    srow("store: put_artifact, one commit each", few["put_each"])
    srow("store: put_artifact, one transaction for all", few["put_batched"])
    srow("store: get_artifact each", few["get_each"])
    say(f"  (stored inline: {few['inline']}/100 sampled)")
    say("")
    say("inline threshold: median latency per object, inline (LMDB) vs file (fsync on)")
    say(f"  {'size':>8s} {'put inline':>11s} {'put file':>10s} {'get inline':>11s} {'get file':>10s}")
    put_wins = get_wins = None
    for r in rows:
        say(
            f"  {r['size'] // KIB:6d}Ki {r['inline_put'] * 1e3:9.2f}ms {r['file_put'] * 1e3:8.2f}ms "
            f"{r['inline_get'] * 1e3:9.3f}ms {r['file_get'] * 1e3:8.3f}ms"
        )
        if put_wins is None and r["file_put"] < r["inline_put"]:
            put_wins = r["size"]
        if get_wins is None and r["file_get"] < r["inline_get"]:
            get_wins = r["size"]

    def where(size: "int | None") -> str:
        return f"from {size // KIB} KiB" if size else "never, up to 1 MiB"

    say(f"  files win on put: {where(put_wins)}; on get: {where(get_wins)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the large array (default 1024)")
    parser.add_argument("--small", type=int, default=10_000, help="number of small artifacts (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs for the large array")
    parser.add_argument("--threshold-reps", type=int, default=25, help="objects per size in the sweep")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir here)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the raw figures as JSON")
    parser.add_argument(
        "--verify-only", action="store_true", help="only measure what verifying a large read costs (--repeat rounds)"
    )
    args = parser.parse_args()
    base = Path(args.dir) if args.dir else Path.cwd()
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="cafstore-bench-", dir=base))
    if args.verify_only:
        try:
            cost = verify_cost(root, args.size_mib, args.repeat)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print("\n".join(verify_report(cost)))
        return
    try:
        big = large(root, args.size_mib, args.repeat)
        few = small(root, args.small)
        rows = threshold(root, args.threshold_reps)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(report(big, few, rows, args)))
    if args.json:
        Path(args.json).write_text(json.dumps({"large": big, "small": few, "threshold": rows}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
