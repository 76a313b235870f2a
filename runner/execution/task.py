"""What runs inside a task process: one attempt of one step.

:func:`execute` builds the step's ``self`` (inputs loaded lazily), runs the
step under ``@timeout`` / ``@catch``, stores the artifacts that changed,
and commits the task record and the task's ref in one LMDB transaction
(docs/datamodel.md).  It never raises: every outcome, including a bug of
cafstore's own, comes back as a :class:`~cafstore.runner.execution.spec.TaskResult`.
Retries are the scheduler's business: each attempt is a fresh process.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

import cafstore
from cafstore import schema
from cafstore.client import inflight
from cafstore.exception import CafstoreError, ForeachError, RunClosed, TransitionError, exception_type_name
from cafstore.runner.authoring import mutators
from cafstore.runner.authoring.artifacts import Inputs, InputView, TaskState
from cafstore.runner.authoring.configs import configure_from_artifacts
from cafstore.runner.authoring.constants import constant_ids
from cafstore.runner.authoring.current import bind_current, clear_current
from cafstore.runner.authoring.decorators import StepOptions, step_options
from cafstore.runner.authoring.project import project_fields
from cafstore.runner.authoring.user_decorators import call_wrapped, user_decorators
from cafstore.runner.authoring.with_option import apply_specs
from cafstore.runner.execution import commit, failures, logs
from cafstore.runner.execution.foreach import count_splits
from cafstore.runner.execution.spec import TaskResult, TaskSpec
from cafstore.runner.execution.switch import chosen_step
from cafstore.schema.tags import system_tag_prefix
from cafstore.store import ObjectId, Store, serialize
from cafstore.store.detached import DetachedStore
from cafstore.store.objectid import hash_pieces

_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, frozenset)
_HOST: Optional[str] = None
# cafstore's own frames are cut from the tracebacks users see: the package and the runner's tree.
_INTERNAL_DIRS = (
    os.path.dirname(os.path.abspath(cafstore.__file__)) + os.sep,
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,  # runner/
)


_STORES: Dict[str, Store] = {}


def warm(store_path: Optional[str] = None) -> None:
    """Prepare in the scheduler what every forked task would otherwise redo: the host name and the
    Store object (a Store holds no LMDB handle until used, and reopens its own after a fork)."""
    global _HOST
    if _HOST is None:
        _HOST = socket.gethostname()
        logs.unbuffered_streams()
    if store_path is not None and store_path not in _STORES:
        _STORES[store_path] = Store(store_path)
    if store_path is not None:
        _STORES[store_path].blobs.warm()  # an S3 store's client library, loaded once tasks need it


def store_at(path: str) -> Store:
    """This process's Store for ``path``: the one the scheduler warmed, inherited by a fork."""
    store = _STORES.get(path)
    if store is None:
        store = _STORES[path] = Store(path)
    return store


