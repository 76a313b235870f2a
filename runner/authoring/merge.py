"""``merge_artifacts``: pass the branches' artifacts on from a join.

Metaflow's semantics by default: an artifact that is the same in every
branch that has it (same object id: same serialised bytes) is passed on;
one the join already set is left alone; one whose value differs between
branches is an error naming it, its branches and the fix.  No value is
loaded to merge it: the join's map simply points at the same object.

``collect=True`` opts into the other behaviour some guides describe: an
artifact whose value differs becomes a list of its values, one per input,
in the order of ``inputs``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

from cafstore.exception import (
    MergeArtifactsError,
    MissingInMergeArtifactsException,
    UnhandledInMergeArtifactsException,
)
from cafstore.runner.authoring.artifacts import Inputs, load_value

_MISSING: Any = object()


def merge_artifacts(
    flow: Any,
    inputs: Any,
    exclude: Optional[Iterable[str]] = None,
    include: Optional[Iterable[str]] = None,
    collect: bool = False,
) -> None:
    """Assign to ``flow`` (the join's ``self``) the artifacts of ``inputs`` that do not conflict.

    ``exclude``: names never merged.  ``include``: merge only these (each must
    exist in some branch).  The two cannot be combined.  ``collect=True``:
    conflicting artifacts become lists instead of an error.
    """
    state = flow.__dict__.get("_cafstore_state") if hasattr(flow, "__dict__") else None
    if state is None:
        raise MergeArtifactsError("merge_artifacts(self, inputs) works only inside a join step of a running flow.")
    step = state.step
    if not state.is_join:
        raise MergeArtifactsError(
            f"merge_artifacts can only be called in a join step, and step {step!r} is not one (a join takes "
            f"the branches as an argument: def {step}(self, inputs):)."
        )
    if not isinstance(inputs, Inputs):
        raise MergeArtifactsError(
            f"merge_artifacts in step {step!r} needs the join's inputs argument, not {type(inputs).__name__}."
        )
    include_list = _names(include, "include", step)
    exclude_list = _names(exclude, "exclude", step)
    if include_list and exclude_list:
        raise MergeArtifactsError(f"merge_artifacts in step {step!r} got both include= and exclude=; use one of them.")

    def already_set(name: str) -> bool:
        return name in flow.__dict__ or name in state.ids or getattr(type(flow), name, _MISSING) is not _MISSING

    views = list(inputs)
    found: Dict[str, List[Tuple[int, Any]]] = {}
    for position, view in enumerate(views):
        for name, oid in view.ids.items():
            if name.startswith("_") or name in state.params:
                continue
            if include_list is not None:
                if name not in include_list:
                    continue
            elif exclude_list is not None and name in exclude_list:
                continue
            if already_set(name):
                continue
            found.setdefault(name, []).append((position, oid))

    conflicts = {name: entries for name, entries in found.items() if len({oid for _, oid in entries}) > 1}
    if conflicts and not collect:
        details = "; ".join(
            f"{name!r} (differs between {_branches(views, entries)})" for name, entries in sorted(conflicts.items())
        )
        first = sorted(conflicts)[0]
        raise UnhandledInMergeArtifactsException(
            f"merge_artifacts in join step {step!r} cannot merge artifacts whose values differ between "
            f"branches: {details}. Set each in the join before calling merge_artifacts (e.g. "
            f"self.{first} = max(inp.{first} for inp in inputs)), leave it out with "
            f"exclude={sorted(conflicts)!r}, or pass collect=True to get a list of the values.",
            sorted(conflicts),
        )
    if collect:
        partial = sorted(name for name, entries in conflicts.items() if len(entries) != len(views))
        if partial:
            raise UnhandledInMergeArtifactsException(
                f"merge_artifacts(collect=True) in join step {step!r} cannot collect {partial!r}: "
                f"{'it is' if len(partial) == 1 else 'they are'} set in some branches but not all, so the "
                f"list would not line up with inputs. Assign {'it' if len(partial) == 1 else 'them'} in the "
                f"join, or exclude={partial!r}.",
                partial,
            )
    if include_list:
        missing = [name for name in include_list if name not in found and not already_set(name)]
        if missing:
            raise MissingInMergeArtifactsException(
                f"merge_artifacts in join step {step!r} was asked to include {missing!r}, but no branch has "
                f"{'that artifact' if len(missing) == 1 else 'those artifacts'}. Check the spelling, or "
                "remove it from include=.",
                missing,
            )

    for name, entries in found.items():
        if name in conflicts:
            values = [load_value(state.store, oid, name) for _, oid in sorted(entries, key=lambda e: e[0])]
            setattr(flow, name, values)
        else:
            state.ids[name] = entries[0][1]
            state.merged.add(name)
            state.deleted.discard(name)


def _names(value: Optional[Iterable[str]], keyword: str, step: str) -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise MergeArtifactsError(
            f"merge_artifacts in step {step!r}: {keyword}= takes a list of artifact names, "
            f"e.g. {keyword}=['increment'], not {value!r}."
        )
    return list(value) or None


def _branches(views: List[Any], entries: List[Tuple[int, Any]]) -> str:
    steps = [views[position].step for position, _ in entries]
    if len(set(steps)) == 1:
        return f"the {len(steps)} inputs from step {steps[0]!r}"
    return ", ".join(dict.fromkeys(steps))
