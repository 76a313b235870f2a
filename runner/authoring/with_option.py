"""``--with DECORATOR[:name=value,...]``: add a step decorator to every step from the command line.

Metaflow's top-level ``--with`` (``python flow.py --with retry run``,
``--with retry:times=3``, ``--with timeout:seconds=5``) decorates every step
that does not already carry that decorator: a step's own ``@retry(times=1)``
wins over ``--with retry:times=3``. Values arrive as text; each decorator
turns the ones it knows into numbers or booleans and reports bad ones as it
would for the same value written in the file.

The specs applied are kept on the flow class (:func:`applied_specs`) so the
scheduler can hand them to task processes that import the flow afresh
(the spawn executor), where :func:`apply_specs` runs again; applying twice
changes nothing.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

from cafstore.exception import CommandLineError
from cafstore.runner.authoring import decorators

_APPLIED = "_cafstore_with_specs"
_DECORATORS: Dict[str, Callable[..., Callable]] = {
    "retry": decorators.retry,
    "catch": decorators.catch,
    "timeout": decorators.timeout,
    "cache": decorators.cache,
    "resources": decorators.resources,  # accepted and ignored locally, as in Metaflow
}


def parse_spec(text: str) -> Tuple[str, Dict[str, str]]:
    """``"retry:times=3,minutes_between_retries=0"`` -> ``("retry", {"times": "3", ...})``."""
    name, _, rest = text.strip().partition(":")
    if name not in _DECORATORS:
        known = ", ".join(sorted(_DECORATORS))
        raise CommandLineError(
            f"--with {text!r}: there is no decorator {name!r} to add to every step (the ones there are: {known})."
        )
    options: Dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        if not equals or not key.strip().isidentifier():
            raise CommandLineError(
                f"--with {text!r}: {item!r} is not an option=value pair; write it as "
                f"--with {name}:option=value[,option=value...], e.g. --with retry:times=3."
            )
        options[key.strip()] = value.strip()
    return name, options


def apply_specs(flow_cls: type, specs: List[str]) -> None:
    """Decorate every step of ``flow_cls`` that lacks the decorator; bad specs raise CommandLineError."""
    parsed = [parse_spec(text) for text in specs]
    for attr in dir(flow_cls):
        func = getattr(flow_cls, attr, None)
        if not decorators.is_step(func):
            continue
        for name, options in parsed:
            if name not in decorators.applied(func):
                _DECORATORS[name](func, **options)
    done = getattr(flow_cls, _APPLIED, [])
    setattr(flow_cls, _APPLIED, done + [text for text in specs if text not in done])


def applied_specs(flow_cls: type) -> List[str]:
    """The ``--with`` specs applied to ``flow_cls`` in this process (for task processes to apply too)."""
    return list(getattr(flow_cls, _APPLIED, []))
