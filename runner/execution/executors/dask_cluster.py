"""Reaching a Dask cluster for a run: an existing scheduler, or a local cluster made for the run.

Everything that can go wrong before the first task is checked here and said
in one paragraph (:class:`~cafstore.exception.ClusterError`): Dask not
installed (with the command that installs it), a scheduler that does not
answer, and a store whose blobs the workers could not reach (a local blob
directory with a worker on another machine).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Optional, Set, Tuple

from cafstore.exception import ClusterError

# Seconds to reach a scheduler before giving up (CAFSTORE_DASK_CONNECT_TIMEOUT).
CONNECT_TIMEOUT = float(os.environ.get("CAFSTORE_DASK_CONNECT_TIMEOUT") or 10.0)


def distributed_module() -> Any:
    """``distributed``, or a ClusterError saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(
            "--executor dask needs Dask's distributed scheduler, which is not installed in this Python "
            f"({exc.name or exc}). Install it with: pip install 'cafstore[dask]'"
        ) from exc
    return distributed


def connect(address: Optional[str], workers: int) -> Tuple[Any, Any]:
    """(a Client, the LocalCluster made for the run or None).

    ``address``: a scheduler's ``tcp://HOST:PORT``; None starts ``workers``
    single-threaded worker processes on 127.0.0.1 for this run (stopped by
    :func:`close`).
    """
    distributed = distributed_module()
    if address:
        try:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"Cannot reach the Dask scheduler at {address} (--dask-scheduler or CAFSTORE_DASK_SCHEDULER) "
                f"within {CONNECT_TIMEOUT:g} s: {exc}. Check that `dask scheduler` runs there and that the "
                "address (tcp://HOST:PORT) and port are right; nothing was run."
            ) from exc
        return client, None
    try:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = distributed.Client(cluster, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - any failure to start is the same story for the user
        raise ClusterError(f"Could not start a local Dask cluster of {workers} workers for the run: {exc}") from exc
    return client, cluster


def close(client: Any, cluster: Any) -> None:
    """Disconnect, and stop the cluster if it was made for the run; never raises."""
    for thing in (client, cluster):
        if thing is None:
            continue
        try:
            thing.close()
        except Exception:  # noqa: BLE001 - shutting down: a scheduler already gone is fine
            pass


def worker_hosts(client: Any) -> Set[str]:
    """The hosts of the cluster's workers now."""
    hosts = set()
    for address in client.scheduler_info().get("workers", {}):
        host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
        hosts.add(host)
    return hosts


def this_machine() -> Set[str]:
    """Names and addresses under which a worker runs on this very machine."""
    names = {"127.0.0.1", "localhost", "::1", socket.gethostname()}
    try:
        names.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
    except OSError:
        pass
    return names


def check_blobs_reachable(client: Any, machine_bound: bool, store_path: str) -> None:
    """Refuse a store whose blobs live in a local directory when a worker runs on another machine."""
    if not machine_bound:
        return
    elsewhere = sorted(worker_hosts(client) - this_machine())
    if elsewhere:
        raise ClusterError(
            f"The store at {store_path} keeps its large objects in a local directory, which the Dask "
            f"workers on {', '.join(elsewhere)} cannot reach. Run them on this machine, or use a store "
            "whose blobs are in S3 (`cafstore init PATH --blobs s3://BUCKET/PREFIX`); nothing was run."
        )
