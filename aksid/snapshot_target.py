"""The target a saved snapshot was collected for (replay, fleets, evidence resolution): config meets snapshot here,
outside the pytest plugin, so nothing that reads a snapshot has to import the plugin."""

from __future__ import annotations

from aksid.config import FIELDS, Target, override_target
from aksid.snapshot import Snapshot


def target_from_snapshot(snapshot: Snapshot, overrides: list[str] | None = None) -> Target:
    """The target a snapshot was collected for; fields it predates take their defaults; then `--aksid-set` overrides."""
    view = snapshot.target
    values = {spec.name: view.get(spec.name, spec.default) for spec in FIELDS}
    sources = {spec.name: "snapshot" if spec.name in view else "default (not in the snapshot)" for spec in FIELDS}
    return override_target(Target(**values, sources=sources), overrides or [])
