"""The scheduler's ``reuse(spec)`` hook: resume and memoised steps, in one place.

Before a task's first attempt starts, the scheduler asks whether an existing
record can stand for it. Resume (runner/reuse/resume.py) answers from the origin
run; the cache (runner/reuse/memo.py) from any earlier run with the same key. A
reused task costs one ref write: its record, and every artifact in it, is
shared by hash.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from cafstore import schema
from cafstore.exception import CafstoreError
from cafstore.runner.authoring.decorators import step_options
from cafstore.runner.execution.spec import TaskResult, TaskSpec
from cafstore.runner.execution.switch import reused_choice
from cafstore.runner.reuse import memo
from cafstore.runner.reuse.intact import IntegrityGate
from cafstore.runner.reuse.resume import ResumePlan
from cafstore.store import ObjectId


class Reuser:
    """Decides, task by task, whether to run or to reuse; remembers cache keys of tasks that run."""

    def __init__(
        self,
        store: Any,
        flow_cls: type,
        graph: Any,
        plan: Optional[ResumePlan],
        cache_all: bool,
        say: Callable[[str], None],
    ) -> None:
        self.store, self.flow_cls, self.graph, self.plan = store, flow_cls, graph, plan
        self.cached_steps = {
            node.name for node in graph if cache_all or step_options(getattr(flow_cls, node.name)).cache
        }
        # Hashed now, as the run starts: the source read later could be an edit made during the run,
        # and the tasks run the code imported at the start (a key must describe what ran).
        self.code_hashes: Dict[str, str] = {step: memo.step_code_hash(flow_cls, step) for step in self.cached_steps}
        self.pending_keys: Dict[int, str] = {}  # task id -> cache key, for tasks that ran
        self.say = say
        self.reused = 0
        self.gate = IntegrityGate(store)

    def __call__(self, spec: TaskSpec) -> Optional[TaskResult]:
        found, source = None, ""
        if self.plan is not None:
            found = self._intact(
                spec, self._usable(spec, self.plan.reusable(spec.step, spec.foreach_stack, spec.parents))
            )
            source = f"from {self.plan.origin_pathspec}"
        if found is None and spec.step in self.cached_steps:
            key: Optional[str] = None
            try:
                key = self._key(spec)
                found = self._intact(spec, self._usable(spec, memo.lookup(self.store, key)))
            except CafstoreError as exc:  # an unreadable cache entry or input: run the task (and re-file it)
                self.say(f"[{spec.pathspec}] Cache lookup failed ({exc}); running the task.")
                found = None
            if found is None:
                if key is not None:
                    self.pending_keys[spec.task_id] = key
            else:
                source = "from the cache"
        if found is None:
            return None
        record_id, record = found
        try:
            next_steps = reused_choice(self.store, self.graph[spec.step], record)
        except CafstoreError as exc:  # a switch whose stored condition today's cases do not take
            self.say(f"[{spec.pathspec}] Not reusing {_pathspec(record)}: {exc}; running the task again.")
            return None
        self.store.set_ref(schema.task_ref(spec.flow_name, spec.run_id, spec.step, spec.task_id), ObjectId(record_id))
        self.reused += 1
        origin = _pathspec(record)
        self.say(f"[{spec.pathspec}] Reused {origin} ({source}); not run again.")
        foreach = self.graph[spec.step].foreach_param
        values = (record.get("artifacts") or {}).get(foreach) if foreach else None
        return TaskResult(
            spec.task_id,
            spec.step,
            0,
            "ok",
            record=str(record_id),
            num_splits=record.get("num_splits"),
            foreach_values=str(values) if values else None,
            next_steps=next_steps,
        )

    def _usable(self, spec: TaskSpec, found: Optional[tuple]) -> Optional[tuple]:
        """``found``, unless the current graph needs what the record lacks: a foreach step edited
        since (another list to split over, or not a foreach before) must run to split."""
        if found is None:
            return None
        foreach = self.graph[spec.step].foreach_param
        if foreach is not None:
            record = found[1]
            if record.get("num_splits") is None or foreach not in (record.get("artifacts") or {}):
                return None
        return found

    def _intact(self, spec: TaskSpec, found: Optional[tuple]) -> Optional[tuple]:
        """``found``, unless its stored data are missing or corrupt: then the task runs again (said in one line)."""
        if found is None:
            return None
        damage = self.gate.damage(found[1])
        if damage is None:
            return found
        self.say(
            f"[{spec.pathspec}] Not reusing {_pathspec(found[1])}: its stored data are damaged ({damage}); "
            "running the task again."
        )
        return None

    def _key(self, spec: TaskSpec) -> str:
        parents = [self.store.get_record(p) for p in spec.parents]
        return memo.cache_key(
            spec.flow_name,
            spec.step,
            self.code_hashes[spec.step],
            parents,
            spec.foreach_stack,
            params=spec.params,
            parent_steps=spec.parent_steps,
        )

    def remember_successes(self, flow: str, run_id: int) -> int:
        """After the run: file every successful task that ran under its cache key."""
        entries = {}
        for name, record_id in self.store.iter_refs(schema.tasks_prefix(flow, run_id)):
            task_id = schema.parse_task_ref(name)[3]
            key = self.pending_keys.get(task_id)
            if key is not None and self.store.get_record(record_id).get("status") == "ok":
                entries[key] = str(record_id)
        memo.remember(self.store, entries)
        return len(entries)


def _pathspec(record: dict) -> str:
    return f"{record['flow']}/{record['run_id']}/{record['step']}/{record['task_id']}"


def reuse_factory(
    flow_cls: type, graph: Any, plan: Optional[ResumePlan], cache_all: bool, say: Callable[[str], None]
) -> Optional[Callable[[Any, Any], Reuser]]:
    """What ``run_flow(reuse=...)`` takes, or None when nothing can be reused (a plain run)."""
    any_cached = cache_all or any(step_options(getattr(flow_cls, node.name)).cache for node in graph)
    if plan is None and not any_cached:
        return None
    return lambda store, run: Reuser(store, flow_cls, graph, plan, cache_all, say)
