"""Processes the crash and concurrency tests start: ``python maint_workers.py COMMAND STORE [ARGS]``.

- ``gc STORE GRACE BATCH [SECONDS]``: run gc once (or in a loop for SECONDS), printing each report.
- ``writer STORE SECONDS SEED OLD_SEEDS LOG``: for SECONDS, store new values and re-store old
  ones (their bytes are ``content(seed)`` for each of OLD_SEEDS, comma-separated), write a
  record referencing them and a ref to it, sometimes delete an earlier ref; after each
  commit, append what it wrote to LOG as one JSON line.
"""

from __future__ import annotations

import json
import random
import sys
import time


def content(seed: int) -> bytes:
    """Deterministic test bytes: inline, file or chunked depending on the seed."""
    rng = random.Random(seed)
    size = (rng.randint(10, 900), rng.randint(2_000, 8_000), rng.randint(70_000, 140_000))[seed % 3]
    return rng.randbytes(size)


def config():
    from cafstore.store import StoreConfig

    return StoreConfig(
        durable=False, chunk_threshold=64 * 1024, chunk_similar_only=False, chunk_size=16384, inline_threshold=1024
    )


def run_gc(path: str, grace: float, batch: int, seconds: float = 0.0) -> None:
    from cafstore.maintenance import gc
    from cafstore.store import Store

    store = Store(path, config=config())
    deadline = time.time() + seconds
    print("started", flush=True)  # imports done: a kill from now on lands inside gc
    while True:
        report = gc.collect(store, grace=grace, batch=batch)
        print(json.dumps(report.to_dict()), flush=True)
        if time.time() >= deadline:
            break


def run_writer(path: str, seconds: float, seed: int, old_seeds: list, log_path: str) -> None:
    from cafstore.store import Store

    store = Store(path, config=config())
    rng = random.Random(seed)
    deadline = time.time() + seconds
    refs: list = []
    n = 0
    with open(log_path, "a") as log:
        while time.time() < deadline:
            n += 1
            new = content(seed * 100_000 + n)
            old_seed = rng.choice(old_seeds)
            old = content(old_seed)
            # Reuse an old unreachable object whole, and (chunked ones) share its chunks in a new value.
            put = [store.put_bytes(new), store.put_bytes(old), store.put_bytes(old + new[:100])]
            record = store.put_record({"kind": "test", "to": put, "n": n, "writer": seed})
            name = f"refs/writer{seed}/{n:08d}"
            store.set_ref(name, {"target": record})
            refs.append(name)
            deleted = None
            if len(refs) > 3 and rng.random() < 0.3:
                deleted = refs.pop(rng.randrange(len(refs) - 1))
                store.delete_ref(deleted)
            log.write(
                json.dumps(
                    {
                        "ref": name,
                        "record": record,
                        "put": put,
                        "deleted": deleted,
                        "sizes": [len(new), len(old), len(old + new[:100])],
                    }
                )
                + "\n"
            )
            log.flush()


def main(argv: list) -> None:
    command, path = argv[0], argv[1]
    if command == "gc":
        run_gc(path, float(argv[2]), int(argv[3]), float(argv[4]) if len(argv) > 4 else 0.0)
    elif command == "writer":
        run_writer(path, float(argv[2]), int(argv[3]), [int(s) for s in argv[4].split(",")], argv[5])
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
