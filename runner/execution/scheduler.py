"""The scheduler: which task runs when.

One process owns the queue.  It starts the start task, and whenever an
attempt ends it decides what becomes ready: the next step of a linear
step, every branch of a split, one task per item of a foreach (after
checking ``--max-num-splits``), and a join once all its inputs are done.
At most ``--max-workers`` attempts run at once.

Failure policy: a failed attempt is retried (``@retry``) after its delay
without holding up other tasks; a task that fails for good prints its
traceback headed by its pathspec, lets the running tasks finish, starts no
new ones, and the run ends failed.  Ctrl-C (or SIGTERM) stops every task.

The scheduler never holds the store's LMDB environment while tasks are
being started (tasks are forks of this process); it opens it only to write
the record of a task whose process died, and closes it again.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import signal
import sys
import time
from typing import Any, Callable, Deque, Dict, List, Optional, TextIO, Tuple, Union

from cafstore.runner.authoring.decorators import StepOptions, step_options
from cafstore.runner.authoring.with_option import applied_specs
from cafstore.runner.execution import switch
from cafstore.runner.execution.config import RunnerConfig
from cafstore.runner.execution.executors.base import Executor
from cafstore.runner.execution.foreach import FanOutProgress
from cafstore.runner.execution.logs import crash_note, local_stamp
from cafstore.runner.execution.runs import RunInfo, record_lost_task
from cafstore.runner.execution.spec import TaskResult, TaskSpec


@dataclasses.dataclass
class RunContext:
    """The parts of every TaskSpec that are the same for the whole run."""

    run: RunInfo
    store_path: str
    flow_file: str
    flow_class: str
    cwd: str
    namespace: Optional[str]
    origin_run_id: Optional[int] = None


class Interrupted(Exception):
    """Ctrl-C or SIGTERM reached the scheduler."""


class Scheduler:
    """Runs one run of a flow to its end on an :class:`~cafstore.runner.execution.executors.base.Executor`."""

    def __init__(
        self,
        graph: Any,
        flow_cls: type,
        ctx: RunContext,
        store: Any,
        executor: Executor,
        config: RunnerConfig,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        reuse: Optional[Callable[[TaskSpec], Optional[TaskResult]]] = None,
    ) -> None:
        """``reuse(spec)``: resume and memoisation plug in here. Asked before a task's first attempt
        starts, it may return a successful TaskResult for a record that already exists (having
        pointed the new task's ref at it); the task is then not run, and scheduling goes on as
        if it had just finished. It may use the store: handles are closed before every fork."""
        self.graph, self.ctx, self.store, self.executor, self.config = graph, ctx, store, executor, config
        self.reuse = reuse
        self.out, self.err = out, err
        self.with_decorators = applied_specs(flow_cls)  # task processes that import the flow anew redo them
        self.options: Dict[str, StepOptions] = {n.name: step_options(getattr(flow_cls, n.name)) for n in graph}
        self.ready: Deque[Union[TaskSpec, _Split]] = collections.deque()
        self.timers: List[Tuple[float, int, TaskSpec]] = []
        self.joins: Dict[Tuple[str, tuple], Dict[str, Any]] = {}
        self.branch_rank = {n.name: _branch_ranks(graph, n) for n in graph if n.type == "join"}
        self.next_task_id = 1
        self.failed = False
        self.finished_end = False
        self.tasks_done = 0
        self._specs: Dict[int, TaskSpec] = {}  # by task id: started, waiting to start, or waiting to retry
        self.profile: Dict[str, float] = collections.defaultdict(float)  # seconds per phase, all tasks
        self.fanout = FanOutProgress(out, f"{ctx.run.flow}/{ctx.run.run_id}")

    # -- the loop --------------------------------------------------------------
    def run(self) -> bool:
        """Run every task; True if the run succeeded.  Raises :class:`Interrupted` on Ctrl-C."""
        self.store.close()  # no LMDB handle may be open while tasks fork from this process
        self.ready.append(self._spec("start", [], [], []))
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
        try:
            while True:
                self._launch()
                if not self.executor.running and (self.failed or not (self.ready or self.timers)):
                    break
                wait = None
                if self.timers and not self.failed:
                    wait = max(0.0, self.timers[0][0] - time.monotonic())
                waited = time.perf_counter()
                results = self.executor.wait(wait)
                self.profile["scheduler_wait"] += time.perf_counter() - waited
                for result in results:
                    self._handle(result)
                while self.timers and self.timers[0][0] <= time.monotonic() and not self.failed:
                    self.ready.append(heapq.heappop(self.timers)[2])
        except KeyboardInterrupt as exc:
            self.executor.kill()
            raise Interrupted() from exc
        except Interrupted:
            self.executor.kill()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.executor.shutdown()
            self.fanout.close()
        if not self.finished_end and not self.failed:
            waiting = ", ".join(sorted(join for join, _ in self.joins)) or "none"
            self._error(
                f"Error: the run stopped before its end step with nothing left to run "
                f"(joins still waiting for inputs: {waiting}). This is a bug in cafstore; please report it."
            )
        return self.finished_end and not self.failed

    def _launch(self) -> None:
        while self.ready and not self.failed and self.executor.running < self.config.max_workers:
            head = self.ready[0]
            if isinstance(head, _Split):
                task_id, stack = head.take()
                if head.left == 0:
                    self.ready.popleft()
                spec = self._spec(head.target, [head.record], [head.parent.step], stack, task_id=task_id)
            else:
                spec = self.ready.popleft()
            if self.reuse is not None and spec.attempt == 0:
                reused = self.reuse(spec)
                if reused is not None:  # the hook has said where the record came from
                    self._handle(reused, announce=False)
                    continue
            options = self.options[spec.step]
            if options.is_fallback(spec.attempt):
                self._say(f"[{spec.pathspec}] Task fallback is starting to handle the failure (@catch).")
            else:
                self._say(
                    f"[{spec.pathspec}] Task is starting"
                    + (f" (attempt {spec.attempt + 1} of {options.attempts})." if spec.attempt else ".")
                )
            hard_limit = options.timeout + self.config.kill_grace if options.timeout else None
            started = time.perf_counter()
            self.executor.submit(spec, timeout=hard_limit)
            self.profile["scheduler_submit"] += time.perf_counter() - started

    # -- results -----------------------------------------------------------------
    def _handle(self, result: TaskResult, announce: bool = True) -> None:
        spec = self._specs.pop(result.task_id)
        for phase, seconds in result.timings.items():
            self.profile["task_" + phase] += seconds
        label = f"[{spec.pathspec} (pid {result.pid})]"
        if result.ok:
            self.tasks_done += 1
            self.fanout.task_ended(spec.step)
            if announce:
                self._say(f"{label} Task finished successfully.")
            self._advance(spec, result)
            return
        error = result.error or {"type": "TaskFailed", "message": "unknown failure", "traceback": ""}
        closed = bool(error.get("run_closed"))  # the run takes no more tasks: no record, no retry
        if result.record is None and not closed:
            stderr = TaskResult.log_bytes(result.stderr) + crash_note(error)
            output = (TaskResult.log_bytes(result.stdout), stderr)
            result.record = self._write_lost_record(spec, error["message"], *output)
        if spec.attempt + 1 < spec.max_attempts and not self.failed and not closed:
            options = self.options[spec.step]
            fallback = options.is_fallback(spec.attempt + 1)  # @catch stands in for a process that kept dying
            delay = 0.0 if fallback else options.minutes_between_retries * 60
            of = (
                f"attempt {spec.attempt + 1} of {options.attempts}"
                if not options.is_fallback(spec.attempt)
                else "fallback"
            )
            self._say(
                f"{label} Task failed ({of}): {_short(error).rstrip('.')}. "
                + ("@catch's fallback attempt follows." if fallback else "Retrying")
                + ("" if fallback else (f" in {delay:g} s." if delay else " now."))
            )
            retry = dataclasses.replace(spec, attempt=spec.attempt + 1, previous_attempt=result.record)
            self._specs[retry.task_id] = retry
            heapq.heappush(self.timers, (time.monotonic() + delay, retry.task_id, retry))
            return
        self.failed = True
        self._report_failure(spec, result, error)

    def _advance(self, spec: TaskSpec, result: TaskResult) -> None:
        node = self.graph[spec.step]
        if node.type == "end":
            self.finished_end = True
            return
        record = result.record
        if node.foreach_param is not None:
            count = result.num_splits or 0
            if count > self.config.max_num_splits:
                self.failed = True
                self._error(
                    f"Error: bad foreach: step {spec.step!r} (task {spec.pathspec}) splits into {count} tasks over "
                    f"self.{node.foreach_param}, more than the limit of {self.config.max_num_splits}. None of them "
                    f"was started. Raise the limit with --max-num-splits {count} (or "
                    f"CAFSTORE_RUN_MAX_NUM_SPLITS={count}), or split over fewer items."
                )
                return
            target = node.out_funcs[0]
            self.fanout.split(target, count)
            if count:
                self.ready.append(
                    _Split(target, spec, record, node.foreach_param, count, result.foreach_values, self.next_task_id)
                )
                self.next_task_id += count
            return
        if node.type == "split-switch":  # one case, never a join (the rules see to that); maybe itself again
            self.ready.append(
                self._spec(switch.successor(node, result.next_steps), [record], [spec.step], spec.foreach_stack)
            )
            return
        for target in node.out_funcs:
            if self.graph[target].type == "join":
                self._arrive(target, spec, record)
            else:
                self.ready.append(self._spec(target, [record], [spec.step], spec.foreach_stack))

    def _arrive(self, join: str, spec: TaskSpec, record: str) -> None:
        """Count one input of a join; start the join when all of its inputs are in."""
        closes = self.graph[join].split_parents[-1]
        stack = spec.foreach_stack
        if self.graph[closes].type == "foreach":
            position = max(i for i, frame in enumerate(stack) if frame["step"] == closes)
            outer, slot, expected = stack[:position], stack[position]["index"], stack[position]["num_splits"]
        else:  # one input per branch of the split, whichever path (switch case) each branch took
            outer, slot, expected = stack, self.branch_rank[join][spec.step], len(self.graph[closes].out_funcs)
        key = (join, tuple((frame["step"], frame["index"]) for frame in outer))
        waiting = self.joins.setdefault(key, {})
        waiting[slot] = (record, spec.step)
        if len(waiting) == expected:
            del self.joins[key]
            arrived = [waiting[slot] for slot in sorted(waiting)]
            self.ready.append(self._spec(join, [r for r, _ in arrived], [s for _, s in arrived], outer))

    # -- helpers -------------------------------------------------------------------
    def _spec(
        self,
        step: str,
        parents: List[str],
        parent_steps: List[str],
        stack: List[dict],
        task_id: Optional[int] = None,
    ) -> TaskSpec:
        """A new task's spec; ``task_id``: one reserved earlier (a foreach's, see ``_Split``), else the next."""
        node = self.graph[step]
        ctx, run = self.ctx, self.ctx.run
        if task_id is None:
            task_id = self.next_task_id
            self.next_task_id += 1
        spec = TaskSpec(
            flow_name=run.flow,
            run_id=run.run_id,
            step=step,
            task_id=task_id,
            attempt=0,
            max_attempts=self.options[step].max_attempts,
            store_path=ctx.store_path,
            flow_file=ctx.flow_file,
            flow_class=ctx.flow_class,
            cwd=ctx.cwd,
            code=str(run.code),
            node={"type": node.type, "out_funcs": list(node.out_funcs), "foreach": node.foreach_param},
            params={k: str(v) for k, v in run.params.items()},
            parents=list(parents),
            parent_steps=list(parent_steps),
            foreach_stack=list(stack),
            user=run.user,
            namespace=ctx.namespace,
            tags=run.tags,
            recheck_max_bytes=self.config.recheck_max_bytes,
            origin_run_id=ctx.origin_run_id,
            with_decorators=self.with_decorators,
        )
        self._specs[spec.task_id] = spec
        return spec

    def _write_lost_record(self, spec: TaskSpec, message: str, stdout: bytes, stderr: bytes) -> Optional[str]:
        try:
            return str(record_lost_task(self.store, spec, message, stdout=stdout, stderr=stderr))
        except Exception as exc:  # noqa: BLE001 - the run fails anyway; say why the record is missing
            self._error(f"(could not record the failure of {spec.pathspec} in the store: {exc})")
            return None
        finally:
            self.store.close()

    def _report_failure(self, spec: TaskSpec, result: TaskResult, error: Dict[str, Any]) -> None:
        attempts = f", attempt {spec.attempt + 1} of {spec.max_attempts}" if spec.max_attempts > 1 else ""
        if self.options[spec.step].is_fallback(spec.attempt):
            attempts = f", @catch's fallback attempt {spec.attempt + 1}"
        if error.get("user_error"):
            where = f" at {error['where']}" if error.get("where") else ""
            self._error(
                f"Error: {error.get('headline') or 'task failed'} in step {spec.step!r} "
                f"(task {spec.pathspec}{attempts}){where}: {error['message']}"
            )
        else:
            self._error(
                f"Step {spec.step!r} failed (task {spec.pathspec}{attempts}, pid {result.pid}):\n"
                f"{error['traceback'].rstrip()}"
            )

    def profile_report(self) -> str:
        """Where the time went (``CAFSTORE_PROFILE=1``): total and per-task milliseconds per phase."""
        count = max(1, self.tasks_done)
        lines = [f"profile over {self.tasks_done} finished tasks (ms total / ms per task):"]
        for phase, seconds in sorted(self.profile.items()):
            lines.append(f"  {phase:<24} {seconds * 1000:10.1f} {seconds * 1000 / count:8.2f}")
        return "\n".join(lines) + "\n"

    def _say(self, text: str) -> None:
        self.out.write(f"{local_stamp()} {text}\n")

    def _error(self, text: str) -> None:
        self.out.flush()
        self.err.write(text.rstrip() + "\n")
        self.err.flush()


class _Split:
    """The tasks of one foreach split not started yet; the scheduler makes their specs one at a time
    as workers free up.

    A 100,000-way foreach would otherwise hold 100,000 specs in the ready queue at once
    (about 1.5 KiB each). Their task ids are reserved together at the split (from
    ``first_id``), so they are the same consecutive ids an eager expansion would give.
    """

    __slots__ = ("target", "parent", "record", "var", "count", "values", "first_id", "next_index")

    def __init__(
        self, target: str, parent: TaskSpec, record: Any, var: str, count: int, values: Any, first_id: int
    ) -> None:
        self.target, self.parent, self.record = target, parent, record
        self.var, self.count, self.values, self.first_id = var, count, values, first_id
        self.next_index = 0

    @property
    def left(self) -> int:
        return self.count - self.next_index

    def take(self) -> Tuple[int, List[dict]]:
        """The next task's (task id, foreach stack)."""
        index = self.next_index
        self.next_index += 1
        frame = {
            "step": self.parent.step,
            "var": self.var,
            "index": index,
            "num_splits": self.count,
            "values": self.values,
        }
        return self.first_id + index, self.parent.foreach_stack + [frame]


def _short(error: Dict[str, Any]) -> str:
    kind = str(error.get("type", "")).rsplit(".", 1)[-1]
    message = str(error.get("message", "")).strip().splitlines()
    return f"{kind}: {message[0]}" if message else kind


def _branch_ranks(graph: Any, join: Any) -> Dict[str, int]:
    """For a static join: which branch of its split (by position in self.next) each input step is on."""
    split = graph[join.split_parents[-1]] if join.split_parents else None
    if split is None or split.type == "foreach":
        return {}
    ranks: Dict[str, int] = {}
    for rank, first in enumerate(split.out_funcs):
        todo, seen = [first], set()
        while todo:
            name = todo.pop()
            if name in seen or name == join.name:
                continue
            seen.add(name)
            if join.name in graph[name].out_funcs:
                ranks.setdefault(name, rank)
            todo.extend(graph[name].out_funcs)
    return ranks


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted()
