"""`--aksid-baseline OLD`: the run compared with an earlier one; every report carries the same changes.

A check red now (failed or error) that was not red in the baseline's results.json is marked `new`.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

from aksid.diff import Change, Diff, DiffError, Side, compare, load_side, markdown_lines
from aksid.diff_facts import strip_pod_suffix
from aksid.results import CheckResult, results_document

HEADING = "Changes since the baseline"


def apply_baseline(path: Path, results: list[CheckResult], meta: dict[str, Any],
                   snapshot: dict[str, Any] | None) -> list[CheckResult]:
    """Sets meta["baseline"] (the diff, or why there is none) and returns the results with `new` marked."""
    try:
        old = load_side(path, "the baseline")
    except DiffError as exc:
        meta["baseline"] = {"path": str(path), "error": str(exc), "changed": None, "changes": [], "newly_red": []}
        return results
    new = Side("this run", snapshot, results_document(results, meta))
    diff = compare(old, new)
    newly = {(entry["id"], entry["subject"], entry["target"] or "") for entry in diff.newly_red}
    fleet = any(entry["target"] for entry in diff.newly_red)
    marked = [replace(r, new=True) if (r.id, strip_pod_suffix(r.subject), (r.target or "") if fleet else "") in newly
              else r for r in results]
    meta["baseline"] = {"path": str(path), **diff.document()}
    return marked


def _diff_of(baseline: dict[str, Any]) -> Diff:
    changes = [Change(c["check"], c["category"], c["action"], c["subject"], c.get("before"), c.get("after"))
               for c in baseline.get("changes") or []]
    return Diff(str(baseline.get("old")), str(baseline.get("new")), changes, baseline.get("newly_red") or [])


def _new_label(entry: dict[str, Any]) -> str:
    return f"{entry['id']} [{(entry['target'] + ': ') if entry.get('target') else ''}{entry['subject']}]"


def markdown_section(meta: dict[str, object]) -> list[str]:
    baseline = meta.get("baseline")
    if not isinstance(baseline, dict):
        return []
    lines = [f"### {HEADING}", "", f"Baseline: `{baseline['path']}`", ""]
    if baseline.get("error"):
        return [*lines, f"⚠️ not compared: {baseline['error']}", ""]
    diff = _diff_of(baseline)
    if diff.newly_red:
        lines += ["**New since the baseline** (red now, not red then): "
                  + ", ".join(f"🆕 `{_new_label(e)}`" for e in diff.newly_red), ""]
    return lines + markdown_lines(diff, "####")


def html_section(meta: dict[str, object]) -> list[str]:
    baseline = meta.get("baseline")
    if not isinstance(baseline, dict):
        return []
    parts = [f'<h2 id="baseline">{HEADING}</h2>', f"<p>baseline <code>{escape(str(baseline['path']))}</code></p>"]
    if baseline.get("error"):
        return [*parts, f"<p>not compared: {escape(str(baseline['error']))}</p>"]
    diff = _diff_of(baseline)
    if diff.newly_red:
        items = "".join(f'<li class="new" data-check="{escape(e["id"])}" data-subject="{escape(e["subject"])}">'
                        f"<b>new</b> {escape(_new_label(e))}</li>" for e in diff.newly_red)
        parts.append(f'<p>Red now, not red in the baseline:</p><ul class="newly-red">{items}</ul>')
    if not diff.changes:
        return [*parts, "<p>no change</p>"]
    for check, changes in diff.grouped().items():
        parts.append(f"<h3>{escape(check)}</h3><ul>" + "".join(f"<li>{escape(c.text)}</li>" for c in changes) + "</ul>")
    return parts
