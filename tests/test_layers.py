"""The package's layers (docs/design.md, section 3): data flows down, nothing imports upward.

Imports are read from the source with :mod:`ast`; those under ``if TYPE_CHECKING:`` are type
hints only and never run, so they are allowed to name a higher layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dataworth

PACKAGE = Path(dataworth.__file__).parent

# Lower numbers sit lower; a package imports only from packages below it (and from itself), so
# two packages on one level never import each other. The package itself re-exports the public
# API and sits at the top. `evaluate` writes its figures and pages with `report`'s helpers, so
# it sits above `report`; `report` reads stored files and needs nothing from `evaluate`.
TOP = 9
LAYERS = {
    "errors": 0,
    "machine": 0,
    "data": 1,
    "metrics": 1,
    "learners": 2,
    "engine": 3,
    "methods": 4,
    "report": 5,
    "clean": 5,
    "evaluate": 6,
    "study": 7,
    "cli": 8,
}
# A folder of the package holds at most this many modules (its __init__ included, with a little
# slack over the 15 a reader takes in at a glance); a family that grows past it becomes a package.
MAX_MODULES_PER_FOLDER = 16


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself re-exports everything
        return TOP
    return LAYERS[parts[1]]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, top_level_only: bool) -> list[str]:
    """Imported ``dataworth`` modules, skipping type-checking blocks."""
    found: list[str] = []

    def visit(node: ast.AST, depth: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append(child.module)
            elif isinstance(child, ast.Import):
                found.extend(alias.name for alias in child.names)
            elif top_level_only and isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            ):
                continue
            visit(child, depth + 1)

    visit(tree, 0)
    return [name for name in found if name == "dataworth" or name.startswith("dataworth.")]


def _sources() -> dict[str, ast.AST]:
    return {_module_name(p): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    # A new module or package at the root must be placed in a layer before the checks can see it.
    unplaced = sorted(
        {module.split(".")[1] for module in _sources() if "." in module} - set(LAYERS)
    )
    assert unplaced == []


def test_the_study_is_a_package_below_the_command_line() -> None:
    sources = _sources()
    assert "dataworth.study" in sources and "dataworth.study.context" in sources
    assert _layer("dataworth.study.steps") < _layer("dataworth.cli") < TOP
    # The steps need the context at run time, the runner needs the steps: neither may need the
    # package's __init__, which imports the runner.
    for module in ("context", "steps", "stable_step", "summary", "runner"):
        imported = _imports(sources[f"dataworth.study.{module}"], top_level_only=True)
        assert "dataworth.study" not in imported


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_imports_from_a_higher_layer_or_a_sibling() -> None:
    upward = [
        f"{module} -> {target}"
        for module, tree in _sources().items()
        for target in _imports(tree, top_level_only=False)
        if _package(target) != _package(module) and _layer(target) >= _layer(module)
    ]
    assert upward == []


def test_no_folder_holds_more_than_a_reader_takes_in() -> None:
    crowded = {
        str(folder.relative_to(PACKAGE.parent)): count
        for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir())]
        if (count := len(list(folder.glob("*.py")))) > MAX_MODULES_PER_FOLDER
    }
    assert crowded == {}


def test_module_level_imports_have_no_cycle() -> None:
    sources = _sources()
    known = set(sources)

    def resolve(name: str) -> str:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {
        module: {resolve(t) for t in _imports(tree, top_level_only=True)} - {module, "dataworth"}
        for module, tree in sources.items()
    }
    # Depth-first search; a module met again while still on the path closes a cycle.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []


def _every_import_edge(tree: ast.AST, known: set[str]) -> set[str]:
    """Modules a module may import when it runs, however deep the import statement sits (in a
    function, under ``TYPE_CHECKING``): ``from P import m`` names the package ``P``, whose
    ``__init__`` runs, and its module ``P.m`` when there is one."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    # The package itself only re-exports the public API; nothing inside imports it.
    return {name for name in found if name in known} - {"dataworth"}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of a graph, each as the path that closes it (depth first)."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    return cycles


def test_no_import_cycle_even_through_functions_type_hints_or_a_package_init() -> None:
    sources = _sources()
    known = set(sources)
    graph = {module: _every_import_edge(tree, known) - {module} for module, tree in sources.items()}
    assert _cycles(graph) == []


def test_the_cycle_check_sees_a_cycle_through_a_package_init() -> None:
    # The package imports its learner; the learner, inside a function, imports a kernel module
    # through the package: the package's __init__ is on the cycle.
    known = {"dataworth.pkg", "dataworth.pkg.learner", "dataworth.pkg.kernels"}
    package = ast.parse("from dataworth.pkg.learner import Learner\n")
    learner = ast.parse("def kernels():\n    from dataworth.pkg import kernels\n")
    graph = {
        "dataworth.pkg": _every_import_edge(package, known),
        "dataworth.pkg.learner": _every_import_edge(learner, known),
        "dataworth.pkg.kernels": set(),
    }
    assert _cycles(graph) == [["dataworth.pkg", "dataworth.pkg.learner", "dataworth.pkg"]]


def test_the_layer_check_sees_an_upward_import() -> None:
    tree = ast.parse("from dataworth.study import run_study\n")
    assert _imports(tree, top_level_only=False) == ["dataworth.study"]
    assert _layer("dataworth.study") > _layer("dataworth.methods.loo")
    guarded = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dataworth.study import X\n"
    )
    assert _imports(guarded, top_level_only=False) == []


# A module longer than this holds more than one job; split it, or say in its docstring why not
# (a docstring line starting "Why one long module:").
MAX_LINES = 600


def test_no_module_is_long_without_a_reason() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if len(text.splitlines()) > MAX_LINES and "Why one long module:" not in docstring:
            long.append(f"{_module_name(path)} ({len(text.splitlines())} lines)")
    assert not long, f"modules over {MAX_LINES} lines with no reason in their docstring: {long}"
