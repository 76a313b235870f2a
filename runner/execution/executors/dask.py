"""``dask``: task attempts run on a Dask distributed cluster (docs/scale-out.md).

The coordinator (the process running the flow) keeps the store's index to
itself (design §5).  For each attempt it ships a Dask task: the spec, a
:class:`~cafstore.store.detached.Parcel` of what the task reads (its
parents' records and small artifacts; large ones come from the blob
backend) and the flow's code.  On the worker
(:func:`~.dask_worker.run_remote`) a warm task host forks the attempt into its
own process as the local fork executor would (:mod:`.dask_host`); it writes its
large objects to the blob backend and
returns its record and small objects; :meth:`DaskExecutor.wait` commits them
here in one transaction (:func:`~cafstore.runner.execution.detached.commit_detached`).

Faults: Dask re-runs the work of a worker that died (that attempt's result
comes back once, from the run that finished; after ``allowed-failures``
deaths it is a lost attempt); a scheduler that stops answering makes every
running attempt a lost one, so the run fails and can be resumed; a
coordinator that dies leaves its run crashed, and its workers' results go
nowhere.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

from cafstore.exception import ClusterError
from cafstore.runner.authoring.decorators import step_options
from cafstore.runner.execution.detached import commit_detached, parcel_for
from cafstore.runner.execution.executors import dask_cluster
from cafstore.runner.execution.executors.base import Executor, lost_attempt
from cafstore.runner.execution.executors.dask_worker import code_package, run_remote, warm_host
from cafstore.runner.execution.spec import TaskResult, TaskSpec

ADDRESS_VARIABLE = "CAFSTORE_DASK_SCHEDULER"
FORWARD_VARIABLE = "CAFSTORE_DASK_ENV"  # NAME,PREFIX_* : the coordinator's variables the tasks get
# Seconds without a scheduler before running attempts count as lost (CAFSTORE_DASK_SCHEDULER_GRACE).
SCHEDULER_GRACE = float(os.environ.get("CAFSTORE_DASK_SCHEDULER_GRACE") or 15.0)


_SCHEDULER_LOST = (
    "The Dask scheduler stopped answering while the task ran, so its result is lost (nothing of it was "
    "committed); resume the run once the cluster is back."
)


class DaskExecutor(Executor):
    """Attempts as Dask tasks; the coordinator commits what they made.

    ``scheduler_address``: ``tcp://HOST:PORT`` (else ``CAFSTORE_DASK_SCHEDULER``);
    none: a local cluster of ``workers`` single-threaded worker processes is
    started now and stopped by :meth:`shutdown`.
    """

    def __init__(
        self,
        flow_cls: Optional[type] = None,
        kill_grace: float = 3.0,
        echo: bool = True,
        scheduler_address: Optional[str] = None,
        workers: Optional[int] = None,
    ) -> None:
        self.flow_cls, self.kill_grace, self.echo = flow_cls, kill_grace, echo
        address = scheduler_address or os.environ.get(ADDRESS_VARIABLE) or None
        self.distributed = dask_cluster.distributed_module()
        self.client, self.cluster = dask_cluster.connect(address, workers or min(4, os.cpu_count() or 1))
        self.topic = f"cafstore-logs-{uuid.uuid4().hex}"
        self._echoed: Dict[str, int] = {}  # host name -> highest echo chunk shown
        self._echo_lock = threading.Condition()
        if echo:
            self.client.subscribe_topic(self.topic, self._echo)
        self._pending: Dict[Any, TaskSpec] = {}
        self._store: Any = None
        self._base: Any = None
        self._code: Dict[str, Dict[str, bytes]] = {}
        self._lost_since: Optional[float] = None
        self._warmed: set = set()
        self._refused: List[TaskResult] = []  # attempts no worker could take, reported by the next wait()

    # -- setting up ------------------------------------------------------------------
    def prepare(self, store_path: str) -> None:
        """Check the workers can reach the store's blobs (a ClusterError if not), once per store."""
        if self._store is not None and str(self._store.path) == os.path.abspath(store_path):
            return
        from cafstore.store import Store
        from cafstore.store.detached import Parcel

        store = Store(store_path)
        base = Parcel.of(store)
        dask_cluster.check_blobs_reachable(self.client, base.machine_bound, str(store.path))
        self._store, self._base = store, base

    def _code_for(self, flow_dir: str) -> Dict[str, bytes]:
        code = self._code.get(flow_dir)
        if code is None:
            code = self._code[flow_dir] = code_package(flow_dir)
        return code

    def _warm(self, job: Dict[str, Any]) -> None:
        """Have every worker start its task host for this flow now, while the first attempt runs."""
        if job["flow_file"] in self._warmed:
            return
        self._warmed.add(job["flow_file"])
        try:
            self.client.run(warm_host, job)
        except Exception:  # noqa: BLE001 - only a head start: each attempt starts its host if it must
            pass

    def _resources(self, spec: TaskSpec) -> Optional[Dict[str, float]]:
        """``@resources`` of the step as Dask worker resources (docs/scale-out.md), or None."""
        func = getattr(self.flow_cls, spec.step, None) if self.flow_cls is not None else None
        wanted = step_options(func).resources if func is not None else {}
        return resource_request(wanted, self.client) if wanted else None

    # -- the executor interface ------------------------------------------------------
    @property
    def running(self) -> int:
        return len(self._pending) + len(self._refused)

    def submit(self, spec: TaskSpec, timeout: Optional[float] = None) -> None:
        self.prepare(spec.store_path)
        flow_dir = os.path.dirname(os.path.abspath(spec.flow_file))
        job = {
            "spec": spec,
            "parcel": parcel_for(self._store, self._base, spec),
            "code": self._code_for(flow_dir),
            "flow_file": os.path.relpath(os.path.abspath(spec.flow_file), flow_dir),
            "cwd": os.path.relpath(os.path.abspath(spec.cwd), flow_dir) if spec.cwd else ".",
            "timeout": timeout,
            "kill_grace": self.kill_grace,
            "echo": self.echo,
            "topic": self.topic,
            "env": forwarded_environment(),
        }
        self._store.close()  # the coordinator holds no LMDB handle between its own writes
        key = (
            f"cafstore-{spec.flow_name}-{spec.run_id}-{spec.step}-{spec.task_id}-{spec.attempt}-{uuid.uuid4().hex[:8]}"
        )
        self._warm(job)
        try:
            request = self._resources(spec)
        except ClusterError as exc:
            error = {
                "type": "cafstore.exception.ClusterError",
                "message": str(exc),
                "traceback": "",
                "headline": "no worker can run it",
                "where": "",
                "user_error": True,
            }
            self._refused.append(TaskResult(spec.task_id, spec.step, spec.attempt, "failed", error=error))
            return
        future = self.client.submit(run_remote, job, key=key, pure=False, resources=request)
        self._pending[future] = spec

    def wait(self, timeout: Optional[float] = None) -> List[TaskResult]:
        if self._refused:
            refused, self._refused = self._refused, []
            return refused
        if not self._pending:
            if timeout:
                time.sleep(timeout)
            return []
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            slice_ = 0.5 if end is None else max(0.0, min(0.5, end - time.monotonic()))
            try:
                with self.client.as_current():
                    done, _ = self.distributed.wait(list(self._pending), timeout=slice_, return_when="FIRST_COMPLETED")
            except (TimeoutError, self.distributed.TimeoutError):
                done = set()
            except Exception:  # noqa: BLE001 - futures cancelled under us (the scheduler connection was lost)
                done = {future for future in self._pending if future.status != "pending"}
                if not done and self.client.status != "running":
                    return self._lose_all()
            if done:
                self._lost_since = None
                return [self._finish(future) for future in done]
            if self._scheduler_lost():
                return self._lose_all()
            if end is not None and time.monotonic() >= end:
                return []

    def _scheduler_lost(self) -> bool:
        if self.client.status == "running":
            self._lost_since = None
            return False
        if self._lost_since is None:
            self._lost_since = time.monotonic()
        return time.monotonic() - self._lost_since > SCHEDULER_GRACE

    def _lose_all(self) -> List[TaskResult]:
        results = [lost_attempt(spec, 0, _SCHEDULER_LOST) for spec in self._pending.values()]
        self._pending.clear()
        return results

    def _finish(self, future: Any) -> TaskResult:
        spec = self._pending.pop(future)
        status = future.status
        if status == "finished":
            answer = future.result()
            if answer.get("echo") and self.echo:
                self._await_echo(*answer["echo"])
            result = answer["result"]
            if result is None:
                return lost_attempt(spec, 0, "The Dask worker dropped the task before it finished.")
            return commit_detached(self._store, spec, result)
        if status == "error":
            exc = future.exception()
            if type(exc).__name__ == "KilledWorker":
                return lost_attempt(
                    spec,
                    0,
                    "Every Dask worker that ran the task died while running it (Dask gave up after "
                    f"retrying it on others: {exc}); nothing of it was committed.",
                )
            from cafstore.runner.execution.executors.child import crash_text, describe_internal_error

            text = crash_text(spec, exc)
            return lost_attempt(spec, 0, describe_internal_error(exc, text)["message"], traceback=text, internal=True)
        if self.client.status != "running":
            return lost_attempt(spec, 0, _SCHEDULER_LOST)
        return lost_attempt(spec, 0, f"The Dask scheduler dropped the task ({status}); nothing of it was committed.")

    def _echo(self, event: Any) -> None:
        """A chunk of a remote task's echoed output, written to this process's stdout or stderr at once."""
        message = event[1] if isinstance(event, tuple) else event
        try:
            os.write(2 if message.get("fd") == 2 else 1, str(message.get("text", "")).encode("utf-8", "replace"))
        except (OSError, AttributeError):
            pass
        with self._echo_lock:
            host, seq = message.get("host"), message.get("seq") or 0
            if host is not None and seq > self._echoed.get(host, 0):
                self._echoed[host] = seq
            self._echo_lock.notify_all()

    def _await_echo(self, host: str, seq: int, timeout: float = 2.0) -> None:
        """Wait (briefly) until a task's echo up to ``seq`` was shown: its lines come before its end."""
        end = time.monotonic() + timeout
        with self._echo_lock:
            while self._echoed.get(host, 0) < seq and time.monotonic() < end:
                self._echo_lock.wait(max(0.0, end - time.monotonic()))

    def kill(self) -> None:
        """Cancel every running attempt; each worker then kills its attempt's process group."""
        futures = list(self._pending)
        self._pending.clear()
        if futures:
            try:
                self.client.cancel(futures, force=True)
            except Exception:  # noqa: BLE001 - a scheduler already gone has nothing left to cancel
                pass

    def shutdown(self) -> None:
        self.kill()
        if self._store is not None:
            self._store.close()
        if self.echo:
            try:
                self.client.unsubscribe_topic(self.topic)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        dask_cluster.close(self.client, self.cluster)


