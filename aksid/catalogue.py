"""The check catalogue, read from the `check` markers in the suites (so docs cannot drift from code).

What the markers declare is also where the reports' maps of checks come from: the arrows of the chain picture
each check judges (`link`), the units of evidence it reads (`reads`: the coverage names the checks a missing unit
leaves unjudged) and the check a change of a unit is shown under in `aksid diff` (`grouped_under`). A new check
needs its marker and its red scenario, nothing else.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from aksid.check_info import SEVERITIES, check_info
from aksid.paths import suites_dir

AREAS = {
    "NMI": "the pod-identity add-on's node agent",
    "BIND": "identity bindings in the cluster",
    "WI": "workload identity: OIDC issuer, webhook, federated credentials, ServiceAccounts",
    "RBAC": "role assignments in Azure",
    "ACCESS": "who can act as the DNS identity, re-point it or widen its rights",
    "DNS": "the zone, its delegation and the demo record",
    "ISS": "cert-manager issuers and the demo certificate",
    "TLS": "what a browser receives from the demo host",
    "MIG": "migration from pod identity to workload identity",
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
    reads: tuple[str, ...] = ()
    link: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


def load_catalogue(extra: Iterable[Path] = ()) -> list[Entry]:
    """The bundled checks, and those in `extra` (a team's check files or folders), sorted by area then ID."""
    entries = []
    imported = imported_suites()
    for path in sorted(suites_dir().glob("test_*.py")):
        module = imported.get(path.name) or importlib.import_module(f"aksid.suites.{path.stem}")
        entries += _entries(module, f"{path.stem}.py")
    for path in _check_files(extra):
        entries += _entries(_import_file(path), str(path))
    return sorted(entries, key=lambda e: (list(AREAS).index(e.area) if e.area in AREAS else len(AREAS), e.area, e.id))


def imported_suites() -> dict[str, ModuleType]:
    """The bundled suite modules already imported, by file name (`test_rbac.py`): in a run, pytest imported them
    under its own names; reading their markers or docstrings again costs nothing, importing them twice would."""
    folder = suites_dir()
    found = {}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).name.startswith("test_") and Path(file).resolve().parent == folder:
            found[Path(file).name] = module
    return found


def _entries(module: ModuleType, where: str) -> list[Entry]:
    entries = []
    for name, function in inspect.getmembers(module, inspect.isfunction):
        for mark in getattr(function, "pytestmark", []):
            if mark.name == "check":
                info = check_info(mark)
                entries.append(Entry(info.id, info.title, info.severity, info.area, info.modes, info.remediation,
                                     f"{where}::{name}", info.reads, info.link, info.groups))
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
    lines = ["| ID | severity | title | reads | remediation |", "|---|---|---|---|---|"]
    for entry in entries:
        cells = [entry.id, entry.severity, entry.title, ", ".join(f"`{unit}`" for unit in entry.reads),
                 entry.remediation]
        lines.append("| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def as_text(entries: list[Entry]) -> str:
    lines = []
    for entry in entries:
        lines.append(f"{entry.id:<9} {entry.severity:<8} {entry.title}")
        lines.append(f"{'':<18} modes: {', '.join(entry.modes)}; test: {entry.test}")
        lines.append(f"{'':<18} reads: {', '.join(entry.reads) or '-'}"
                     + (f"; judges: {', '.join(entry.link)}" if entry.link else ""))
        lines.append(f"{'':<18} fix: {entry.remediation}")
    return "\n".join(lines) + "\n"


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


# -- what the reports derive from the markers ------------------------------------------------------

@functools.cache
def builtin() -> tuple[Entry, ...]:
    """The bundled checks, read once per process (the chain picture, the diff and the coverage ask for them)."""
    return tuple(load_catalogue())


def link_checks(arrows: Iterable[str], entries: Iterable[Entry] | None = None) -> tuple[tuple[str, ...], ...]:
    """For each arrow (`identity → role`), the checks that declare they judge it, in catalogue order; a check with
    no `link` is on no arrow."""
    entries = builtin() if entries is None else tuple(entries)
    return tuple(tuple(entry.id for entry in entries if name in entry.link) for name in arrows)


def readers(unit: str, entries: Iterable[Entry] | None = None) -> tuple[str, ...]:
    """The checks that declare they read `unit` (`kube:DaemonSet`), in catalogue order."""
    return tuple(entry.id for entry in (builtin() if entries is None else entries) if unit in entry.reads)


def grouping(entries: Iterable[Entry] | None = None) -> dict[str, str]:
    """unit → the check a change of it is shown under: the only check that reads it; when several do, the one that
    names it in `groups` (the first in catalogue order, should two); when none does, the unit is left out
    (`grouped_under` says "other")."""
    return dict(_builtin_grouping()) if entries is None else _grouping(tuple(entries))


def grouped_under(unit: str, entries: Iterable[Entry] | None = None) -> str:
    """The check a change of `unit` is shown under in `aksid diff` (see `grouping`), or "other"."""
    found = _builtin_grouping() if entries is None else _grouping(tuple(entries))
    return found.get(unit, "other")


@functools.cache
def _builtin_grouping() -> dict[str, str]:
    return _grouping(builtin())


def _grouping(entries: tuple[Entry, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for unit in dict.fromkeys(unit for entry in entries for unit in entry.reads):
        reading = [entry for entry in entries if unit in entry.reads]
        chosen = reading[0] if len(reading) == 1 else next((e for e in reading if unit in e.groups), None)
        if chosen is not None:
            found[unit] = chosen.id
    return found
