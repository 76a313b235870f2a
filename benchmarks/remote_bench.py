"""Push and pull of whole runs to an S3 remote vs plain boto3 moving the same bytes, side by side.

Starts its own SeaweedFS (``weed mini``, from the dev extra) on 127.0.0.1. Usage::

    python benchmarks/remote_bench.py [--big-mib 1024] [--small 10000] [-n 3]

Two runs are made once (benchmarks/flows/remote_payload.py): one with a
``--big-mib`` artifact, one with ``--small`` artifacts of 200 bytes. Then,
``-n`` times, interleaved, each to a fresh prefix / into a fresh store:

- large: ``cafstore push`` of the run vs boto3 ``upload_file`` of the artifact's file (same
  transfer settings: 16 MiB parts, 8 threads); ``cafstore pull`` vs boto3 ``download_file``;
- small: push and pull of the run (objects/s) vs one boto3 ``put_object`` / ``get_object`` per
  object (8 threads, as push uses);
- a second push of the same run (nothing to send).

Prints each case's median seconds and the ratio of rates (cafstore / boto3; >= 0.70 is the target
for the large case). Push and pull are called in-process (``cafstore.remote``), as the CLI does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN = ["RemotePayloadFlow/1"]
sys.path.insert(0, str(HERE.parent / "tests"))


def make_run(store: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    subprocess.run([sys.executable, str(HERE / "flows" / "remote_payload.py"), "--store", str(store), "run", *args],
                   check=True, env=env, stdout=subprocess.DEVNULL)  # fmt: skip


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("-n", type=int, default=3)
    args = parser.parse_args()
    from boto3.s3.transfer import TransferConfig
    from s3server import S3Server, weed_binary

    from cafstore import schema
    from cafstore.remote import config
    from cafstore.remote.pull import pull
    from cafstore.remote.push import push
    from cafstore.store import Store

    work = Path(tempfile.mkdtemp(prefix="remotebench-"))
    server = S3Server(weed_binary() or "weed", work / "seaweed" / "data")
    server.start()
    os.environ.update(server.env)
    client, bucket = server.client(), server.bucket
    transfer = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=16 << 20, max_concurrency=8)
    times: dict = {}

    def record(case: str, seconds: float) -> None:
        times.setdefault(case, []).append(seconds)

    try:
        big, small = work / "big", work / "small"
        make_run(big, "--big-mib", str(args.big_mib))
        make_run(small, "--small", str(args.small))
        big_store, small_store = Store(big), Store(small)
        [(_, record_id)] = big_store.list_refs(schema.tasks_prefix("RemotePayloadFlow", 1, "start"))
        big_oid = big_store.get_record(record_id)["artifacts"]["big"]
        big_file = big_store.blobs.path(big_oid)
        [(_, record_id)] = small_store.list_refs(schema.tasks_prefix("RemotePayloadFlow", 1, "start"))
        small_oids = [oid for name, oid in small_store.get_record(record_id)["artifacts"].items() if name[0] == "a"]
        payloads = [small_store.get_bytes(oid) for oid in small_oids]

        def cafstore_side(rep: int) -> None:
            for store, kind in ((big_store, "large"), (small_store, "small")):
                url = f"s3://{bucket}/rep{rep}-{kind}"
                config.add(store, f"r{rep}", url, server.endpoint)
                record(f"{kind} push", timed(lambda store=store: push(store, f"r{rep}", RUN)))
                record(f"{kind} second push", timed(lambda store=store: push(store, f"r{rep}", RUN)))
                target = Store(work / f"pull-{kind}-{rep}")
                config.add(target, "origin", url, server.endpoint)
                record(f"{kind} pull", timed(lambda target=target: pull(target, "origin")))
                target.close()
                shutil.rmtree(target.path)

        def boto3_side(rep: int) -> None:
            record("large boto3 upload_file", timed(
                lambda: client.upload_file(str(big_file), bucket, f"plain{rep}/big", Config=transfer)))  # fmt: skip
            down = work / "down.bin"
            record("large boto3 download_file", timed(
                lambda: client.download_file(bucket, f"plain{rep}/big", str(down), Config=transfer)))  # fmt: skip
            down.unlink()
            with ThreadPoolExecutor(8) as pool:
                record("small boto3 put_object each", timed(lambda: list(pool.map(
                    lambda i: client.put_object(Bucket=bucket, Key=f"plain{rep}/s/{i}", Body=payloads[i]),
                    range(len(payloads))))))  # fmt: skip
                record("small boto3 get_object each", timed(lambda: list(pool.map(
                    lambda i: client.get_object(Bucket=bucket, Key=f"plain{rep}/s/{i}")["Body"].read(),
                    range(len(payloads))))))  # fmt: skip

        for rep in range(args.n):  # interleaved, the order alternating, so drift hits both sides alike
            sides = (cafstore_side, boto3_side) if rep % 2 == 0 else (boto3_side, cafstore_side)
            for side in sides:
                side(rep)
        med = {case: statistics.median(values) for case, values in times.items()}
        mib = args.big_mib
        print(f"\n{args.n} repetitions, medians (1 GiB = {mib} MiB, small = {len(payloads)} objects of 200 B)")
        for case, seconds in med.items():
            print(f"  {case:<32} {seconds:8.3f} s")
        print("ratios (cafstore rate / boto3 rate):")
        print(f"  large push / upload_file      {med['large boto3 upload_file'] / med['large push']:.2f}"
              f"   ({mib / med['large push']:.0f} vs {mib / med['large boto3 upload_file']:.0f} MiB/s)")  # fmt: skip
        print(f"  large pull / download_file    {med['large boto3 download_file'] / med['large pull']:.2f}"
              f"   ({mib / med['large pull']:.0f} vs {mib / med['large boto3 download_file']:.0f} MiB/s)")  # fmt: skip
        n = len(payloads)
        print(f"  small push / PUT each         {med['small boto3 put_object each'] / med['small push']:.1f}"
              f"   ({n / med['small push']:.0f} vs {n / med['small boto3 put_object each']:.0f} objects/s)")  # fmt: skip
        print(f"  small pull / GET each         {med['small boto3 get_object each'] / med['small pull']:.1f}"
              f"   ({n / med['small pull']:.0f} vs {n / med['small boto3 get_object each']:.0f} objects/s)")  # fmt: skip
        print(f"  second push (large, small)    {med['large second push']:.3f} s, {med['small second push']:.3f} s")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
