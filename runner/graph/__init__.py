"""The flow graph: its model, read from the class source by the parser, judged by the rules.

Three modules, each with one job, whose imports point one way::

    parser ──> model <── rules

- :mod:`.model`: :class:`FlowGraph` and :class:`StepNode`, step types, run
  order and the split/join structure;
- :mod:`.parser`: :func:`graph_from_class` / :func:`graph_from_source`, which
  read a flow class's source with :mod:`ast` into the model and never judge it;
- :mod:`.rules`: :func:`validate`, which raises
  :class:`~cafstore.exception.GraphError` for the first rule a graph breaks.

Callers import from this package, not from the modules.
"""

from cafstore.runner.graph.model import RESERVED_NAMES, STEP_TYPES, FlowGraph, StepNode
from cafstore.runner.graph.parser import NEXT_KEYWORDS, graph_from_class, graph_from_source
from cafstore.runner.graph.rules import validate

__all__ = [
    "FlowGraph",
    "NEXT_KEYWORDS",
    "RESERVED_NAMES",
    "STEP_TYPES",
    "StepNode",
    "graph_from_class",
    "graph_from_source",
    "validate",
]
