"""Switch steps in the runner: checking where a task went, and telling the scheduler.

A switch task runs like a linear one; its ``self.next({...}, condition=...)``
records the one case it picked, which :func:`chosen_step` checks against the
graph (in the task process) and the task result carries back to the scheduler
(``TaskResult.next_steps``).  A task reused by resume or the cache never ran,
so :func:`reused_choice` works its choice out again from the stored condition
artifact.  A switch that names its own step loops: the scheduler simply
starts a new task of the step, whose only input is the previous lap.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from cafstore.exception import TransitionError
from cafstore.runner.authoring.switch import pick_case


def chosen_step(step: str, out_funcs: Sequence[str], transition: Optional[Tuple[List[str], Any]]) -> str:
    """The step a switch task picked, checked against the graph's cases."""
    if transition is None:
        raise TransitionError(
            f"Step {step!r} returned without calling self.next(...); its last line must be its switch "
            f"(it goes to one of {', '.join(out_funcs)})."
        )
    targets, foreach = transition
    if len(targets) != 1 or foreach is not None or targets[0] not in out_funcs:
        raise TransitionError(
            f"Step {step!r} is a switch to one of {', '.join(out_funcs)} in its source, but it called "
            f"self.next with {targets}: did the file change while the flow was running?"
        )
    return targets[0]


def reused_choice(store: Any, node: Any, record: dict) -> Optional[List[str]]:
    """Where the reused switch task ``record`` went: its stored condition, matched to today's cases.

    None for a step that is not a switch. Raises :class:`~cafstore.exception.SwitchError` if the
    stored value matches no case of the current code (the cases were edited since).
    """
    if node.type != "split-switch":
        return None
    oid = (record.get("artifacts") or {}).get(node.condition)
    value = store.get_artifact(oid, name=node.condition) if oid is not None else None
    return [pick_case(node.name, node.condition, value, node.switch_cases)]


def successor(node: Any, next_steps: Optional[List[str]]) -> str:
    """The one step to start after a finished switch task."""
    if not next_steps or next_steps[0] not in node.out_funcs:
        raise TransitionError(f"switch step {node.name!r} finished without saying which case it took.")
    return next_steps[0]
