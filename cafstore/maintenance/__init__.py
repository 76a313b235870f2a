"""Store maintenance beside the store: gc and retention, dedup, repair."""
