"""The graph package's shape: parser and rules each depend on the model, never on each other.

The imports are read from the modules' source with :mod:`ast` (every
``import``, also inside functions), because importing a submodule at run
time always runs the package's ``__init__``, which loads all three.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Set

import pytest

import cafstore.runner.graph as graph_package
from cafstore.exception import GraphError
from cafstore.runner.graph import graph_from_source, validate

PACKAGE = "cafstore.runner.graph"


def imported_names(module_name: str) -> Set[str]:
    """Every dotted name ``module_name`` imports: ``a.b`` and, for ``from a.b import c``, ``a.b.c`` too."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__).read_text(), filename=module.__file__)
    package = module_name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def graph_imports(module: str) -> Set[str]:
    """The modules of the graph package (or the package itself) that ``module`` imports."""
    names = imported_names(f"{PACKAGE}.{module}")
    return {name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")}


def test_the_helper_sees_imports_inside_functions(tmp_path, monkeypatch):
    """Guard for the test below: a lazy import inside a function must count."""
    (tmp_path / "lazy_pkg").mkdir()
    (tmp_path / "lazy_pkg" / "__init__.py").write_text("")
    (tmp_path / "lazy_pkg" / "mod.py").write_text("def f():\n    from . import other\n    import json\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"lazy_pkg", "lazy_pkg.other", "json"} <= imported_names("lazy_pkg.mod")


@pytest.mark.parametrize("module, other", [("parser", "rules"), ("rules", "parser")])
def test_parser_and_rules_do_not_import_each_other(module, other):
    imports = graph_imports(module)
    assert f"{PACKAGE}.{other}" not in imports, f"{module}.py imports {other}.py"
    assert PACKAGE not in imports, f"{module}.py imports the package, which loads {other}.py"
    model = f"{PACKAGE}.model"
    assert model in imports
    assert all(name == model or name.startswith(model + ".") for name in imports), sorted(imports)


def test_the_model_imports_neither_parser_nor_rules():
    # only its own split/join analysis, which in turn reads nothing but the model
    structure = f"{PACKAGE}.structure"
    assert all(name == structure or name.startswith(structure + ".") for name in graph_imports("model"))
    assert all(name.startswith(f"{PACKAGE}.model") for name in graph_imports("structure"))


def test_the_package_re_exports_its_public_api():
    from cafstore.runner.graph import model, parser, rules

    expected = {
        "FlowGraph": model.FlowGraph,
        "StepNode": model.StepNode,
        "RESERVED_NAMES": model.RESERVED_NAMES,
        "STEP_TYPES": model.STEP_TYPES,
        "NEXT_KEYWORDS": parser.NEXT_KEYWORDS,
        "graph_from_class": parser.graph_from_class,
        "graph_from_source": parser.graph_from_source,
        "validate": rules.validate,
    }
    assert sorted(graph_package.__all__) == sorted(expected)
    for name, value in expected.items():
        assert getattr(graph_package, name) is value, name


MESSY = """from cafstore import FlowSpec, step


class F(FlowSpec):
    @step
    def start(self):
        if True:
            self.next(self.a)
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.nowhere, 3)

    @step
    def a(self):
        self.next(self.end)

    @step
    def b(self):
        self.next(self.end, 3)

    @step
    def end(self):
        pass
"""


def test_what_parsing_notes_is_public_data_on_the_model():
    """Parsing a broken flow does not raise; the rules later report what the model recorded."""
    graph = graph_from_source(MESSY, "F", "messy.py")
    assert [(e.line, e.step) for e in graph.parse_problems] == [(16, "a")]  # the second def a
    assert graph["start"].misplaced_next == [8]
    assert graph["start"].next_line == 9
    assert graph["a"].parse_problems == []  # the first def a (with its bad targets) is gone
    assert [(e.line, e.step) for e in graph["b"].parse_problems] == [(21, "b")]  # the target 3
    assert [e.step for e in graph.structure_problems] == ["end"]  # two branches reach end, no join
    assert {node.type for node in graph} <= set(graph_package.STEP_TYPES)
    with pytest.raises(GraphError) as info:
        validate(graph)
    assert (info.value.file, info.value.line, info.value.step) == ("messy.py", 16, "a")
