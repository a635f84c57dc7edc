"""The import architecture of docs/architecture.md, checked: the contracts of .importlinter, and no import cycle.

import-linter checks the layers (a package imports only the packages below it), the independence of the predictor
packages, that models/ never reaches Lightning, and that no sibling packages import each other in a circle. The
second test adds what its contracts do not say module by module: no import cycle among the package's modules at
all (strongly connected components of grimp's import graph, lazy imports included).
"""

from __future__ import annotations

from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lightning_lookahead"


def test_import_contracts_are_kept(capsys) -> None:
    status = lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert "0 broken" in report, report


def import_cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(sorted(imports[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_no_module_level_import_cycle() -> None:
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    modules = graph.modules
    imports = {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}
    cycles = import_cycles(imports)
    assert cycles == [], "\n".join(" ↔ ".join(c) for c in cycles)
