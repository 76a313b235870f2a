"""The client: read-only access to past runs (Flow, Run, Step, Task, DataArtifact) and namespaces."""
