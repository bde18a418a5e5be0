"""Where each bundled check's page (docs/checks/<ID>.md) lives, as the absolute address every report links to.

The base address is pyproject's `[project.urls] Documentation`; a run may point elsewhere (a fork, an internal
mirror) with the meta key `docs_base_url` (a setting the run passes on) or the environment variable
AKSID_DOCS_BASE_URL. A team's own checks have no page here, so they get no link.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from aksid import catalogue

ENV = "AKSID_DOCS_BASE_URL"
META_KEY = "docs_base_url"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"  # a clone's; an installed wheel has none


def docs_base_url(meta: Mapping[str, object] | None = None) -> str | None:
    """The folder address the pages are under, ending in `/`; None when nothing declares one."""
    chosen = (meta or {}).get(META_KEY) or os.environ.get(ENV) or declared_base_url()
    if not chosen:
        return None
    text = str(chosen).strip()
    return text if text.endswith("/") else text + "/"


@functools.cache
def declared_base_url() -> str | None:
    """pyproject's Documentation address: read from the clone's file first (an editable install's metadata keeps
    the value of when it was installed), else from the installed package's metadata."""
    if PYPROJECT.is_file():
        with PYPROJECT.open("rb") as handle:
            project = tomllib.load(handle).get("project") or {}
        if project.get("name") == "aksid":
            return (project.get("urls") or {}).get("Documentation")
    try:
        entries = importlib.metadata.metadata("aksid").get_all("Project-URL") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in entries:  # "Documentation, https://..." (core metadata's Project-URL)
        label, _, url = entry.partition(",")
        if label.strip().lower() == "documentation":
            return url.strip()
    return None


@functools.cache
def _bundled() -> frozenset[str]:
    return frozenset(entry.id for entry in catalogue.builtin())


def page_url(check_id: str, meta: Mapping[str, object] | None = None) -> str | None:
    """The check's page, or None for a check aksid does not ship (a team's) or when no base address is known."""
    base = docs_base_url(meta)
    return f"{base}{check_id}.md" if base and check_id in _bundled() else None
