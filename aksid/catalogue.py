"""The check catalogue, read from the `check` markers in the suites (so docs cannot drift from code)."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from aksid.checks import SEVERITIES, check_info
from aksid.paths import suites_dir

AREAS = {
    "NMI": "the pod-identity add-on's node agent",
    "BIND": "identity bindings in the cluster",
    "RBAC": "role assignments in Azure",
    "DNS": "the zone, its delegation and the demo record",
    "ISS": "cert-manager issuers and the demo certificate",
    "TLS": "what a browser receives from the demo host",
}
# Every check reads the snapshot, so it runs wherever a snapshot comes from.
MODES = ("attach", "replay")


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    severity: str
    area: str
    modes: tuple[str, ...]
    remediation: str
    test: str


def load_catalogue() -> list[Entry]:
    entries = []
    for path in sorted(suites_dir().glob("test_*.py")):
        module = importlib.import_module(f"aksid.suites.{path.stem}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            for mark in getattr(function, "pytestmark", []):
                if mark.name == "check":
                    info = check_info(mark)
                    entries.append(Entry(info.id, info.title, info.severity, info.area, MODES, info.remediation,
                                         f"{path.stem}.py::{name}"))
    return sorted(entries, key=lambda e: (list(AREAS).index(e.area) if e.area in AREAS else 99, e.id))


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
