"""The package's shape: no import circle anywhere (by the import graph and by
importing each module first in a fresh interpreter), every module says on
its first line what it holds, and the command line uses only the public API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

import sysvkit

PKG = Path(sysvkit.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: Dict[str, Path] = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}
# Compiled modules (leaves of the graph): ``from . import _core`` names one.
COMPILED = {module_name(p.with_name(p.name.split(".")[0] + ".py"))
            for p in PKG.rglob("*") if p.suffix in (".so", ".pyi")}


def imports_of(name: str) -> Set[str]:
    """The package's modules that ``name`` imports anywhere in its text (at
    the top or inside functions): ``from X import a`` counts as X.a when
    that is a module, else as X."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = []
            for alias in node.names:
                sub = base + "." + alias.name
                targets.append(sub if sub in MODULES or sub in COMPILED else base)
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH: Dict[str, Set[str]] = {name: imports_of(name) for name in MODULES}


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import circle as a list of modules (first == last), or None."""
    state: Dict[str, int] = {}      # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_graph_finder_sees_a_circle() -> None:
    """The check below can fail: a circle of three is found."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_is_read() -> None:
    """The graph has the edges it should (so an empty graph cannot pass)."""
    assert "sysvkit.cli.tables" in GRAPH["sysvkit.demo"]
    assert "sysvkit.cli.ipcs" in GRAPH["sysvkit.cli.main"]
    assert "sysvkit.bench.runner" in GRAPH["sysvkit.bench.workloads.pair"]
    assert "sysvkit.cli" not in GRAPH["sysvkit.demo"]


def test_no_import_circle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: %s" % " -> ".join(cycle or [])


IMPORTABLE = sorted(n for n in MODULES if not n.endswith("__main__"))


@pytest.mark.parametrize("name", IMPORTABLE)
def test_each_module_imports_first(name: str) -> None:
    """Imported first in a fresh interpreter, every module loads: a circle
    that the order of imports hides elsewhere shows here."""
    proc = subprocess.run([sys.executable, "-c", "import importlib, sys; "
                           "importlib.import_module(sys.argv[1])", name],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", sorted(MODULES))
def test_first_line_says_what_the_module_holds(name: str) -> None:
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text()), clean=False)
    assert doc and doc.split("\n")[0].strip(), "%s has no first docstring line" % name
    assert len(doc.split("\n")[0].split()) >= 4, "%s: a word or two says too little" % name


def test_cli_uses_only_the_public_api() -> None:
    """The command line reads the system only through ``sysvkit`` and
    ``sysvkit.lowlevel``; bench and demo are programs of their own."""
    allowed = {"sysvkit", "sysvkit.lowlevel", "sysvkit.bench", "sysvkit.demo"}
    for name in MODULES:
        if name == "sysvkit.cli" or name.startswith("sysvkit.cli."):
            bad = {m for m in GRAPH[name] if m not in allowed and not m.startswith("sysvkit.cli")}
            assert not bad, "%s imports %s" % (name, sorted(bad))


def test_library_does_not_import_the_programs() -> None:
    """The library layer never imports the command line or the bench."""
    programs = ("sysvkit.cli", "sysvkit.bench", "sysvkit.demo", "sysvkit.__main__")
    for name, deps in GRAPH.items():
        if name.startswith(programs):
            continue
        bad = {m for m in deps if m.startswith(programs)}
        assert not bad, "%s imports %s" % (name, sorted(bad))


def test_every_package_ships() -> None:
    """Each package folder is listed in pyproject.toml, so that a wheel
    (not only an editable install) carries it."""
    pyproject = PKG.parent / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("an installed copy: no pyproject.toml beside it")
    import re
    m = re.search(r"^packages\s*=\s*\[([^\]]*)\]", pyproject.read_text(), re.M)
    assert m, "no packages list under [tool.setuptools]"
    listed = set(re.findall(r'"([^"]+)"', m.group(1)))
    folders = {module_name(p) for p in PKG.rglob("__init__.py")}
    assert folders <= listed, "not shipped: %s" % sorted(folders - listed)
