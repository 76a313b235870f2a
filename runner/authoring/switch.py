"""A switch at run time: ``self.next({'a': self.a, 'b': self.b}, condition='mode')``.

Kept out of :mod:`.flowspec` so that the one place that decides which case a
value picks is small and shared: the step's own ``self.next`` uses it, and so
does resume, which re-reads the condition artifact of a reused task to know
where that task went.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from cafstore.exception import SwitchError, TransitionError


def pick_case(step: str, condition: str, value: Any, cases: Mapping[Any, Any]) -> Any:
    """The target of the case ``value`` matches (dict lookup, as Metaflow does); else a
    :class:`SwitchError` naming the step, the artifact, its value and the allowed keys."""
    try:
        if value in cases:
            return cases[value]
    except TypeError:  # unhashable: it matches no key
        pass
    keys = ", ".join(repr(key) for key in cases)
    raise SwitchError(
        f"the switch in step {step!r} found self.{condition} = {_short(value)} ({type(value).__name__}), "
        f"which matches none of its cases: {keys}. Set self.{condition} to one of those values before "
        "self.next(...) (a key must equal the value, e.g. 'True' and True are different keys)."
    )


def switch_target(step: str, targets: tuple, condition: Optional[str], flow: Any) -> str:
    """Check the arguments of a switch ``self.next`` and return the name of the chosen step."""
    if len(targets) != 1 or not isinstance(targets[0], Mapping) or not targets[0]:
        raise TransitionError(
            f"self.next(..., condition={condition!r}) in step {step!r} takes exactly one non-empty dict "
            "mapping condition values to steps, e.g. self.next({'a': self.a, 'b': self.b}, condition='mode')."
        )
    if not isinstance(condition, str):
        raise TransitionError(
            f"condition= in step {step!r} takes the name of an artifact as a string, e.g. condition='mode', "
            f"not {condition!r}."
        )
    try:
        value = getattr(flow, condition)
    except AttributeError:
        raise SwitchError(
            f"the switch in step {step!r} reads self.{condition}, but there is no such artifact. Set "
            f"self.{condition} in this step (or an earlier one) before self.next(...)."
        ) from None
    chosen = pick_case(step, condition, value, targets[0])
    name = getattr(chosen, "__name__", None)
    if name is None or getattr(chosen, "__self__", None) is not flow:
        raise TransitionError(
            f"the switch in step {step!r} sends its case to {chosen!r}, but cases must be steps of this "
            "flow, like self.end."
        )
    return name


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
