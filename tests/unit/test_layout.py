"""The package's structure: no import cycles, a docstring atop every module, modules of one
concept, and the layering between packages (a lower package never imports a higher one)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "reuse"

# Lower packages first; a module may import its own package and the ones listed before it.
LAYERS = [
    {"_version", "core"},
    {"formats"},
    {"surgery"},
    {"data"},
    {"augment"},
    {"cache"},
    {"training"},
    {"inference", "guide", "weights", "inspection", "tune", "pretrain"},
    {"cli", "__main__"},
]
# Modules over this many lines must hold a single concept, and say so here.
MAX_LINES = 600
ONE_CONCEPT = {
    "reuse.inspection.fast": "one shape/weight rule per Keras layer class, for the TF-free inspect",
    "reuse.surgery.layer_spec": "the layer-spec grammar: one table of kinds, its parser and builder",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every reuse module `name` imports, at the top or inside a function."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in modules and m != name}


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_import_cycles():
    graph = _graph()
    # A package's __init__ that re-exports is not an edge back into the package.
    graph = {
        a: {
            b
            for b in deps
            if not (
                a.startswith(b + ".")
                and (PACKAGE / "/".join(b.split(".")[1:]) / "__init__.py").exists()
            )
        }
        for a, deps in graph.items()
    }
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    return -1


def test_lower_packages_never_import_higher_ones():
    wrong = []
    for name, deps in _graph().items():
        if name == "reuse":
            continue
        for dep in deps:
            if dep != "reuse" and _layer(dep) > _layer(name):
                wrong.append(f"{name} -> {dep}")
    assert wrong == []


def test_every_package_is_placed_in_a_layer():
    tops = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    placed = set().union(*LAYERS)
    assert tops <= placed, f"add {sorted(tops - placed)} to LAYERS"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_opens_with_what_it_is_for(name):
    path = _modules()[name]
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc.split()) >= 4, f"{path} needs a docstring saying what it is for"


def test_modules_hold_one_concept():
    long = {
        name: len(path.read_text().splitlines())
        for name, path in _modules().items()
        if len(path.read_text().splitlines()) > MAX_LINES and name not in ONE_CONCEPT
    }
    assert long == {}
