"""Whole flows with the store's large objects in S3 (SeaweedFS on 127.0.0.1) vs on local disk, side by side.

    python benchmarks/s3_flow_bench.py              # artifact-256MiB and foreach-1000, 3 runs each
    python benchmarks/s3_flow_bench.py --quick      # foreach-100 instead of 1000, 1 run each

The flows are benchmarks/flows/ (the ones flow_bench.py runs against Metaflow).
Each run gets a fresh store in a fresh scratch directory: a local store, or one
made by ``cafstore init STORE --blobs s3://BUCKET/PREFIX`` on a fresh prefix of
one SeaweedFS started here (``weed mini``, from the dev extra). The two kinds
alternate run by run, so the machine's noise falls on both. Prints the median
wall seconds of each and the ratio S3 / local.

- artifact-256MiB: a 256 MiB array made in start (one multipart upload; the
  uploaded bytes stay in the read cache), read in middle and end (from the cache).
- foreach-1000: 1,000 tasks whose artifacts are all small: they stay inline in
  the local index and the S3 store makes no request at all, so both columns
  should be the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _harness import run_once, write_flow_pair  # noqa: E402
from _metaflow_env import isolated_env  # noqa: E402

CASES = {
    "artifact-256MiB": ("big_artifact", [], {"ARRAY_BYTES": 256 << 20}, f"bytes {256 << 20}"),
    "foreach-1000": ("foreach", ["--max-workers", "2", "--max-num-splits", "1000"], {"N_TASKS": 1000}, "total"),
    "foreach-100": ("foreach", ["--max-workers", "2", "--max-num-splits", "100"], {"N_TASKS": 100}, "total"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="foreach-100 instead of foreach-1000, one run each")
    parser.add_argument("--runs", type=int, default=0, help="runs of each kind per case (default 3, --quick 1)")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    names = ["artifact-256MiB", "foreach-100" if args.quick else "foreach-1000"]
    from s3server import S3Server, weed_binary

    work = Path(tempfile.mkdtemp(prefix="s3flowbench-"))
    server = S3Server(weed_binary() or "weed", work / "seaweed" / "data")
    server.start()
    results: Dict[str, Dict[str, List[float]]] = {}
    try:

        def env_for(kind: str):  # type: ignore[no-untyped-def]
            def build(scratch: Path) -> dict:
                env = isolated_env(scratch, "cafstore")
                env.update(server.env)
                if kind == "s3":
                    url = f"s3://{server.bucket}/{uuid.uuid4().hex[:12]}"
                    made = subprocess.run(
                        [sys.executable, "-m", "cafstore.cli.main", "init", env["CAFSTORE_HOME"], "--blobs", url,
                         "--endpoint-url", server.endpoint],
                        env=env, capture_output=True, text=True, timeout=120,
                    )  # fmt: skip
                    if made.returncode != 0:
                        raise RuntimeError(f"cafstore init --blobs failed: {made.stderr}")
                return env

            return build

        for name in names:
            template, flow_args, constants, expect = CASES[name]
            flow = write_flow_pair(template, work / "flows" / name, constants)["cafstore"]
            results[name] = {"local": [], "s3": []}
            for round_ in range(runs):
                for kind in ("local", "s3") if round_ % 2 == 0 else ("s3", "local"):
                    seconds, error, _ = run_once(
                        [sys.executable, flow.name, "run", *flow_args],
                        env_for=env_for(kind), cwd=flow.parent, timeout=1800, expect=expect,
                    )  # fmt: skip
                    if error:
                        print(f"{name} / {kind} failed: {error}")
                        return 1
                    results[name][kind].append(seconds)
                    print(f"[{name}] {kind} run {round_ + 1}/{runs}: {seconds:.2f}s", file=sys.stderr, flush=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"median wall seconds, {runs} run(s) each (1-minute load average at the end: {load:.1f})")
    print(f"  {'case':<18} {'local':>8} {'S3':>8} {'S3/local':>9}")
    for name, kinds in results.items():
        local, s3 = statistics.median(kinds["local"]), statistics.median(kinds["s3"])
        print(f"  {name:<18} {local:8.2f} {s3:8.2f} {s3 / local:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
