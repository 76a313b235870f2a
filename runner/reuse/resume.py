"""Resume: a new run that reuses the origin run's successful tasks by hash.

A resumed run is scheduled exactly like a fresh one; before a task is
started, :class:`ResumePlan` is asked whether the origin run already holds a
successful record for it. If so the new run's task ref simply points at that
record — no process, no bytes copied, the same cost for a 1 KiB or a 1 GiB
artifact — and scheduling goes on from it as if the task had just finished.

Which origin tasks may be reused:

- ``resume`` without a step: any task whose origin counterpart (same step,
  same foreach position) succeeded *with the very same input records*. What
  failed or never ran is run, and so is everything downstream of it (its
  inputs are new records). A partially failed foreach therefore re-runs only
  the splits that failed or never ran.
- ``resume STEP``: STEP and every step downstream of it run with the current
  code. Every step STEP depends on (upstream of it) must have succeeded in the
  origin -- else a clear error before the run starts -- and is reused; a step
  on a parallel branch is reused like in a resume without a step.
- A step that loops (a switch naming its own step) has several tasks at the
  same position, one per lap; each lap's input is the previous lap, so the
  input records tell them apart: lap N is reused when lap N-1 was.
- Reuse goes by step name, so after a rename the origin's step is lost: a
  resume without a step refuses to start if a step that succeeded in the
  origin is no longer in the flow, ``resume STEP`` if a step STEP depends on
  is not in the origin.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from cafstore import schema
from cafstore.exception import ResumeError
from cafstore.store import ObjectId

TaskKey = Tuple[str, Tuple[Tuple[str, int], ...]]


def task_key(step: str, foreach_stack: Iterable[dict]) -> TaskKey:
    """A task's identity across runs: its step and its position in every enclosing foreach."""
    return step, tuple((frame["step"], int(frame["index"])) for frame in foreach_stack)


def find_origin(store: Any, flow: str, user: str, origin_run_id: Optional[int]) -> dict:
    """The run to resume: ``--origin-run-id``, else this user's latest run of the flow.

    Any namespace will do (another user's run, a production run): resuming
    is explicit about which run it reads.
    """
    from cafstore.client import damaged  # a damaged run ref: a clear error, or skipped with a warning

    if origin_run_id is not None:
        meta = damaged.run_meta(store, flow, origin_run_id)
        if meta is None or meta.get("deleted"):
            raise ResumeError(
                f"There is no run {flow}/{origin_run_id} to resume (--origin-run-id {origin_run_id}). "
                f"`cafstore log {flow}` lists the runs of this flow."
            )
        return meta
    for _name, meta in damaged.runs(store, schema.runs_prefix(flow), needles=[user]):
        if meta.get("user") == user and not meta.get("deleted"):
            return meta
    raise ResumeError(
        f"User {user!r} has no run of {flow} to resume. Run it first (`python <flow file> run`), or name "
        "another user's run with --origin-run-id N."
    )


