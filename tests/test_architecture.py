"""The shape of the package: the layers of the README's module table, no import cycles, a light core.

The import graph is built statically from the source (:mod:`ast`), so imports inside
functions, which run only when called, count as much as those at the top of a file.
The layers are read from the README's "Architecture" section, so the table and the
code cannot drift apart: every module has one row, and no module imports a module of
a layer listed after its own.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "nclib"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
README = ROOT.parent / "README.md"


def module_files(root: Path = ROOT) -> dict:
    """``{module name: path}`` of every ``.py`` file of the package."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name ``from <...> import`` refers to, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(module: str, path: Path, modules: dict) -> set:
    """The package's modules that ``module`` imports anywhere in its file.

    ``import a.b`` and ``from a.b import c`` point at ``a.b``; when ``c`` is itself a
    module (``from nclib import audio``) they point at ``a.b.c`` instead.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in modules else base)
    found = set()
    for target in targets:
        while target and target not in modules:  # `import nclib.x.name` of a non-module: its module
            target = target.rpartition(".")[0]
        if target and target != module:
            found.add(target)
    return found


def import_graph(root: Path = ROOT) -> dict:
    """``{module: set of modules of the package it imports}``."""
    modules = module_files(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict) -> list:
    """One cycle per strongly connected component with more than one module, as a path.

    Tarjan's algorithm finds the components; within each, a breadth-first search from
    its first module back to itself gives a shortest cycle through it.
    """
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_shortest_cycle(graph, set(component), component[0]) for component in components]


def _shortest_cycle(graph: dict, members: set, start: str) -> list:
    previous, frontier = {start: None}, [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & members):
                if successor == start:  # back at the start: walk the predecessors from node
                    path, step = [], node
                    while step is not None:
                        path.append(step)
                        step = previous[step]
                    return path[::-1] + [start]
                if successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"{start} is in a component but on no cycle")  # unreachable for a true component


# ----------------------------------------------------------------------------- the checker itself
def test_the_checker_finds_a_planted_cycle(tmp_path):
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from nclib.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")  # inside a function, relative
    (package / "c.py").write_text("import nclib.a\nfrom nclib import sub\n")
    graph = import_graph(package)
    assert graph["nclib.a"] == {"nclib.sub.b"}
    assert graph["nclib.sub.b"] == {"nclib.c"}
    assert graph["nclib.c"] == {"nclib.a", "nclib.sub"}
    assert find_cycles(graph) == [["nclib.a", "nclib.sub.b", "nclib.c", "nclib.a"]]
    assert find_cycles({"x": {"y"}, "y": set()}) == []
    assert missing_modules(package) == []
    (package / "c.py").write_text("from nclib.gone import g\n")
    assert missing_modules(package) == ["nclib.c: nclib.gone"]


# ----------------------------------------------------------------------------- the package
def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert "nclib.scores" in graph and graph["nclib"], "the package was not found"
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_subpackages_have_no_import_cycles():
    # a package counts as one unit (nclib.data.coswara -> nclib.data): nclib.data importing
    # nclib.audio while nclib.audio imports nclib.data.base is a cycle of the layers
    graph = {}
    for module, targets in import_graph().items():
        unit = _unit(module)
        graph.setdefault(unit, set()).update(_unit(target) for target in targets if _unit(target) != unit)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles between packages:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def _unit(module: str) -> str:
    """``nclib.data.coswara`` -> ``nclib.data``; top-level modules stay themselves."""
    return ".".join(module.split(".")[:2])


def test_every_import_of_the_package_names_a_module():
    # e.g. an import left behind from a module that was split up and removed (nclib.analysis)
    missing = missing_modules()
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)


def missing_modules(root: Path = ROOT) -> list:
    """``"<module>: <name>"`` for each import of a module of the package that has no file."""
    modules = module_files(root)
    missing = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [_absolute(module, path.name == "__init__.py", node)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            missing += [f"{module}: {name}" for name in names
                        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and name not in modules]
    return missing


def test_the_audio_front_end_does_not_import_the_data_layer():
    graph = import_graph()
    assert not {target for target in graph["nclib.audio"] if target.startswith("nclib.data")}


@pytest.mark.parametrize("heavy", ["torch", "librosa"])
def test_importing_the_core_pulls_in_no_heavy_library(heavy):
    code = (
        "import sys\n"
        "import nclib\n"
        "nclib.nc_score, nclib.logme_score, nclib.leep_score, nclib.compute_scores, nclib.REGISTRY\n"
        "nclib.evaluate_scores, nclib.evaluate_run, nclib.set_seed\n"
        f"print({heavy!r} in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=ROOT.parent)
    assert result.stdout.strip() == "False", f"import nclib imported {heavy}"


# ----------------------------------------------------------------------------- the layers
def readme_layers(readme: Path = README) -> dict:
    """``{module name: layer}`` from the module table of the README's "Architecture" section.

    Rows look like ``| layer | `nclib/path.py` | concern |``; an empty layer cell continues
    the layer above. The layers' order is the order in which they first appear.
    """
    text = readme.read_text(encoding="utf-8")
    section = text.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    layers, layer = {}, None
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.lstrip().startswith("|"):
            continue
        match = re.fullmatch(r"`(nclib/[\w/]+\.py)`", cells[1])
        if not match:
            continue
        layer = cells[0] or layer
        parts = Path(match.group(1)).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        assert name not in layers, f"{name} has two rows in the README's module table"
        layers[name] = layer
    return layers


def layer_violations(graph: dict, layers: dict) -> list:
    """``"<module> (<layer>) imports <target> (<higher layer>)"`` for each upward import.

    The package root is exempt as a target: it holds ``__version__``, which the store reads
    (:func:`root_imports_are_version_only` checks that nothing else is taken from it).
    """
    order = {layer: rank for rank, layer in enumerate(dict.fromkeys(layers.values()))}
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets - {PACKAGE}):
            if order[layers[target]] > order[layers[module]]:
                found.append(f"{module} ({layers[module]}) imports {target} ({layers[target]})")
    return found


def root_imports(root: Path = ROOT) -> list:
    """``"<module>: <name>"`` for each ``from nclib import <name>`` that takes a non-module from the root."""
    modules = module_files(root)
    found = []
    for module, path in modules.items():
        if module == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and _absolute(module, path.name == "__init__.py", node) == PACKAGE:
                found += [f"{module}: {alias.name}" for alias in node.names if f"{PACKAGE}.{alias.name}" not in modules]
    return found


def test_the_layer_checker_finds_a_planted_upward_import():
    graph = {"nclib": set(), "nclib.low": {"nclib"}, "nclib.high": {"nclib.low"}, "nclib.bad": {"nclib.high"}}
    layers = {"nclib.low": "a", "nclib": "b", "nclib.high": "b", "nclib.bad": "a"}  # order: a below b
    assert layer_violations(graph, layers) == ["nclib.bad (a) imports nclib.high (b)"]


def test_every_module_has_one_row_in_the_readme_table():
    layers, modules = readme_layers(), set(module_files())
    assert not modules - set(layers), f"modules missing from the README's module table: {sorted(modules - set(layers))}"
    assert not set(layers) - modules, f"README rows of modules that do not exist: {sorted(set(layers) - modules)}"


def test_no_module_imports_a_module_of_a_higher_layer():
    layers, graph = readme_layers(), import_graph()
    unlisted = sorted(set(graph) - set(layers))
    assert not unlisted, f"modules missing from the README's module table: {unlisted}"
    violations = layer_violations(graph, layers)
    assert not violations, "imports from a higher layer:\n" + "\n".join(violations)


def test_only_the_version_is_taken_from_the_package_root():
    assert {entry.split(": ")[1] for entry in root_imports()} <= {"__version__"}
