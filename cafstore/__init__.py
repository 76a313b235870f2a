"""cafstore: Metaflow-style flows on a Git-like content-addressed store.

Everything a flow author or notebook user needs is importable from here::

    from cafstore import FlowSpec, step, Parameter, Flow, Run, namespace

Names are resolved lazily: every task process imports this package, so it
must cost next to nothing until a name is actually used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # store
    "Store": "cafstore.store",
    "ObjectId": "cafstore.store",
    "StoreConfig": "cafstore.store",
    # authoring (cafstore.runner)
    "FlowSpec": "cafstore.runner.authoring.flowspec",
    "step": "cafstore.runner.authoring.decorators",
    "retry": "cafstore.runner.authoring.decorators",
    "catch": "cafstore.runner.authoring.decorators",
    "timeout": "cafstore.runner.authoring.decorators",
    "cache": "cafstore.runner.authoring.decorators",
    "environment": "cafstore.runner.authoring.decorators",
    "resources": "cafstore.runner.authoring.decorators",
    "parallel": "cafstore.runner.authoring.decorators",
    "Config": "cafstore.runner.authoring.configs",
    "ConfigValue": "cafstore.runner.authoring.config_values",
    "config_expr": "cafstore.runner.authoring.config_values",
    "UserStepDecorator": "cafstore.runner.authoring.user_decorators",
    "user_step_decorator": "cafstore.runner.authoring.user_decorators",
    "StepMutator": "cafstore.runner.authoring.mutators",
    "FlowMutator": "cafstore.runner.authoring.mutators",
    "Parameter": "cafstore.runner.authoring.parameters",
    "JSONType": "cafstore.runner.authoring.parameters",
    "IncludeFile": "cafstore.runner.authoring.parameters",
    "current": "cafstore.runner.authoring.current",
    "project": "cafstore.runner.authoring.project",
    "merge_artifacts": "cafstore.runner.authoring.merge",
    # client
    "Metaflow": "cafstore.client",
    "Flow": "cafstore.client",
    "Run": "cafstore.client",
    "Step": "cafstore.client",
    "Task": "cafstore.client",
    "DataArtifact": "cafstore.client",
    "namespace": "cafstore.client",
    "get_namespace": "cafstore.client",
    "default_namespace": "cafstore.client",
    "get_metadata": "cafstore.client",
    "metadata": "cafstore.client",
    "default_metadata": "cafstore.client",
    # errors
    "CafstoreError": "cafstore.exception",
    "MetaflowException": "cafstore.exception",
    "MetaflowExceptionWrapper": "cafstore.exception",
    "ExternalCommandFailed": "cafstore.exception",
    "TimeoutException": "cafstore.exception",
    "FailureHandledByCatch": "cafstore.exception",
    "MetaflowNotFound": "cafstore.exception",
    "MetaflowNamespaceMismatch": "cafstore.exception",
    "MetaflowInvalidPathspec": "cafstore.exception",
    "MetaflowInternalError": "cafstore.exception",
    "MetaflowTaggingError": "cafstore.exception",
    "MetaflowDataMissing": "cafstore.exception",
    "MissingInMergeArtifactsException": "cafstore.exception",
    "UnhandledInMergeArtifactsException": "cafstore.exception",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cafstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return __all__
