"""Which part of aksid imports which: the package's import graph, folded by part, as the issue's note describes it.

    .venv/bin/python bench/import_graph.py [ROOT]    # ROOT: a checkout (default: this one)

Every `import aksid...` and `from aksid... import` of every module (function-level imports included, as
tests/test_imports.py reads them), folded to parts: a subpackage (aksid.run, aksid.collect, aksid.sandbox...) is
one part, a top-level module is its own. Prints each part's size and the parts it imports, then the hook modules'
reach: how much of the package the pytest hooks pull in, and whether anything imports them back.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

HOOKS = ("aksid.plugin", "aksid.activation", "aksid.pytest_outcomes", "aksid.pytest_terminal")


def graph(root: Path) -> tuple[dict[str, set[str]], dict[str, int]]:
    modules = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (root / "aksid").rglob("*.py")}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("aksid"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    edges[name].add(full if full in modules else str(node.module))
            elif isinstance(node, ast.Import):
                edges[name] |= {a.name for a in node.names if a.name.startswith("aksid")}
    lines = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules.items()}
    return {n: {t for t in ts if t in modules and t != n} for n, ts in edges.items()}, lines


def part(module: str) -> str:
    pieces = module.split(".")
    return ".".join(pieces[:2]) if len(pieces) > 1 else module


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    edges, lines = graph(root)
    folded: dict[str, set[str]] = defaultdict(set)
    sizes: dict[str, int] = defaultdict(int)
    for module, targets in edges.items():
        sizes[part(module)] += lines[module]
        folded[part(module)] |= {part(t) for t in targets if part(t) != part(module)}
    for name in sorted(folded, key=lambda p: -sizes[p]):
        print(f"{name:<32} {sizes[name]:>6} lines -> {', '.join(sorted(folded[name])) or '-'}")
    hooks = [h for h in HOOKS if h in edges]
    importers = sorted(m for m, ts in edges.items() if m not in hooks and ts & set(hooks))
    print(f"\nhook modules: {', '.join(f'{h} ({lines[h]} lines)' for h in hooks)}")
    print(f"modules importing a hook module: {', '.join(importers) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
