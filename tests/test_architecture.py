"""The layering and encapsulation rules of docs/architecture.md, checked on the source.

Read from the files with ``ast`` (nothing is imported), so a violation is
reported with its file and line however deep inside a function it hides:

- dependencies point one way: ``cli -> runner -> client/maintenance -> store``;
  the store knows nothing about flows, runs or the command line;
- no module uses another module's ``_private`` names: each seam has a public,
  documented name, so a module can change its insides without breaking others.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
# Source folder -> the package it installs as (pyproject.toml's package-dir).
PACKAGE_DIRS = {"cafstore": "cafstore", "runner": "cafstore.runner", "cli": "cafstore.cli"}

# Which layers each layer may import (besides itself). A layer is the
# longest matching module prefix below.
LAYERS = {
    "cafstore.exception": set(),
    # Progress on a terminal: like the error tree, every layer may report through it.
    "cafstore.progress": set(),
    "cafstore.store": {"cafstore.exception", "cafstore.progress"},
    "cafstore.schema": {"cafstore.exception", "cafstore.progress", "cafstore.store"},
    "cafstore.maintenance": {"cafstore.exception", "cafstore.progress", "cafstore.store", "cafstore.schema"},
    "cafstore.client": {"cafstore.exception", "cafstore.progress", "cafstore.store", "cafstore.schema"},
    # The web UI and report: a reader, like a view of the client, that the command line serves.
    "cafstore.ui": {"cafstore.exception", "cafstore.progress", "cafstore.store", "cafstore.schema", "cafstore.client"},
    # Sharing runs between stores works on whole stores, beside maintenance (docs/remotes.md).
    "cafstore.remote": {"cafstore.exception", "cafstore.progress", "cafstore.store", "cafstore.schema"},
    "cafstore.runner": {
        "cafstore",
        "cafstore.exception",
        "cafstore.progress",
        "cafstore.store",
        "cafstore.schema",
        "cafstore.client",
        "cafstore.maintenance",
    },
    "cafstore.cli": {
        "cafstore",
        "cafstore.exception",
        "cafstore.progress",
        "cafstore.store",
        "cafstore.schema",
        "cafstore.client",
        "cafstore.maintenance",
        "cafstore.remote",
        "cafstore.runner",
        "cafstore.ui",
    },
    # The package root only re-exports, lazily, by name.
    "cafstore": {"cafstore.exception", "cafstore.store", "cafstore.client", "cafstore.runner"},
}

# Edges against the direction above, each with the reason it must stay.
ALLOWED_EDGES = {
    # ``MyFlow()`` under ``python flow.py`` is the program's entry point: FlowSpec hands the
    # process to the flow's command line, as Metaflow's FlowSpec does. Imported lazily there.
    ("cafstore.runner.authoring.flowspec", "cafstore.cli.flow_commands"),
}

# Private names of the standard library and third-party APIs that are documented for use.
FOREIGN_PRIVATE_OK = {
    "_exit",
    "_getframe",
    "_replace",
    "_asdict",
    "_fields",
    "_make",
    "_current_frames",
    "_field_defaults",
    "_name_",
    "_value_",
    "_missing_",
    "_ignore_",
}


def modules() -> Iterator[Tuple[str, Path]]:
    for folder, package in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if folder == "cafstore" and parts and parts[0] in ("runner", "cli"):
                continue  # not a real folder of the cafstore/ tree
            yield ".".join([package, *parts]), path


MODULES: Dict[str, Path] = dict(modules())


def layer_of(module: str) -> str:
    best = ""
    for layer in LAYERS:
        if (module == layer or module.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    return best


def imports_of(module: str, path: Path) -> Iterator[Tuple[str, int, List[str]]]:
    """(imported module, line, names) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = []
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    yield f"{target}.{alias.name}", node.lineno, []  # ``from pkg import module``
                else:
                    names.append(alias.name)
            if names:
                yield target, node.lineno, names


def test_every_source_folder_is_found():
    assert "cafstore.store" in MODULES and "cafstore.runner" in MODULES and "cafstore.cli" in MODULES
    assert all(layer_of(name) for name in MODULES), [name for name in MODULES if not layer_of(name)]


def test_dependencies_point_one_way():
    wrong = []
    for module, path in MODULES.items():
        own = layer_of(module)
        for target, line, names in imports_of(module, path):
            if not (target == "cafstore" or target.startswith("cafstore.")):
                continue
            if target == "cafstore" and set(names) <= {"__version__"}:
                continue  # the root package itself (its version); its other names are lazy re-exports
            other = layer_of(target)
            if other == own or other in LAYERS[own] or (module, target) in ALLOWED_EDGES:
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {module} ({own}) imports {target} ({other})")
    assert not wrong, "imports against the layering of docs/architecture.md:\n" + "\n".join(wrong)


def _defined_names(tree: ast.AST) -> Set[str]:
    """Every name a module defines for itself: functions, classes, assigned names and attributes, slots."""
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            names.update(
                c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_uses_another_modules_private_names():
    wrong = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        own = _defined_names(tree)
        for target, line, names in imports_of(module, path):
            if target.startswith("cafstore"):
                wrong += [f"{path.relative_to(ROOT)}:{line}: imports {target}.{n}" for n in names if _private(n)]
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr in own or node.attr in FOREIGN_PRIVATE_OK:
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses {ast.unparse(node)}")
    assert not wrong, "private names used across modules (give them a public name):\n" + "\n".join(wrong)
