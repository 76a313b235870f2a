"""The client: read-only access to past runs (Flow, Run, Step, Task, DataArtifact) and namespaces.

Everything is read straight from the store's LMDB refs and records (see
docs/datamodel.md for what they hold and docs/client.md for the API)::

    from cafstore import Flow, namespace
    run = Flow('HelloFlow').latest_run      # my newest run
    run['start'].task.data.x                # unpickled on first access

The model is flows.py (Metaflow, Flow, Run), tasks.py (Step, Task) and
artifacts.py (DataArtifact), each importing only the ones above it;
rendering lives in views/ and ref names in cafstore.schema.
"""

from cafstore.client import views  # noqa: F401 - registers the notebook HTML of Run and Task
from cafstore.client.artifacts import DataArtifact
from cafstore.client.connection import default_metadata, get_metadata, get_store, metadata, use_store
from cafstore.client.data import FlowCode, Metadata, MetaflowArtifacts, MetaflowData, TaskException
from cafstore.client.flows import Flow, Metaflow, Run
from cafstore.client.namespaces import current_user, default_namespace, get_namespace, namespace
from cafstore.client.tasks import Step, Task

__all__ = [
    "DataArtifact",
    "Flow",
    "FlowCode",
    "Metadata",
    "Metaflow",
    "MetaflowArtifacts",
    "MetaflowData",
    "Run",
    "Step",
    "Task",
    "TaskException",
    "current_user",
    "default_metadata",
    "default_namespace",
    "get_metadata",
    "get_namespace",
    "get_store",
    "metadata",
    "namespace",
    "use_store",
]
