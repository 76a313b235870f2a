"""Writing flows: FlowSpec, step decorators, parameters, current and merge_artifacts."""