def resource_request(wanted: Dict[str, float], client: Any) -> Optional[Dict[str, float]]:
    """``@resources`` options as Dask resources, keeping only those some worker declares.

    A worker declares what it has with ``dask worker --resources "cpu=4 gpu=1 memory=16e9"``;
    Dask then runs the task only on a worker with enough.  Resources no worker
    declares are ignored, as a local run ignores them all (else the task would wait forever).
    ``memory`` and ``disk`` are in MB as in Metaflow and become bytes.  A request that no worker
    has enough of is a ClusterError (Dask would keep the task waiting forever).
    """
    workers = [info.get("resources") or {} for info in client.scheduler_info().get("workers", {}).values()]
    declared = {name for have in workers for name in have}
    out = {}
    for name, value in wanted.items():
        if name in declared:
            out[name] = float(value) * (1 << 20 if name in ("memory", "disk") else 1)
    if out and not any(all(have.get(name, 0) >= amount for name, amount in out.items()) for have in workers):
        offered = "; ".join(", ".join(f"{k}={v:g}" for k, v in sorted(have.items())) or "none" for have in workers)
        raise ClusterError(
            f"@resources asks for {', '.join(f'{k}={v:g}' for k, v in sorted(out.items()))} (memory and disk in "
            f"bytes), but no Dask worker of the cluster has that much; the workers offer: {offered}. Lower "
            "the request or start a worker with --resources to match."
        )
    return out or None


def forwarded_environment(environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The coordinator's variables that ``CAFSTORE_DASK_ENV`` names (``NAME`` or ``PREFIX_*``, comma-separated).

    A worker runs tasks in its own environment, not the coordinator's (which
    names paths of this machine); these are copied on top of it.
    """
    env = os.environ if environ is None else environ
    patterns = [p.strip() for p in env.get(FORWARD_VARIABLE, "").split(",") if p.strip()]
    out = {}
    for name, value in env.items():
        if any(name == p or (p.endswith("*") and name.startswith(p[:-1])) for p in patterns):
            out[name] = value
    return out
