"""Executors: where task attempts run."""
