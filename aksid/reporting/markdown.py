"""summary.md: short, failures first, fit for a CI step summary or a pull-request comment."""

from __future__ import annotations

from pathlib import Path

from aksid.reporting.baseline import markdown_section
from aksid.reporting.check_links import page_url
from aksid.results import CheckResult, by_area, by_urgency, is_fleet, labelled_subject, summary

_ICON = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️", "waived": "🟡"}


def render_markdown(results: list[CheckResult], meta: dict[str, object]) -> str:
    counts = summary(results)
    target = meta.get("target") or {}
    title = f"aksid: {target.get('cluster_name', '?')} / {target.get('domain', '?')}" if isinstance(target, dict) else "aksid"
    fleet = is_fleet(results)
    if fleet:
        title = "aksid: " + ", ".join(sorted({str(r.target) for r in results}))
    lines = [f"## {title}", "", " · ".join(f"{_ICON[o]} {counts[o]} {o}" for o in counts if counts[o]), ""]
    lines += identity_model_lines(meta.get("identity_models"))
    lines += migration_lines(meta.get("migration"))
    lines += markdown_section(meta)
    urgent = [r for r in by_urgency(results) if r.outcome in ("failed", "error", "waived")]
    if urgent:
        lines += ["| | check | subject | finding | fix |", "|---|---|---|---|---|"]
        for r in urgent:
            fix = (r.fix or r.remediation) if r.outcome == "failed" else ""
            page = page_url(r.id, meta)  # the check's page: why it matters, how to fix, its red scenario
            check = f"[{r.id}]({page})" if page else r.id
            lines.append(f"| {_ICON[r.outcome]} | {check} ({r.severity}) | `{labelled_subject(r, fleet)}` | {_cell(r.message)} "
                         f"| {_cell(fix)} |")
        lines.append("")
    lines += ["| area | " + " | ".join(counts) + " |", "|---|" + "---|" * len(counts)]
    for area, area_results in by_area(results).items():
        area_counts = summary(area_results)
        lines.append(f"| {area} | " + " | ".join(str(area_counts[o]) for o in counts) + " |")
    for stale in meta.get("stale_waivers") or []:  # type: ignore[union-attr]
        lines.append(f"\n🟡 stale waiver: {stale['check']} `{stale['subject']}` matched no failure ({stale['reason']})")
    return "\n".join(lines) + "\n"


def identity_model_lines(models: object) -> list[str]:
    """The identity models in use, and per workload which model binds it to which identity."""
    if not isinstance(models, dict):
        return []
    lines = [f"Identity models: **{models['cluster']}**", ""]
    for entry in models.get("workloads") or []:
        reached = ", ".join(f"{b['model']} → {b['identity'] or b['client_id']}" for b in entry["bindings"])
        lines.append(f"- `{entry['workload']}`: {entry['model']} ({reached})")
    return lines + ([""] if models.get("workloads") else [])


def migration_lines(section: object) -> list[str]:
    """The migration to workload identity: one row per workload, from → to → state (aksid.migration)."""
    from aksid.migration import table_rows

    if not isinstance(section, dict) or not section.get("workloads"):
        return []
    lines = ["Migration to workload identity:", "", "| workload | from | to | state |", "|---|---|---|---|"]
    lines += [f"| `{w}` | {_cell(f)} | {_cell(t)} | {_cell(s)} |" for w, f, t, s in table_rows(section)]
    return lines + [""]


def _cell(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def write_markdown(path: Path, results: list[CheckResult], meta: dict[str, object]) -> None:
    path.write_text(render_markdown(results, meta), encoding="utf-8")
