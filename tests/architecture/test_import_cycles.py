"""No import circles: within each package (the functions' code and the local stack), the modules
import one another as a tree, read from the code itself (AST: function-level imports count too,
since a deferred import is how a circle hides). A circle means neither module can be read, tested
or loaded without the other (issue 12: `devstack.gateway` ↔ `devstack.lambda_runtime`)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "homevisits": ROOT / "functions" / "shared" / "homevisits",
    "booking": ROOT / "functions" / "booking" / "booking",
    "dispatch": ROOT / "functions" / "dispatch" / "dispatch",
    "payments": ROOT / "functions" / "payments" / "payments",
    "devstack": ROOT / "infra" / "devstack",
}


def module_name(package: str, base: Path, path: Path) -> str:
    parts = [package, *path.relative_to(base).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str, base: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports anywhere in its code."""
    sources = {module_name(package, base, p): ast.parse(p.read_text(encoding="utf-8"))
               for p in sorted(base.rglob("*.py"))}

    def known(name: str) -> str | None:
        while name and name not in sources:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, tree in sources.items():
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps |= {known(a.name) for a in node.names if a.name.split(".")[0] == package} - {None}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.split(".")[0] == package:
                # `from pkg import mod` imports the module pkg.mod, `from pkg.mod import name` pkg.mod
                deps |= {known(f"{node.module}.{a.name}") or known(node.module) for a in node.names} - {None}
        graph[mod] = deps - {mod, package}  # the package's __init__ is loaded first by every module
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_modules_of_a_package_import_each_other_without_a_circle(package):
    graph = import_graph(package, PACKAGES[package])
    assert len(graph) > 1
    assert cycles(graph) == []


def test_the_check_sees_a_circle_through_a_deferred_import(tmp_path):
    """The check itself: two modules that import each other, one of them inside a function."""
    (tmp_path / "a.py").write_text("from pkg import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (tmp_path / "c.py").write_text("import pkg.a\n")
    assert cycles(import_graph("pkg", tmp_path)) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize("module", ["devstack.lambda_runtime", "devstack.gateway"])
def test_the_local_runtime_and_the_gateway_each_load_alone(module):
    """The Lambda instances load the runtime without the HTTP gateway (and the gateway loads alone)."""
    code = f"import sys, {module}; print('devstack.gateway' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == str(module == "devstack.gateway")
