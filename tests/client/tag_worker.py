"""Worker for the concurrent tagging test: adds (and removes) its own tags one change at a time.

Usage: python tag_worker.py STORE PATHSPEC WORKER COUNT START_AT
"""

import sys
import time

from cafstore.client import Run
from cafstore.store import Store, StoreConfig


def main() -> None:
    path, pathspec, worker, count, start_at = (
        sys.argv[1],
        sys.argv[2],
        sys.argv[3],
        int(sys.argv[4]),
        float(sys.argv[5]),
    )
    run = Run(pathspec, store=Store(path, StoreConfig(durable=False)), _namespace_check=False)
    while time.time() < start_at:  # start together, so the changes really interleave
        time.sleep(0.001)
    for i in range(count):
        run.add_tag(f"w{worker}-{i}")
        run.add_tags([f"tmp{worker}-{i}"])
        run.replace_tag(f"tmp{worker}-{i}", f"r{worker}-{i}")
    run.remove_tags([f"r{worker}-{i}" for i in range(0, count, 2)])


if __name__ == "__main__":
    main()
