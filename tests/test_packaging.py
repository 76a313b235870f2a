"""Packaging: one top-level import name (cafstore), and the public names the design promises."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cafstore

# The design's re-exports (design.md section 1) plus the store's fixed names (issue: Foundation).
DESIGN_NAMES = [
    "FlowSpec",
    "step",
    "Parameter",
    "JSONType",
    "IncludeFile",
    "current",
    "merge_artifacts",
    "retry",
    "catch",
    "Flow",
    "Run",
    "Step",
    "Task",
    "DataArtifact",
    "namespace",
    "get_namespace",
    "default_namespace",
]
STORE_NAMES = ["Store", "ObjectId", "StoreConfig", "CafstoreError", "MetaflowException"]


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=str(cwd), capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", ["runner", "cli"])
def test_only_cafstore_is_a_top_level_name(tmp_path, name):
    """From anywhere but the checkout's root, `import runner` / `import cli` must fail."""
    out = run_python(
        f"""
        import importlib.util, sys
        sys.path = [p for p in sys.path if p not in ("", ".")]
        print(importlib.util.find_spec({name!r}) is None)
    """,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True", f"`import {name}` works outside the repository: it must not"


def test_subpackages_import_under_cafstore(tmp_path):
    out = run_python(
        """
        import cafstore.runner, cafstore.cli, cafstore.store, cafstore.client
        import cafstore.cli.main
        print(cafstore.runner.__name__, cafstore.cli.__name__)
    """,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cafstore.runner", "cafstore.cli"]


def test_all_lists_the_design_names():
    for name in DESIGN_NAMES + STORE_NAMES + ["__version__"]:
        assert name in cafstore.__all__, name


def test_store_names_resolve():
    from cafstore.exception import CafstoreError
    from cafstore.store import ObjectId, Store, StoreConfig

    assert cafstore.Store is Store and cafstore.ObjectId is ObjectId and cafstore.StoreConfig is StoreConfig
    assert cafstore.CafstoreError is CafstoreError and cafstore.MetaflowException is CafstoreError
    assert isinstance(cafstore.__version__, str)
    with pytest.raises(AttributeError):
        cafstore.no_such_name  # noqa: B018


def test_importing_cafstore_is_cheap(tmp_path):
    """Every task process imports cafstore: it must not pull in the store's dependencies eagerly."""
    out = run_python(
        """
        import sys
        import cafstore
        heavy = [m for m in ("lmdb", "numpy", "cloudpickle", "click", "cafstore.store") if m in sys.modules]
        print(heavy)
    """,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_package_folder_is_listed_for_installation():
    """pyproject.toml lists packages by hand (runner/ and cli/ install under cafstore): a folder left
    out works in an editable install and is missing from a wheel, so compare the list with the tree."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    mapping = {"cafstore": "cafstore", "runner": "cafstore.runner", "cli": "cafstore.cli"}
    found = set()
    for folder, package in mapping.items():
        for init in (root / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(root / folder).parts
            if folder == "cafstore" and parts[:1] in (("runner",), ("cli",)):
                continue
            found.add(".".join((package, *parts)))
    assert found == listed, f"missing from pyproject.toml: {sorted(found - listed)}; stale: {sorted(listed - found)}"