def execute(
    spec: TaskSpec,
    flow_cls: type,
    echo: bool = True,
    channels: Optional[logs.Channels] = None,
    store: Optional[Any] = None,
) -> TaskResult:
    """Run one attempt of ``spec``; the result says how it went (never raises).

    ``channels``: the pipes and journal a local executor made for the task's output
    (:class:`~cafstore.runner.execution.logs.Channels`), so that it outlives the task.
    ``store``: a :class:`~cafstore.store.detached.DetachedStore` for a task that may not open the
    index (a remote worker); it then commits nothing and returns its bundle in ``result.detached``.
    """
    warm()
    started = time.time()
    pid = os.getpid()
    clock = _Clock()
    try:
        if store is None:
            store = store_at(spec.store_path)
        clock.lap("store")
        flow, state = _build(spec, flow_cls, store)
        clock.lap("inputs")
        configure_from_artifacts(flow_cls, state.load)  # the run's configurations, before any option is read
        # Mutators, then --with, then mutators' second phase, as the flow command did; each is a
        # no-op where the scheduler's process already did it (fork).
        mutators.pre_mutate(flow_cls)
        if spec.with_decorators:
            apply_specs(flow_cls, spec.with_decorators)
        mutators.mutate(flow_cls)
        clock.lap("decorators")
        options = step_options(getattr(flow_cls, spec.step))
        _set_current(spec, flow_cls)
        clock.lap("current")
        _show_running(spec, started)
    except BaseException as exc:  # noqa: BLE001 - reported, never swallowed
        clear_current()
        inflight.clear()
        return TaskResult(spec.task_id, spec.step, spec.attempt, "failed", error=_describe(exc), pid=pid)
    clock.lap("setup")
    capture = logs.Capture(f"{spec.pathspec} (pid {pid})", echo=echo, channels=channels)
    error: Optional[Dict[str, Any]] = None
    num_splits = foreach_var = None
    ids: Dict[str, ObjectId] = dict(state.ids)
    new: List[str] = []
    small: List[Tuple[str, Any]] = []
    capture.start()
    clock.lap("capture_start")
    try:
        error = _run_step(flow, state, spec, options)
        clock.lap("step")
        if error is None:
            num_splits, foreach_var = _check_transition(flow, state, spec)
            ids, new, small = _persist(store, flow, state, spec.recheck_max_bytes)
    except BaseException as exc:  # noqa: BLE001 - a bad foreach, an unserialisable artifact, ...
        error = _describe(exc)
    finally:
        clock.lap("persist")
        out, err = capture.stop()
        clear_current()
        inflight.clear()
        clock.lap("capture_stop")
    if error is not None:  # a failed task splits nothing, whichever phase failed (storing a split's list too)
        ids, new, small, num_splits, foreach_var = dict(state.ids), [], [], None, None
        err += _stamped(error["traceback"] or f"{error['type']}: {error['message']}")
    outcome = commit.Outcome(ids, new, small, out, err, error, num_splits, started, _HOST)
    bundle = None
    try:
        if isinstance(store, DetachedStore):
            record_id, bundle = commit.detach(store, spec, outcome)
        else:
            record_id = commit.commit(store, spec, outcome)
    except RunClosed as exc:  # nobody may be waiting for this result: say it where a human may see it
        _say_quietly(str(exc))
        failure = dict(_describe(exc), run_closed=True)
        return TaskResult(spec.task_id, spec.step, spec.attempt, "failed", error=failure, pid=pid)
    except BaseException as exc:  # noqa: BLE001
        failure = error or _describe(exc)
        return TaskResult(spec.task_id, spec.step, spec.attempt, "failed", error=failure, pid=pid)
    clock.lap("commit")
    return TaskResult(
        spec.task_id,
        spec.step,
        spec.attempt,
        "failed" if error else "ok",
        record=str(record_id),
        num_splits=num_splits,
        foreach_values=str(ids[foreach_var]) if foreach_var else None,
        next_steps=list(state.transition[0]) if error is None and state.transition else None,
        error=error,
        pid=pid,
        timings=clock.laps,
        detached=bundle,
    )


class _Clock:
    """``time.perf_counter`` probes: seconds spent in each phase of a task.

    With ``CAFSTORE_PROFILE`` set, page faults per phase too (``faults_<phase>``, counted as
    seconds' place-holders): copy-on-write faults after fork are a large part of a small task's cost.
    """

    def __init__(self) -> None:
        self.laps: Dict[str, float] = {}
        self._faults = _faults if os.environ.get("CAFSTORE_PROFILE") else None
        self._last = time.perf_counter()
        self._last_faults = self._faults() if self._faults else 0

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.laps[phase] = self.laps.get(phase, 0.0) + now - self._last
        self._last = now
        if self._faults:
            faults = self._faults()
            key = "faults_" + phase
            self.laps[key] = self.laps.get(key, 0.0) + (faults - self._last_faults) / 1000
            self._last_faults = faults


