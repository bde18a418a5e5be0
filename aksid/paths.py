"""Where the suites and the built-in scenarios live: `suites/`, `fixtures/` in a clone, inside the package when installed.

Found through the import system without importing them, so pytest can still rewrite their asserts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is not importable; install aksid (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def suites_dir() -> Path:
    return _package_dir("aksid.suites")


def scenarios_dir() -> Path:
    return _package_dir("aksid.fixtures") / "scenarios"


def deploy_dir() -> Path | None:
    """aksid's own rights (deploy/: RBAC manifests, Azure role definitions): inside the package when installed,
    beside it in a clone; None when neither holds them."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "deploy", package.parent / "deploy"):
        if (candidate / "rbac.yaml").is_file():
            return candidate
    return None
