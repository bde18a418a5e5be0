"""The package's imports point one way: no module of aksid imports, directly or through others, one that imports it
back (function-level imports included: a circle hidden in a function is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

from .harness import REPO


def _import_graph() -> dict[str, set[str]]:
    package = REPO / "aksid"
    modules: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("aksid"):
                for alias in node.names:  # `from aksid import facts` imports the module aksid.facts
                    full = f"{node.module}.{alias.name}"
                    graph[name].add(full if full in modules else str(node.module))
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names if alias.name.startswith("aksid")}
    return {name: {t for t in targets if t in modules and t != name} for name, targets in graph.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
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
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_package_has_no_import_circle() -> None:
    assert _circles(_import_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


HOOK_MODULES = {"aksid.plugin", "aksid.activation", "aksid.pytest_outcomes", "aksid.pytest_terminal", "aksid.checks"}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for child in graph[todo.pop()] - seen:
            seen.add(child)
            todo.append(child)
    return seen


def test_the_run_package_never_imports_the_hook_modules() -> None:
    """aksid.run is what a run does; the pytest hooks drive it, never the other way round."""
    graph = _import_graph()
    run_modules = [name for name in graph if name == "aksid.run" or name.startswith("aksid.run.")]
    assert {"aksid.run.run", "aksid.run.sources", "aksid.run.handover", "aksid.run.options"} <= set(run_modules)
    for name in run_modules:
        assert not _reachable(graph, name) & HOOK_MODULES, name
    assert "aksid.run.run" in _reachable(graph, "aksid.plugin")  # the finder sees the hooks' way in


def test_the_run_package_runs_without_pytest() -> None:
    import subprocess
    import sys

    code = ("import sys, aksid.run.run, aksid.run.sources, aksid.run.handover, aksid.run.options; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest', 'kubernetes', 'azure')))")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert process.stdout.strip() == "[]", process.stdout  # nor the cloud clients: a source imports them when it collects