def _faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# -- building the step's self ---------------------------------------------------
def _build(spec: TaskSpec, flow_cls: type, store: Store) -> Tuple[Any, TaskState]:
    params = {name: ObjectId(oid) for name, oid in spec.params.items()}
    inputs = None
    if spec.is_join:
        ids = dict(params)
        inputs = Inputs([InputView(store, ObjectId(p), s, flow_cls) for p, s in zip(spec.parents, spec.parent_steps)])
    elif spec.parents:
        ids = dict(store.get_record(ObjectId(spec.parents[0])).get("artifacts", {}))
        ids.update(params)
    else:
        ids = dict(params)
    ids.update(constant_ids(store, flow_cls, spec.parents, spec.is_join))
    state = TaskState(
        store, spec.flow_name, spec.step, ids, list(params), spec.foreach_stack, spec.is_join, spec.parents, inputs
    )
    flow = flow_cls.__new__(flow_cls)
    object.__setattr__(flow, "_cafstore_state", state)
    return flow, state


def _set_current(spec: TaskSpec, flow_cls: type) -> None:
    bind_current(
        flow_name=spec.flow_name,
        run_id=str(spec.run_id),
        step_name=spec.step,
        task_id=str(spec.task_id),
        origin_run_id=None if spec.origin_run_id is None else str(spec.origin_run_id),
        namespace=spec.namespace,
        username=spec.user,
        retry_count=spec.attempt,
        parameter_names=list(spec.params),
        tags={tag for tag in spec.tags if system_tag_prefix(tag) is None},  # Metaflow: user tags only
        project=project_fields(spec.flow_name, spec.tags),
        flow_class=flow_cls,
        store_path=spec.store_path,
    )


def _show_running(spec: TaskSpec, started: float) -> None:
    """Let the step open its own task, step and run through the client while it runs
    (cafstore.client.inflight): registered in this process only, nothing is written."""
    inflight.register(
        spec.store_path,
        schema.running_task_record(**spec.record_fields(), started=started, hostname=_HOST or "", pid=os.getpid()),
    )


# -- running it -------------------------------------------------------------------
def _run_step(flow: Any, state: TaskState, spec: TaskSpec, options: StepOptions) -> Optional[Dict[str, Any]]:
    """Call the step (under @timeout, @catch: failures.py); None if the task goes on, else what it raised."""
    body = failures.step_body(flow, spec, options)
    if not options.is_fallback(spec.attempt) and user_decorators(getattr(type(flow), spec.step)):
        body = _wrapped(flow, state, spec, body)
    try:
        with _environment(options.environment):
            failures.call_with_timeout(body, spec, options)
    except BaseException as exc:  # noqa: BLE001 - the step's own failure, reported in full
        error = _describe(exc)
        if isinstance(exc, Exception) and failures.catches(spec, options):
            failures.rescue(flow, state, spec, options, exc, error)
            return None
        return error
    failures.succeeded(flow, options)
    return None


def _wrapped(flow: Any, state: TaskState, spec: TaskSpec, call: Any) -> Any:
    """The step under its user decorators; a skipped step goes on to its successors as if it had called next."""

    def body() -> None:
        inputs = state.inputs if spec.is_join else None
        if call_wrapped(flow, spec.step, call, inputs) and state.transition is None:
            state.transition = (list(spec.node.get("out_funcs", [])), spec.node.get("foreach"))

    return body


