"""`aksid merge`: runs made on different machines (a CI matrix, one job per cluster) as one fleet report."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from aksid.reporting import write_reports
from aksid.results import RESULTS_SCHEMA, CheckResult
from aksid.snapshot import Snapshot
from aksid.userfiles import read_json_object, reported_as

_FIELDS = {f.name for f in fields(CheckResult)}


class MergeError(ValueError):
    """An input that is not an aksid results.json, or two runs of one target; one sentence."""


def merge(paths: list[Path], reports_dir: Path) -> tuple[list[CheckResult], dict[str, Any]]:
    """Every run's results, each tagged with its target's name; written in every report format."""
    documents = [_read(path) for path in paths]
    results: list[CheckResult] = []
    targets: list[dict[str, Any]] = []
    snapshots: dict[str | None, Snapshot | str] = {}
    seen: dict[str, tuple[Path, dict[str, Any]]] = {}  # target name -> the run that reported it first, its target
    for path, document in zip(paths, documents, strict=True):
        fallback = (document.get("target") or {}).get("cluster_name") or path.parent.name  # results of before `targets`
        run_targets = document.get("targets") or [{"name": fallback}]
        for target in run_targets:
            if target["name"] in seen:
                raise MergeError(_clash(str(target["name"]), path, target, *seen[target["name"]]))
        seen.update({t["name"]: (path, t) for t in run_targets})
        targets += run_targets
        snapshots.update({t["name"]: _snapshot_of(path, t) for t in run_targets})
        default = run_targets[0]["name"] if len(run_targets) == 1 else None
        for entry in document["checks"]:
            values = {k: v for k, v in entry.items() if k in _FIELDS}
            values.setdefault("target", default)
            values["target"] = values["target"] or default
            results.append(CheckResult(**values))
    modes = {str(d.get("mode")) for d in documents}
    meta = {"mode": modes.pop() if len(modes) == 1 else "mixed",
            "started": min(str(d.get("started")) for d in documents), "snapshot": None,
            "target": documents[0].get("target") if len(targets) == 1 else None, "targets": targets,
            "fail_on": documents[0].get("fail_on", "low"),
            "waivers": [w for d in documents for w in d.get("waivers") or []],
            "stale_waivers": [w for d in documents for w in d.get("stale_waivers") or []],
            "merged_from": [str(path) for path in paths]}
    write_reports(reports_dir, results, meta, snapshots)
    return results, meta


def _clash(name: str, path: Path, target: dict[str, Any], first: Path, first_target: dict[str, Any]) -> str:
    """One run given twice, or two targets that share a name: a run names its target after its profile's `name:`,
    else the profile's file name, so two clusters' `profile.yaml` both come out as `profile`."""
    settings, first_settings = target.get("target"), first_target.get("target")
    if settings == first_settings:
        return f"{path} reports target {name} again (as {first} did): merge one run per target"
    clusters = [str((s or {}).get("cluster_name") or "?") for s in (first_settings, settings)]
    which = f" (clusters {clusters[0]} and {clusters[1]})" if clusters[0] != clusters[1] else ""
    return (f"{first} and {path} are runs of two different targets both named '{name}'{which}: a target is named by its "
            f"profile's top-level `name:`, else by the profile's file name; give each profile its own `name:` "
            f"(e.g. `name: {clusters[1] if clusters[1] != '?' else name + '-2'}`) and run them again")


def _read(path: Path) -> dict[str, Any]:
    expected = f"an aksid results.json (schema {RESULTS_SCHEMA})"
    with reported_as(MergeError):
        document = read_json_object(path, "", expected=expected)
    if document.get("schema") != RESULTS_SCHEMA:
        raise MergeError(f"{path} is not {expected}")
    return document


def _snapshot_of(results_path: Path, target: dict[str, Any]) -> Snapshot | str:
    """A target's snapshot for report.html's chain: its file beside results.json (or in `snapshots/` there, as a
    fleet run writes them), else the path the run recorded; the reason when none can be read."""
    recorded = Path(str(target.get("snapshot") or "snapshot.json"))
    candidates = [results_path.parent / recorded.name, results_path.parent / "snapshots" / recorded.name, recorded]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        return f"its snapshot {recorded} is missing (looked beside {results_path} too)"
    try:
        return Snapshot.load(found)
    except ValueError as exc:
        return str(exc)
