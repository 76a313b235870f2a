"""Tests of the content-addressed store (a package, so its module names cannot clash with other test folders)."""
