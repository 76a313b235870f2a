"""Put and get of one large object through cafstore's S3 backend vs plain clients, side by side.

Starts its own SeaweedFS (``weed mini``, from the dev extra) on 127.0.0.1 unless
``--endpoint`` is given (then AWS_* credentials and BENCH_BUCKET must be set). Usage::

    python benchmarks/s3_transfer.py [--mib 1024] [--rounds 3] [--part-mib 16] [--concurrency 8]

Each round runs every contender once, in a rotated order (the machine's
noise spreads over all of them), each put on fresh bytes under a fresh key.
Prints the median seconds and MiB/s of each, then cafstore's put and cold get
as a ratio of the best plain client's median. Contenders: boto3 put_object
(one request) and upload_file (the transfer manager, as ``aws s3 cp``),
boto3 download_file and get_object().read(); cafstore ``put_bytes``, a cold
``open`` (download + verify, the bytes mapped from the cache) and a cold
``get_bytes`` (the same plus a copy into memory); obstore's put/get when it
is installed (``--no-obstore`` skips it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def obstore_contenders(endpoint: str, bucket: str, data: bytes, work: Path) -> dict:
    """obstore's put and get (its Rust client, multipart above its own threshold), if it is installed."""
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        return {}
    store = S3Store(
        bucket,
        endpoint=endpoint,
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        client_options={"allow_http": True},
    )
    keys: list = []

    def put() -> None:
        keys.append(f"plain/obstore-{len(keys)}")
        obstore.put(store, keys[-1], data)

    def get() -> None:
        obstore.get(store, keys[-1]).bytes()

    return {"put": {"obstore put": put}, "get": {"obstore get().bytes()": get}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part-mib", type=int, default=0, help="cafstore's part size (default: the backend's)")
    parser.add_argument("--concurrency", type=int, default=0, help="cafstore's threads (default: the backend's)")
    parser.add_argument("--no-obstore", action="store_true")
    parser.add_argument("--gets-only", action="store_true", help="time only the gets (each put once, untimed)")
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    from s3server import S3Server, weed_binary

    from cafstore.store import Store, StoreConfig

    work = Path(tempfile.mkdtemp(prefix="s3bench-"))
    server = None
    endpoint = args.endpoint
    if endpoint is None:
        server = S3Server(weed_binary() or "weed", work / "seaweed" / "data")
        server.start()
        os.environ.update(server.env)
        endpoint, bucket, client = server.endpoint, server.bucket, server.client()
    else:
        import boto3

        client, bucket = boto3.client("s3", endpoint_url=endpoint), os.environ["BENCH_BUCKET"]
    size = args.mib << 20
    try:
        data = os.urandom(size)
        source = work / "source.bin"
        source.write_bytes(data)
        options: dict = {"bucket": bucket, "endpoint_url": endpoint, "cache_bytes": 4 * size}
        if args.part_mib:
            options["part_size"] = args.part_mib << 20
        if args.concurrency:
            options["concurrency"] = args.concurrency
        state: dict = {"n": 0}

        def fresh() -> bytes:  # new bytes each put, so that nothing is deduplicated
            state["n"] += 1
            return state["n"].to_bytes(8, "little") + data[8:]

        def caf_put() -> None:
            payload = fresh()
            store = Store(work / f"store-{state['n']}", StoreConfig(blob_backend="s3", blob_options={**options, "prefix": f"bench-{state['n']}"}))  # fmt: skip
            store.exists("0" * 64), store.blobs.client  # type: ignore[attr-defined]  # index and client made
            start = time.perf_counter()
            state["oid"], state["store"] = store.put_bytes(payload), store
            state["caf_put"] = time.perf_counter() - start

        def cold(method: str) -> Callable[[], object]:
            def run() -> object:
                store, oid = state["store"], state["oid"]
                store.blobs.cache.discard(oid)
                return getattr(store, method)(oid)

            return run

        puts: dict = {
            "boto3 put_object": lambda: client.put_object(Bucket=bucket, Key="plain/one", Body=data),
            "boto3 upload_file": lambda: client.upload_file(str(source), bucket, "plain/tm"),
            "cafstore put_bytes": caf_put,
        }
        gets: dict = {
            "boto3 download_file": lambda: client.download_file(bucket, "plain/tm", str(work / "down.bin")),
            "boto3 get_object().read()": lambda: client.get_object(Bucket=bucket, Key="plain/tm")["Body"].read(),
            "cafstore open, cold": cold("open"),
            "cafstore get_bytes, cold": cold("get_bytes"),
            "cafstore open, warm": lambda: state["store"].open(state["oid"]),
        }
        if not args.no_obstore:
            extra = obstore_contenders(endpoint, bucket, data, work)
            puts.update(extra.get("put", {}))
            gets.update(extra.get("get", {}))
        if args.gets_only:  # what the gets read: stored once, untimed
            for put in puts.values():
                put()
            state.pop("caf_put", None)
            puts = {}
        times: dict = {name: [] for name in [*puts, *gets]}
        for round_ in range(args.rounds):
            for group in (puts, gets) if puts else (gets,):
                names = list(group)
                names = names[round_ % len(names) :] + names[: round_ % len(names)]
                if group is gets:  # the warm read needs the cold one before it
                    names.remove("cafstore open, warm")
                    names.insert(names.index("cafstore open, cold") + 1, "cafstore open, warm")
                for name in names:
                    seconds = timed(group[name])
                    times[name].append(state.pop("caf_put") if name == "cafstore put_bytes" else seconds)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"{args.mib} MiB, {args.rounds} rounds, median (SeaweedFS {endpoint})")
        for name, seconds in median.items():
            print(f"  {name:<30} {seconds:7.2f} s  {args.mib / seconds:8.1f} MiB/s")
        plain_put = min(((median[n], n) for n in puts if not n.startswith(("cafstore", "obstore"))), default=None)
        plain_get = min((median[n], n) for n in gets if not n.startswith(("cafstore", "obstore")))
        if plain_put is not None:
            print(f"cafstore put / best plain put ({plain_put[1]}): {plain_put[0] / median['cafstore put_bytes']:.2f}")
        for name in ("cafstore open, cold", "cafstore get_bytes, cold"):
            print(f"{name} / best plain get ({plain_get[1]}): {plain_get[0] / median[name]:.2f}")
        # The same, round by round (each round's contenders ran minutes apart at most): the median ratio.
        plain = [n for n in [*puts, *gets] if n.startswith("boto3")]
        for name in [n for n in times if n.startswith("cafstore") and "warm" not in n]:
            kind = [n for n in plain if (n in puts) == (name in puts)]
            per_round = [min(times[n][r] for n in kind) / times[name][r] for r in range(args.rounds)]
            print(f"{name} / best plain, per round: median {statistics.median(per_round):.2f} "
                  f"({', '.join(f'{x:.2f}' for x in per_round)})")  # fmt: skip
        for name in [n for n in median if n.startswith("obstore")]:
            best = plain_put if " put" in name else plain_get
            if best is not None:
                print(f"{name} / best boto3 ({best[1]}): {best[0] / median[name]:.2f}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