class ResumePlan:
    """Which tasks of the new run are the origin's, by task key."""

    def __init__(self, store: Any, graph: Any, origin: dict, step: Optional[str]) -> None:
        self.origin = origin
        self.step = step
        # several per key for a step that loops (a switch to itself): one per lap, told apart by their inputs
        self.records: Dict[TaskKey, List[Tuple[ObjectId, dict]]] = {}
        failed: Dict[str, str] = {}  # step -> pathspec of one task of it whose final attempt failed
        flow, run_id = origin["flow"], int(origin["run_id"])
        prefix = schema.tasks_prefix(flow, run_id)
        for name, raw in store.iter_raw_refs(prefix):
            record_id, problem = schema.read_ref(name, raw)
            if problem is not None:
                continue  # a damaged task ref (`cafstore fsck` names it): that task runs again
            record = store.get_record(record_id)
            if record.get("status") == "ok":
                key = task_key(record["step"], record.get("foreach_stack") or [])
                self.records.setdefault(key, []).append((record_id, record))
            else:
                failed.setdefault(record["step"], f"{flow}/{run_id}/{name[len(prefix) :]}")
        ran = {key[0] for key in self.records}
        gone = sorted(ran - {node.name for node in graph})
        self.rerun: Set[str] = set()
        if step is not None:
            if step not in graph:
                raise ResumeError(
                    f"Cannot resume from step {step!r}: the flow has no such step. Its steps are: "
                    f"{', '.join(node.name for node in graph.sorted_nodes())}."
                )
            self.rerun = _downstream(graph, step)
            needed = _upstream(graph, step)
            for node in graph.sorted_nodes():  # the steps STEP needs: every one must have succeeded
                if node.name not in needed:
                    continue
                if node.name not in ran:
                    raise ResumeError(
                        f"Cannot resume {flow}/{run_id} from step {step!r}: step {node.name!r} comes before it "
                        f"but has no successful task in {flow}/{run_id} ("
                        + (
                            f"it failed: {failed[node.name]}"
                            if node.name in failed
                            else "it never ran, or is new or renamed in this version of the flow"
                            + (
                                f"; {flow}/{run_id} has {', '.join(map(repr, gone))}, which the flow no longer has"
                                if gone
                                else ""
                            )
                        )
                        + f"). Resume from {node.name!r} or an earlier step instead, or run `resume` without a "
                        "step to re-run just what failed."
                    )
                if node.name in failed:
                    raise ResumeError(
                        f"Cannot resume {flow}/{run_id} from step {step!r}: step {node.name!r} comes before it "
                        f"but failed in {flow}/{run_id} ({failed[node.name]}), so its results cannot be reused. "
                        f"Resume from {node.name!r} or an earlier step instead, or run `resume` without a step "
                        "to re-run just what failed."
                    )
        elif gone:
            raise ResumeError(
                f"Cannot resume {flow}/{run_id}: its step(s) {', '.join(map(repr, gone))} succeeded there but the "
                "flow no longer has them (renamed or removed?). Resume reuses the origin's tasks step by step, "
                "so the graph must still have every step it reuses: restore the name, or start a new run with "
                "`run`."
            )

    @property
    def origin_pathspec(self) -> str:
        return f"{self.origin['flow']}/{self.origin['run_id']}"

    def reusable(self, step: str, foreach_stack: Iterable[dict], parents: Iterable[str]) -> Optional[tuple]:
        """``(record_id, record)`` of the origin task this new task may reuse, or None to run it.

        Outside the steps to re-run, a task is reused when the origin has a successful task at the
        same position *with the same input records*: a task whose inputs were recomputed (a failed
        or never-run task upstream of it ran again) runs too.
        """
        if step in self.rerun:
            return None
        inputs = [str(p) for p in parents]
        for found in self.records.get(task_key(step, foreach_stack), ()):
            if [str(p) for p in found[1].get("parents") or []] == inputs:
                return found
        return None  # failed or never ran in the origin, or its inputs were recomputed: it must run


def _upstream(graph: Any, step: str) -> Set[str]:
    """Every step from which ``step`` can be reached (not ``step`` itself)."""
    return _walk(graph, list(graph[step].in_funcs), "in_funcs")


def _downstream(graph: Any, step: str) -> Set[str]:
    """``step`` and every step reachable from it."""
    return _walk(graph, [step], "out_funcs")


def _walk(graph: Any, todo: list, edges: str) -> Set[str]:
    seen: Set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(getattr(graph[name], edges))
    return seen


def origin_parameters(store: Any, flow_cls: type, origin: dict) -> Dict[str, Any]:
    """The origin run's parameter values, by attribute.

    A parameter added to the flow since takes its default (or environment) value; one removed since
    is dropped (the reused tasks still carry it as an artifact, as any task of the origin does).
    """
    import os

    from cafstore.runner.authoring.parameters import ParameterContext, flow_parameters

    stored = origin.get("parameters") or {}
    values: Dict[str, Any] = {}
    for attr, param in flow_parameters(flow_cls):
        if attr in stored:
            values[attr] = store.get_artifact(stored[attr], name=attr)
        else:
            context = ParameterContext(flow_cls.__name__, origin.get("user", ""), param.name)
            values[attr] = param.resolve(None, os.environ, context)
    return values
