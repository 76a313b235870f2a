"""The client's modules import one way: views on top of the model, the model's levels top-down.

Read from the source with ``ast`` (imports inside functions included), so a
lazy import that closes a cycle fails here as well as a module-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cafstore.client

CLIENT = Path(cafstore.client.__file__).parent
MODEL = ("base", "flows", "tasks", "artifacts", "data", "runstate", "pathspecs", "namespaces", "tags")


def module_name(path: Path) -> str:
    """``views/html.py`` -> ``views.html``; a package's ``__init__.py`` is the package ('' for the client)."""
    parts = list(path.relative_to(CLIENT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict:
    """module (dotted, relative to cafstore.client) -> the cafstore.client modules it imports."""
    modules = {module_name(p): p for p in CLIENT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cafstore.client"):
                base = node.module[len("cafstore.client") :].lstrip(".")
                for alias in node.names:
                    for candidate in (f"{base}.{alias.name}".lstrip("."), base):
                        if candidate in modules and candidate not in ("", name):
                            found.add(candidate)
                            break
        graph[name] = found
    return graph


def test_the_model_never_imports_the_views():
    graph = imports()
    for module in MODEL:
        assert not {m for m in graph[module] if m.startswith("views")}, module


def test_no_import_cycle_even_through_lazy_imports():
    graph = imports()
    state: dict = {}

    def visit(module: str, path: list) -> None:
        state[module] = "open"
        for target in graph[module]:
            assert state.get(target) != "open", " -> ".join(path + [target])
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
