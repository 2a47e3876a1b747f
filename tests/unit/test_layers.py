"""The shape holds: import-linter's contracts (pyproject.toml) and no import cycle.

The contracts keep the pure core free of database, network, clock and the
wiring module, and keep the layers in order (composition roots on top, the
pure steps below). The cycle check reads the same import graph (grimp,
import-linter's own library)."""

import os
import subprocess
import sys
from pathlib import Path

import grimp

from helpers import ROOT


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"            # beside the Python running the tests
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})     # this checkout's package
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and " kept" in result.stdout, result.stdout


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle_in_the_package():
    imports = grimp.build_graph("mailtriage", cache_dir=None)
    graph = {module: {other for other in imports.find_modules_directly_imported_by(module)
                      if other.startswith("mailtriage")}
             for module in imports.modules if module.startswith("mailtriage")}
    cycles = [group for group in strongly_connected(graph) if len(group) > 1]
    assert cycles == []


def test_the_cycle_check_can_fail():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"], ["d"]]


def test_no_module_over_400_lines():
    long = {str(path.relative_to(ROOT)): n for path in (ROOT / "mailtriage").rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
