"""``@project(name=...)``: flows that belong together, on branches, as in Metaflow.

A project flow runs on one branch: ``user.<username>`` by default,
``test.<branch>`` with ``--branch``, ``prod`` with ``--production`` and
``prod.<branch>`` with both (top-level options of the flow's command line,
or ``METAFLOW_BRANCH`` / ``METAFLOW_PRODUCTION``, ``CAFSTORE_BRANCH`` /
``CAFSTORE_PRODUCTION``). The run carries the system tags
``project:<name>`` and ``project_branch:<branch>``, and a step reads
``current.project_name``, ``branch_name``, ``project_flow_name``,
``is_production`` and ``is_user_branch``, which the task works out from
those two tags (so a resumed or retried task sees what its run was given).

The decorator only writes the request on the class; names are checked when
the flow is run (:func:`resolve_project`), so a bad name is one clear error
from the command line rather than a traceback while the file is imported.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from cafstore.exception import FlowError
from cafstore.runner.authoring import config_values

_ATTR = "_cafstore_project"
_INVALID = re.compile("[^a-z0-9_]")
_MAX_LEN = 128
PROJECT_TAG = "project:"
BRANCH_TAG = "project_branch:"


class ProjectError(FlowError):
    """A bad ``@project`` name or branch, or a choice made twice (decorator and command line)."""

    headline = "bad @project"


def project(cls: Any = None, **attributes: Any) -> Any:
    """``@project(name='my_project')`` above a FlowSpec subclass; ``branch=`` and ``production=`` may be fixed too."""
    unknown = sorted(set(attributes) - {"name", "branch", "production"})

    def mark(flow_cls: Any) -> Any:
        setattr(flow_cls, _ATTR, {"attributes": dict(attributes), "unknown": unknown})
        return flow_cls

    return mark(cls) if cls is not None else mark


def has_project(flow_cls: type) -> bool:
    """Whether ``flow_cls`` is decorated with ``@project``."""
    return _ATTR in vars(flow_cls) or any(_ATTR in vars(base) for base in flow_cls.__mro__[1:])


@dataclass(frozen=True)
class ProjectInfo:
    """The project and branch a run of a ``@project`` flow belongs to."""

    name: str
    branch: str

    @property
    def tags(self) -> List[str]:
        """The run's system tags that say so."""
        return [PROJECT_TAG + self.name, BRANCH_TAG + self.branch]


def resolve_project(flow_cls: type, branch: Optional[str], production: bool, user: str) -> Optional[ProjectInfo]:
    """The project and branch of a run, from the decorator and the command line; None without ``@project``.

    ``branch`` / ``production``: the command line's (or environment's) values.
    Raises :class:`ProjectError` with Metaflow's rules: lowercase letters, digits
    and ``_`` only, at most 128 characters, and not set both ways.
    """
    if not has_project(flow_cls):
        return None
    found = getattr(flow_cls, _ATTR)
    attrs: Dict[str, Any] = config_values.resolve_kwargs(found["attributes"])  # config_expr(...) values
    if found["unknown"]:
        raise ProjectError(
            f"@project on {flow_cls.__name__} takes name=, branch= and production=, not {', '.join(found['unknown'])}."
        )
    for key, given, default in (("branch", branch, None), ("production", production, False)):
        if key in attrs and given != default and attrs[key] != given:
            raise ProjectError(
                f"{flow_cls.__name__}: you cannot pass --{key} on the command line and {key}= in @project both."
            )
    branch = attrs.get("branch", branch)
    production = bool(attrs.get("production", production))
    name = attrs.get("name")
    if not name:
        raise ProjectError(f"@project on {flow_cls.__name__} needs a name. Try @project(name='some_name').")
    _check(f"The @project name {name!r} of {flow_cls.__name__}", name)
    if branch:
        _check(f"The branch name {branch!r}", branch)
        full = ("prod." if production else "test.") + branch
    elif production:
        full = "prod"
    else:
        full = "user." + os.environ.get("METAFLOW_OWNER", user)
    return ProjectInfo(name, full)


def _check(what: str, value: Any) -> None:
    if not isinstance(value, str) or _INVALID.search(value):
        raise ProjectError(f"{what} must contain only lowercase alphanumeric characters and underscores.")
    if len(value) > _MAX_LEN:
        raise ProjectError(f"{what} is too long: the maximum is {_MAX_LEN} characters.")


def project_fields(flow_name: str, tags: Iterable[str]) -> Optional[Dict[str, Any]]:
    """What ``current`` shows of the project, read back from a run's tags; None if it has none."""
    name = branch = None
    for tag in tags:
        if tag.startswith(PROJECT_TAG):
            name = tag[len(PROJECT_TAG) :]
        elif tag.startswith(BRANCH_TAG):
            branch = tag[len(BRANCH_TAG) :]
    if name is None or branch is None:
        return None
    return {
        "project_name": name,
        "branch_name": branch,
        "project_flow_name": f"{name}.{branch}.{flow_name}",
        "is_production": branch == "prod" or branch.startswith("prod."),
        "is_user_branch": branch.startswith("user."),
    }
