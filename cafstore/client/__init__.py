"""The client: read-only access to past runs (Flow, Run, Step, Task, DataArtifact) and namespaces.

Everything is read straight from the store's LMDB refs and records (see
docs/datamodel.md for what they hold and docs/client.md for the API)::

    from cafstore import Flow, namespace
    run = Flow('HelloFlow').latest_run      # my newest run
    run['start'].task.data.x                # unpickled on first access
"""

from cafstore.client.connection import get_store, use_store
from cafstore.client.data import FlowCode, MetaflowArtifacts, MetaflowData, TaskException
from cafstore.client.flows import Flow, Metaflow, Run
from cafstore.client.namespaces import current_user, default_namespace, get_namespace, namespace
from cafstore.client.tasks import DataArtifact, Metadata, Step, Task

__all__ = [
    "DataArtifact", "Flow", "FlowCode", "Metadata", "Metaflow", "MetaflowArtifacts", "MetaflowData", "Run",
    "Step", "Task", "TaskException", "current_user", "default_namespace", "get_namespace", "get_store",
    "namespace", "use_store",
]
