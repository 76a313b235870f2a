"""``run``: from a validated flow class to a finished run.

Order matters for the user: every mistake that can be found before the run
exists (parameters, options, the run-id file) is reported first, so a
failed command line never leaves a half-made run behind.  Then the run ref
is created (one transaction), the run-id file written, the scheduler run,
and the run marked succeeded or failed.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
from typing import Any, Callable, Dict, Iterable, Optional, TextIO

from cafstore.exception import CommandLineError
from cafstore.runner.authoring.parameters import resolve_all
from cafstore.runner.execution import executors
from cafstore.runner.execution.config import RunnerConfig
from cafstore.runner.execution.logs import local_stamp
from cafstore.runner.execution.runs import clean_tags, finish_run, start_run
from cafstore.runner.execution.scheduler import Interrupted, RunContext, Scheduler
from cafstore.schema import current_user as username

_UNSET: Any = object()


def flow_file_of(flow_cls: type) -> str:
    """Absolute path of the file that defines ``flow_cls``."""
    module = sys.modules.get(flow_cls.__module__)
    path = getattr(module, "__file__", None) or inspect.getsourcefile(flow_cls)
    if not path:
        raise CommandLineError(f"Cannot tell which file defines {flow_cls.__name__}; run flows from a .py file.")
    return os.path.abspath(path)


def make_executor(config: RunnerConfig, flow_cls: type, store_path: Optional[str] = None) -> executors.Executor:
    """The executor the config names, built through the registry (any registered one works).

    ``store_path``: the run's store, checked by the executor's ``prepare`` (a remote executor's
    workers must reach its blobs); a failure there shuts the executor down again.
    """
    settings = {"scheduler_address": config.dask_scheduler} if config.executor == "dask" else {}
    made = executors.create(config.executor, flow_cls=flow_cls, kill_grace=config.kill_grace, **settings)
    if store_path is not None:
        try:
            made.prepare(store_path)
        except BaseException:
            made.shutdown()
            raise
    return made


def run_flow(
    flow_cls: type,
    graph: Any,
    store_path: Optional[str],
    namespace: Any,
    tags: Iterable[str],
    max_workers: Optional[int],
    max_num_splits: Optional[int],
    run_id_file: Optional[str],
    param_values: Dict[str, Optional[str]],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    extra_system_tags: Iterable[str] = (),
    params: Optional[Dict[str, Any]] = None,
    origin_run_id: Optional[int] = None,
    resumed_from: Optional[int] = None,
    reuse: Optional[Callable[..., Any]] = None,
    executor: Optional[str] = None,
) -> int:
    """Run the flow; the process exit code (0 succeeded, 1 failed, 130 interrupted).

    For resume: ``params`` (values by attribute) replace the command line's; ``origin_run_id`` and
    ``resumed_from`` go into the run ref and ``current``; ``reuse(store, run)`` returns the
    scheduler's ``reuse(spec)`` hook, a :class:`~cafstore.runner.reuse.hook.Reuser`.
    ``executor``: the registered executor's name (``--executor``; None: the environment's, else the default).
    """
    from cafstore.store import Store
    from cafstore.store.discover import discover_path

    config = RunnerConfig.from_env(executor=executor, max_workers=max_workers, max_num_splits=max_num_splits)
    user = username()
    user_tags = clean_tags(tags)
    if params is None:
        params = resolve_all(flow_cls, param_values, user)
    flow_file = flow_file_of(flow_cls)
    if run_id_file:
        _write_run_id_file(run_id_file, "")  # fail on a bad path before the run exists
    store_dir = os.path.abspath(discover_path(explicit=store_path))
    os.environ["CAFSTORE_HOME"] = store_dir  # client calls inside steps read the same store
    effective_ns = (namespace or None) if namespace is not None else f"user:{user}"
    # The steps' client calls look there (inherited through the environment), whatever default
    # `cafstore namespace set` saved for notebooks: current.namespace and the client agree.
    from cafstore.client.namespaces import apply_flow_namespace

    apply_flow_namespace(effective_ns)

    store = Store(store_dir)
    executor = make_executor(config, flow_cls, store_dir)  # a cluster that cannot be used: no run is made
    try:
        run = start_run(
            store,
            flow_cls.__name__,
            flow_file,
            graph.to_dict(),
            params,
            user,
            user_tags,
            origin_run_id=origin_run_id,
            extra_system_tags=extra_system_tags,
            resumed_from=resumed_from,
        )
    except BaseException:
        executor.shutdown()
        raise
    if run_id_file:
        _write_run_id_file(run_id_file, str(run.run_id))
    out.write(
        f"{local_stamp()} Workflow starting (run-id {run.run_id}): {run.pathspec}, user {user}"
        + (f", tags {', '.join(map(repr, user_tags))}" if user_tags else "")
        + ".\n"
    )
    ctx = RunContext(
        run, store_dir, flow_file, flow_cls.__name__, os.path.dirname(flow_file), effective_ns, origin_run_id
    )
    hook = reuse(store, run) if reuse is not None else None
    scheduler = Scheduler(graph, flow_cls, ctx, store, executor, config, out, err, reuse=hook)
    try:
        ok = scheduler.run()
    except Interrupted:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the bookkeeping finish
        finish_run(store, run.flow, run.run_id, "failed")
        out.flush()
        err.write(f"Run {run.pathspec} interrupted: every task was stopped and the run is marked failed.\n")
        return 130
    except BaseException:
        finish_run(store, run.flow, run.run_id, "failed")  # never leave a dead run marked running
        raise
    if hook is not None:
        hook.remember_successes(run.flow, run.run_id)  # memoised steps: file what ran for next time
    finish_run(store, run.flow, run.run_id, "succeeded" if ok else "failed")
    if os.environ.get("CAFSTORE_PROFILE"):
        err.write(scheduler.profile_report())
    if ok:
        out.write(f"{local_stamp()} Done! Run {run.pathspec} succeeded ({scheduler.tasks_done} tasks).\n")
        return 0
    out.flush()
    err.write(f"Run {run.pathspec} failed.\n")
    return 1


def _write_run_id_file(path: str, content: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
    except OSError as exc:
        raise CommandLineError(
            f"Cannot write the run-id file {path!r} (--run-id-file): {exc.strerror or exc}."
        ) from exc
