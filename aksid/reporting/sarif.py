"""results.sarif: SARIF 2.1.0, one rule per check, one result per failed (or errored) subject."""

from __future__ import annotations

import json
from pathlib import Path

from aksid import __version__
from aksid.check_pages import bundled_page, page_text
from aksid.reporting.check_links import page_url
from aksid.results import CheckResult, is_fleet, labelled_subject

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# SARIF levels; `security-severity` lets code-scanning UIs rank them like CVSS.
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SECURITY_SEVERITY = {"critical": "9.0", "high": "7.5", "medium": "5.0", "low": "2.0"}


def render_sarif(results: list[CheckResult], meta: dict[str, object]) -> dict[str, object]:
    checks: dict[str, CheckResult] = {}
    for result in sorted(results, key=lambda r: r.id):
        checks.setdefault(result.id, result)
    rule_index = {check_id: index for index, check_id in enumerate(checks)}
    rules = [
        {
            "id": check_id,
            "name": check_id.replace("-", ""),
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": f"{r.title} (area {r.area})"},
            **_help(check_id, r, meta),
            "defaultConfiguration": {"level": _LEVEL[r.severity]},
            "properties": {"security-severity": _SECURITY_SEVERITY[r.severity], "tags": ["aksid", r.area.lower()]},
        }
        for check_id, r in checks.items()
    ]
    sarif_results = []
    fleet = is_fleet(results)
    for r in results:
        if r.outcome not in ("failed", "error", "waived"):
            continue
        entry: dict[str, object] = {
            "ruleId": r.id,
            "ruleIndex": rule_index[r.id],
            "level": _LEVEL[r.severity] if r.outcome == "failed" else "note",
            "kind": "fail" if r.outcome == "failed" else ("review" if r.outcome == "error" else "informational"),
            "message": {"text": f"{r.message}\n\nFix: {r.fix}" if r.fix else r.message},
            "locations": _locations(r, fleet),
            "properties": {"outcome": r.outcome, "nodeid": r.nodeid, "target": r.target, "fix": r.fix,
                           "evidence": r.evidence or []},
        }
        if meta.get("baseline"):
            entry["baselineState"] = "new" if r.new else "unchanged"
        if r.waiver:
            entry["suppressions"] = [{"kind": "external", "justification": str(r.waiver["reason"])}]
        sarif_results.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "aksid", "version": __version__, "rules": rules}},
            "results": sarif_results,
            "properties": {"mode": meta.get("mode"), "target": meta.get("target"),
                           **({"baseline": meta["baseline"]} if meta.get("baseline") else {})},
        }],
    }


def _help(check_id: str, r: CheckResult, meta: dict[str, object]) -> dict[str, object]:
    """A bundled check's rule carries its page (docs/checks/<ID>.md) as `help` and the page's address as `helpUri`,
    as code-scanning UIs show them (SARIF 2.1.0 §3.49.12, §3.49.13); a team's check, its remediation."""
    page = bundled_page(check_id)
    found: dict[str, object] = {"help": {"text": page_text(page), "markdown": page} if page else {"text": r.remediation}}
    url = page_url(check_id, meta)
    if url:
        found["helpUri"] = url
    return found


def _locations(r: CheckResult, fleet: bool) -> list[dict[str, object]]:
    """Code scanning annotates the line a static finding points at; otherwise the subject is a logical location."""
    name = labelled_subject(r, fleet)  # in a fleet, the environment first: one name per place
    logical = {"logicalLocations": [{"fullyQualifiedName": name, "kind": r.subject.split("/", 1)[0]}]}
    found = []
    for place in r.locations or []:
        physical: dict[str, object] = {"artifactLocation": {"uri": str(place["file"]), "uriBaseId": "%SRCROOT%"}}
        if place.get("line"):
            physical["region"] = {"startLine": place["line"]}
        where = dict(logical)
        if place.get("address"):  # a Terraform address / template path: what names the resource when a plan is one line
            where = {"logicalLocations": [{"fullyQualifiedName": str(place["address"]), "kind": "resource"},
                                          *logical["logicalLocations"]]}
        found.append({"physicalLocation": physical, **where})
    return found or [logical]


def write_sarif(path: Path, results: list[CheckResult], meta: dict[str, object]) -> None:
    path.write_text(json.dumps(render_sarif(results, meta), indent=2) + "\n", encoding="utf-8")
