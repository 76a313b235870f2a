"""Running flows: the graph, the scheduler and the task processes."""
