"""The flow graph: read from the class source (parser), judged by its rules (rules)."""
