"""One user in a loop: tag a run, push it -- what a concurrent pusher does (test_concurrency.py).

argv: store, user, remote name, run (Flow/N), tag prefix, count
"""

import os
import sys

store_path, user, remote, run, prefix, count = sys.argv[1:7]
os.environ["USER"] = user
for name in ("CAFSTORE_USER", "METAFLOW_USER"):
    os.environ.pop(name, None)

from cafstore.client import Run, namespace  # noqa: E402
from cafstore.client.connection import use_store  # noqa: E402
from cafstore.remote.push import push  # noqa: E402
from cafstore.store import Store  # noqa: E402

store = Store(store_path)
use_store(store)
namespace(None)
for i in range(int(count)):
    Run(run).add_tag(f"{prefix}-{i}")
    push(store, remote, [run])
print("done")