@contextlib.contextmanager
def _environment(variables: Dict[str, str]) -> Any:
    """@environment(vars=...): seen by the step and what it starts, put back afterwards."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_transition(flow: Any, state: TaskState, spec: TaskSpec) -> Tuple[Optional[int], Optional[str]]:
    """Check self.next(...) against the graph; for a foreach, count the items."""
    expected = (list(spec.node.get("out_funcs", [])), spec.node.get("foreach"))
    if spec.node.get("type") == "end":
        return None, None
    if spec.node.get("type") == "split-switch":
        chosen_step(spec.step, expected[0], state.transition)
        return None, None
    if state.transition is None:
        raise TransitionError(
            f"Step {spec.step!r} returned without calling self.next(...); its last line "
            f"must be self.next(...) (it goes to {', '.join(expected[0])})."
        )
    if tuple(state.transition) != expected:
        raise TransitionError(
            f"Step {spec.step!r} called self.next with {state.transition}, but its source "
            f"says {expected}: did the file change while the flow was running?"
        )
    var = expected[1]
    if var is None:
        return None, None
    try:
        items = getattr(flow, var)
    except AttributeError as exc:
        raise ForeachError(
            f"self.next(..., foreach={var!r}) in step {spec.step!r}: there is no artifact "
            f"self.{var} to iterate over. Assign the list first, e.g. self.{var} = [...]."
        ) from exc
    return count_splits(items, var, spec.step), var


# -- storing what it made -----------------------------------------------------------
def _persist(
    store: Store, flow: Any, state: TaskState, recheck_max: int
) -> Tuple[Dict[str, ObjectId], List[str], List[Tuple[str, Any]]]:
    """Serialise assigned artifacts (and read ones that may have changed in place).

    Large values are written now, outside the record's transaction; small
    ones are returned to be written inside it.
    """
    values = flow.__dict__
    ids = {name: oid for name, oid in state.ids.items() if name not in state.deleted}
    new: List[str] = []
    small: List[Tuple[str, Any]] = []
    threshold = store.config.inline_threshold

    def keep(name: str, blob: Any) -> None:
        new.append(name)
        if blob.size > threshold:
            ids[name] = store.put_serialized(blob)
        else:
            small.append((name, blob))

    for name in sorted(state.assigned):
        if name in values:
            keep(name, serialize.dumps(values[name], name))
    for name in sorted(state.accessed - state.assigned - state.deleted - state.params):
        value = values.get(name)
        if name not in values or state.sizes.get(name, 0) > recheck_max or _immutable(value):
            continue
        blob = serialize.dumps(value, name)
        if hash_pieces(blob.pieces, blob.size) != state.ids.get(name):
            keep(name, blob)  # changed in place, e.g. self.items.append(x)
    return ids, new, small


def _immutable(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(type(item) in _IMMUTABLE for item in value)
    return type(value) in _IMMUTABLE


# -- describing failures -------------------------------------------------------------
def describe_failure(exc: BaseException) -> Dict[str, Any]:
    """A failure as plain data: type, message, the user's part of the traceback, where it happened.

    Public because a task process describes failures outside :func:`execute`
    the same way (a flow file that fails to import in a spawned task).
    """
    summary = traceback.TracebackException.from_exception(exc)
    _trim(summary, set())
    frames = list(summary.stack)
    user_error = isinstance(exc, CafstoreError)
    return {
        "type": exception_type_name(exc).replace("builtins.", ""),
        "message": str(exc),
        "traceback": "".join(summary.format()),
        "headline": getattr(exc, "headline", ""),
        "where": f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "",
        "user_error": user_error,
    }


_describe = describe_failure  # the short name this module's own code uses


def _trim(summary: traceback.TracebackException, seen: set) -> None:
    """Drop cafstore's own frames (the user did not write them), in the whole exception chain."""
    if id(summary) in seen:
        return
    seen.add(id(summary))
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack if not frame.filename.startswith(_INTERNAL_DIRS)]
    )
    for linked in (summary.__cause__, summary.__context__):
        if linked is not None:
            _trim(linked, seen)


def _say_quietly(text: str) -> None:
    """One line on the task's stderr (the terminal the run started from), never raising."""
    try:
        os.write(2, f"{logs.local_stamp()} {text}\n".encode("utf-8", "replace"))
    except OSError:
        pass  # no terminal any more: the result (if anyone reads it) still says why


def _stamped(text: str) -> bytes:
    now = logs.utc_stamp(time.time())
    return "".join(f"{now} {line}\n" for line in text.rstrip("\n").splitlines()).encode("utf-8", "replace")
