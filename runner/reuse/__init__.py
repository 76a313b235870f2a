"""Reusing earlier work: resume from an origin run, and memoised steps."""
