"""The check catalogue, read from the `check` markers in the suites (so docs cannot drift from code)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from aksid.checks import SEVERITIES, check_info
from aksid.paths import suites_dir

AREAS = {
    "NMI": "the pod-identity add-on's node agent",
    "BIND": "identity bindings in the cluster",
    "WI": "workload identity: OIDC issuer, webhook, federated credentials, ServiceAccounts",
    "RBAC": "role assignments in Azure",
    "DNS": "the zone, its delegation and the demo record",
    "ISS": "cert-manager issuers and the demo certificate",
    "TLS": "what a browser receives from the demo host",
    "PROBE": "identity probes (provision mode)",
    "CANARY": "a canary host through external-dns and cert-manager (provision mode)",
}


class CatalogueError(ValueError):
    """A folder of checks cannot be read; the message is one sentence for the user."""


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    severity: str
    area: str
    modes: tuple[str, ...]
    remediation: str
    test: str


def load_catalogue(extra: Iterable[Path] = ()) -> list[Entry]:
    """The bundled checks, and those in `extra` (a team's check files or folders), sorted by area then ID."""
    entries = []
    for path in sorted(suites_dir().glob("test_*.py")):
        entries += _entries(importlib.import_module(f"aksid.suites.{path.stem}"), f"{path.stem}.py")
    for path in _check_files(extra):
        entries += _entries(_import_file(path), str(path))
    return sorted(entries, key=lambda e: (list(AREAS).index(e.area) if e.area in AREAS else len(AREAS), e.area, e.id))


def _entries(module: ModuleType, where: str) -> list[Entry]:
    entries = []
    for name, function in inspect.getmembers(module, inspect.isfunction):
        for mark in getattr(function, "pytestmark", []):
            if mark.name == "check":
                info = check_info(mark)
                entries.append(Entry(info.id, info.title, info.severity, info.area, info.modes, info.remediation,
                                     f"{where}::{name}"))
    return entries


def _check_files(paths: Iterable[Path]) -> Iterator[Path]:
    """pytest's default file patterns (test_*.py, *_test.py) under each folder; a file stands for itself."""
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if p.name.startswith("test_") or p.name.endswith("_test.py"))
        else:
            raise CatalogueError(f"{path} is neither a check file nor a folder of checks")


def _import_file(path: Path) -> ModuleType:
    """Import a team's check file by path, with its folder importable as pytest's rootdir-relative import would make it."""
    name = f"aksid_checks_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CatalogueError(f"{path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a team's file: report it in one sentence, not a traceback
        raise CatalogueError(f"{path} failed to import: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def as_markdown(entries: list[Entry]) -> str:
    lines = ["| ID | severity | title | remediation |", "|---|---|---|---|"]
    for entry in entries:
        cells = [entry.id, entry.severity, entry.title, entry.remediation]
        lines.append("| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def as_text(entries: list[Entry]) -> str:
    lines = []
    for entry in entries:
        lines.append(f"{entry.id:<9} {entry.severity:<8} {entry.title}")
        lines.append(f"{'':<18} modes: {', '.join(entry.modes)}; test: {entry.test}")
        lines.append(f"{'':<18} fix: {entry.remediation}")
    return "\n".join(lines) + "\n"


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)
