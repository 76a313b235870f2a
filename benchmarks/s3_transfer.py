"""Put and get of one large object through cafstore's S3 backend vs plain boto3, side by side.

Starts its own SeaweedFS (``weed mini``, from the dev extra) on 127.0.0.1 unless
``--endpoint`` is given (then AWS_* credentials must be set). Usage::

    python benchmarks/s3_transfer.py [--mib 1024] [--part-mib 16] [--concurrency 8]

Prints MiB/s for: boto3 put_object (one request), boto3's transfer manager
(upload_file / download_file, multipart), cafstore ``Store.put_bytes`` and a
cold ``Store.get_bytes`` (download + verify), and a warm re-read (cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def timed(label: str, mib: int, fn) -> None:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<40} {seconds:7.2f} s  {mib / seconds:8.1f} MiB/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    from boto3.s3.transfer import TransferConfig
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
    try:
        data = os.urandom(args.mib << 20)
        source = work / "source.bin"
        source.write_bytes(data)
        part = args.part_mib << 20
        transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=args.concurrency)
        timed(
            "boto3 put_object (single request)",
            args.mib,
            lambda: client.put_object(Bucket=bucket, Key="plain/one", Body=data),
        )
        timed(
            "boto3 upload_file (transfer manager)",
            args.mib,
            lambda: client.upload_file(str(source), bucket, "plain/tm", Config=transfer),
        )
        timed(
            "boto3 download_file (transfer manager)",
            args.mib,
            lambda: client.download_file(bucket, "plain/tm", str(work / "down.bin"), Config=transfer),
        )
        options = {"bucket": bucket, "prefix": "bench", "endpoint_url": endpoint, "part_size": part,
                   "concurrency": args.concurrency, "cache_bytes": 4 * (args.mib << 20)}  # fmt: skip
        store = Store(work / "store", StoreConfig(blob_backend="s3", blob_options=options))
        oid = None

        def put() -> None:
            nonlocal oid
            oid = store.put_bytes(data)

        timed("cafstore put_bytes (hash + multipart)", args.mib, put)
        store.blobs.cache.discard(oid)  # type: ignore[attr-defined]
        timed("cafstore get_bytes, cold (download+verify)", args.mib, lambda: store.get_bytes(oid, verify=True))
        timed("cafstore get_bytes, warm (cache, verify)", args.mib, lambda: store.get_bytes(oid, verify=True))
    finally:
        if server is not None:
            server.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
