"""What progress bars for big objects cost the small-object path, measured in the same run.

    python benchmarks/progress_bench.py [--count 3000] [--size-kib 48] [--repeat 5]

The store asks ``cafstore.progress.for_object`` whether to draw a bar each time it writes a blob
file (and on every S3 transfer); below 64 MiB the answer is None. This times that question, with
the label the local backend builds for it, next to the ``put_bytes`` it sits in (values just above
the inline threshold, so each is a file: the cheapest put that asks), non-durable so no fsync hides
the difference. Target: under 0.5% of a put. Medians of ``--repeat`` rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import timeit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="puts per round (default 3000)")
    parser.add_argument("--size-kib", type=int, default=48, help="size of each value (default 48 KiB)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args()

    from cafstore.progress import for_object
    from cafstore.store import Store, StoreConfig
    from cafstore.store.objectid import hash_bytes

    size = args.size_kib << 10
    oid = hash_bytes(b"label")
    puts, asks = [], []
    for _ in range(args.repeat):
        values = [os.urandom(size) for _ in range(args.count)]
        with tempfile.TemporaryDirectory(dir=".") as scratch:
            store = Store(scratch, StoreConfig(durable=False))
            started = time.perf_counter()
            for value in values:
                store.put_bytes(value)
            puts.append((time.perf_counter() - started) / args.count)
            store.close()
        asks.append(timeit.timeit(lambda: for_object(f"writing {oid.short}", size), number=100_000) / 100_000)
    put, ask = statistics.median(puts), statistics.median(asks)
    print(f"put_bytes of {args.size_kib} KiB (non-durable): {put * 1e6:.1f} us")
    print(f"for_object below the threshold: {ask * 1e9:.0f} ns")
    print(f"share of a put: {100 * ask / put:.3f}% (target < 0.5%)")


if __name__ == "__main__":
    main()
