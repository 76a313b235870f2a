"""A store writer for test_crash.py, killed with SIGKILL at a random moment.

Usage: python crash_writer.py STORE_PATH SEED

Loops forever: stores inline, file and chunked objects (put_bytes and
put_file), an artifact and a record naming them, then points a ref at them
(alone or in a transaction with a counter). After each commit returns it
prints ``committed <i>``: the test then knows that ref must survive the kill.
"""

from __future__ import annotations

import io
import random
import sys

from cafstore.store import Store, StoreConfig

# Small thresholds so a few KiB already exercise files and a few hundred KiB chunking.
CONFIG = StoreConfig(inline_threshold=1024, chunk_threshold=256 << 10, chunk_similar_only=False, chunk_size=64 << 10)


def payload(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.45:
        return rng.randbytes(rng.randint(0, 1024))  # inline
    if kind < 0.93:
        return rng.randbytes(rng.randint(1025, 120_000))  # a file
    return rng.randbytes(rng.randint(300_000, 900_000))  # chunked


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    store = Store(path, CONFIG)
    store.get_ref("warm-up")  # opens (or creates) the index
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        objects = []
        for _ in range(rng.randint(1, 3)):
            data = payload(rng)
            if rng.random() < 0.2:
                objects.append(store.put_file(io.BytesIO(data)))
            else:
                objects.append(store.put_bytes(data))
        if rng.random() < 0.3:
            objects.append(store.put_bytes(b"shared between trials %d" % rng.randint(0, 5)))
        artifact = store.put_artifact({"seed": seed, "i": i, "blob": rng.randbytes(rng.randint(0, 3000))})
        record = store.put_record({"seed": seed, "i": i, "objects": objects, "artifact": artifact})
        ref = f"crash/{seed:05d}/{i:05d}"
        if rng.random() < 0.5:
            store.set_ref(ref, {"record": record, "objects": objects})
        else:
            with store.transaction() as txn:
                run = txn.next_counter("crash-runs")
                inline_record = txn.put_record({"run": run, "parent": record})
                txn.set_ref(ref, {"record": record, "objects": objects, "run": run, "meta": inline_record})
                txn.set_ref(f"latest/{seed:05d}", {"record": record})
        print("committed", i, flush=True)


if __name__ == "__main__":
    main()
