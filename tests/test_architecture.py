"""The package's import structure, read from the source (AST), not from a running import.

* The library never imports the command line: only ``stimgen/cli.py`` and
  ``stimgen/__main__.py`` may import ``stimgen.cli``.
* The module import graph has no cycle. Every import counts, at module level or inside a
  function (a lazy import is still a dependency), relative imports are resolved, and
  ``from package import name`` is an edge to the submodule ``package.name`` when that is a
  module, else to the package itself. The lazy exports of a package ``__init__`` (its
  ``_EXPORTS`` table of ``name -> submodule``) are edges too.

Importing a submodule also runs its parent packages' ``__init__``; those implicit edges are
not counted, as Python imports a package before any of its submodules. Imports under
``if TYPE_CHECKING:`` never run (they serve annotations) and are not counted either.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "stimgen"
CLI = "stimgen.cli"
MAY_IMPORT_CLI = {"stimgen.cli", "stimgen.__main__"}


def _module_names(root: Path) -> dict[str, Path]:
    """``dotted module name -> file`` for every ``.py`` file of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module a relative ``from`` import names (``level`` dots, then ``target``)."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]  # a module's own package is level 1
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node of the tree, except the bodies of ``if TYPE_CHECKING:`` (their else runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> modules of the package it imports`` (at any depth of its AST)."""
    modules = _module_names(root)
    prefix = root.name
    graph: dict[str, set[str]] = {m: set() for m in modules}

    def inside(name: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    def owner(name: str) -> str | None:
        """The package module a dotted name refers to (longest existing prefix)."""
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            candidate = ".".join(parts[:k])
            if candidate in modules:
                return candidate
        return None

    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in modules else base)
            elif is_package and isinstance(node, ast.AnnAssign | ast.Assign):
                names = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in names) and isinstance(node.value, ast.Dict):
                    targets = [f"{module}.{v.value}" for v in node.value.values if isinstance(v, ast.Constant)]
            for t in targets:
                if inside(t):
                    found = owner(t)
                    if found is not None and found != module:
                        graph[module].add(found)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as ``[a, b, ..., a]``, or None if it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


# -- the package ---------------------------------------------------------------------------
def test_only_the_command_line_imports_the_command_line():
    graph = import_graph(PACKAGE_DIR)
    assert CLI in graph  # the graph does see the cli module
    offenders = sorted(m for m, deps in graph.items() if CLI in deps and m not in MAY_IMPORT_CLI)
    assert offenders == [], f"library modules importing {CLI}: {offenders}"


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE_DIR)
    assert {"stimgen.experiment", "stimgen.experiment.plan", "stimgen.filters"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_graph_sees_imports_inside_functions_and_relative_ones():
    graph = import_graph(PACKAGE_DIR)
    # run_experiment imports these inside its body, relative to stimgen.experiment.run
    assert {"stimgen._progress", "stimgen.io", "stimgen._validate"} <= graph["stimgen.experiment.run"]
    assert "stimgen.plotting" in graph["stimgen.experiment.figures"]  # `from .. import plotting`
    assert "stimgen.experiment" in graph["stimgen"]  # a lazy export of the package
    assert "stimgen._json" in graph["stimgen.cli"]


# -- the checker itself, on small packages with known structure ------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        # a cycle closed by an import inside a function
        ({"__init__.py": "", "a.py": "from .b import x\n", "b.py": "x = 1\ndef f():\n    from . import a\n"},
         ["pkg.a", "pkg.b", "pkg.a"]),
        # `from pkg import sub` is the submodule; `from ..a import` climbs a level
        ({"__init__.py": "", "a.py": "from pkg import sub\n", "sub/__init__.py": "",
          "sub/c.py": "def g():\n    from ..a import y\n", "sub/d.py": ""},
         None),
        ({"__init__.py": "", "a.py": "from pkg.sub import c\n", "sub/__init__.py": "",
          "sub/c.py": "def g():\n    from ..a import y\n"},
         ["pkg.a", "pkg.sub.c", "pkg.a"]),
        # imports for annotations only do not count; their `else` does
        ({"__init__.py": "", "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
          "b.py": "from .a import x\n"},
         None),
        ({"__init__.py": "", "a.py": "import typing\nif typing.TYPE_CHECKING:\n    pass\nelse:\n    from . import b\n",
          "b.py": "from .a import x\n"},
         ["pkg.a", "pkg.b", "pkg.a"]),
        # absolute `import pkg.b` and a lazy export table
        ({"__init__.py": "_EXPORTS = {'f': 'b'}\n", "b.py": "import pkg\n"},
         ["pkg", "pkg.b", "pkg"]),
    ],
)  # fmt: skip
def test_cycle_checker_on_known_packages(tmp_path, files, cycle):
    graph = import_graph(_package(tmp_path, files))
    assert find_cycle(graph) == cycle


def test_relative_resolution():
    assert _resolve("pkg.sub.c", False, 2, "a") == "pkg.a"
    assert _resolve("pkg.sub", True, 1, "c") == "pkg.sub.c"
    assert _resolve("pkg.sub", True, 2, None) == "pkg"
    assert _resolve("pkg.a", False, 1, None) == "pkg"
