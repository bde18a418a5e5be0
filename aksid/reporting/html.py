"""report.html: one self-contained page (no network, no external assets), failures first, printable."""

from __future__ import annotations

from html import escape
from pathlib import Path

from aksid.reporting.baseline import html_section
from aksid.reporting.chain import STYLE as CHAIN_STYLE
from aksid.reporting.chain import Sources, render_chains, row_anchor
from aksid.results import CheckResult, by_area, by_urgency, evidence_lines, is_fleet, labelled_subject, summary
from aksid.snapshot import Snapshot

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:70rem}
h1{font-size:1.5rem;margin:0 0 .25rem} h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d0d7de}
.totals span{display:inline-block;margin-right:1rem;font-weight:600}
table{border-collapse:collapse;width:100%} td,th{border:1px solid #d0d7de;padding:.35rem .5rem;vertical-align:top;text-align:left}
th{background:#f6f8fa} code{font-size:12px;word-break:break-all}
.failed{background:#ffebe9} .error{background:#fff8c5} .waived{background:#eef} .skipped{color:#57606a} .passed{color:#1a7f37}
details.evidence ul{margin:.25rem 0;padding-left:1.1rem} details summary{cursor:pointer;color:#57606a}
.outcome{font-weight:700;text-transform:uppercase;font-size:12px;white-space:nowrap}
@media print{body{margin:0;font-size:11px} tr{page-break-inside:avoid} .passed{display:none}}
"""


def _evidence(r: CheckResult) -> str:
    """What the check judged, collapsed: `<details>` opens on a click."""
    lines = evidence_lines(r)
    if not lines:
        return ""
    items = "".join(f"<li><code>{escape(line)}</code></li>" for line in lines)
    return f'<details class="evidence"><summary>evidence ({len(lines)})</summary><ul>{items}</ul></details>'


def _row(r: CheckResult, fleet: bool = False, where: str = "row") -> str:
    fix = escape(r.fix or r.remediation) if r.outcome in ("failed", "error") else ""
    if r.fix and r.outcome in ("failed", "error"):
        fix += f'<details class="remediation"><summary>remediation</summary>{escape(r.remediation)}</details>'
    anchor = row_anchor(r, where)  # "finding-…" in Needs attention (the chain's arrows point there), "row-…" below
    return (f'<tr class="{r.outcome}" data-check="{escape(r.id)}" id="{anchor}"><td class="outcome">{r.outcome}</td>'
            f"<td><b>{escape(r.id)}</b> <small>{escape(r.severity)}</small><br>{escape(r.title)}</td>"
            f"<td><code>{escape(labelled_subject(r, fleet))}</code></td><td>{escape(r.message)}{_evidence(r)}</td>"
            f"<td>{fix}</td></tr>")


def _identity_models(models: object) -> list[str]:
    if not isinstance(models, dict):
        return []
    items = "".join(
        f"<li><code>{escape(e['workload'])}</code>: {escape(e['model'])} ("
        + escape(", ".join(f"{b['model']} → {b['identity'] or b['client_id']}" for b in e["bindings"])) + ")</li>"
        for e in models.get("workloads") or [])
    return [f"<p>identity models: <b>{escape(str(models['cluster']))}</b></p>" + (f"<ul>{items}</ul>" if items else "")]


def render_html(results: list[CheckResult], meta: dict[str, object], snapshots: Snapshot | Sources | None = None) -> str:
    counts = summary(results)
    target = meta.get("target") if isinstance(meta.get("target"), dict) else {}
    heading = f"{escape(str(target.get('cluster_name', '?')))} / {escape(str(target.get('domain', '?')))}"  # type: ignore[union-attr]
    fleet = is_fleet(results)
    if fleet:
        heading = escape(", ".join(sorted({str(r.target) for r in results})))
    head = "<tr><th>outcome</th><th>check</th><th>subject</th><th>evidence</th><th>remediation</th></tr>"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>aksid report: {heading}</title><style>{_STYLE}{CHAIN_STYLE}</style></head><body>",
        f"<h1>aksid report: {heading}</h1>",
        f"<p>mode {escape(str(meta.get('mode')))}, started {escape(str(meta.get('started')))}</p>",
        *_identity_models(meta.get("identity_models")),
        '<p class="totals">' + "".join(f'<span class="{o}">{counts[o]} {o}</span>' for o in counts) + "</p>",
        render_chains(results, snapshots),
        *html_section(meta),
    ]
    urgent = [r for r in by_urgency(results) if r.outcome in ("failed", "error", "waived")]
    if urgent:
        rows = (_row(r, fleet, "finding") for r in urgent)
        parts += ['<h2 id="attention">Needs attention</h2><table>', head, *rows, "</table>"]
    for area, area_results in by_area(results).items():
        rows = (_row(r, fleet) for r in by_urgency(area_results))
        parts += [f'<h2 id="area-{escape(area)}">{escape(area)}</h2><table>', head, *rows, "</table>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: Path, results: list[CheckResult], meta: dict[str, object],
               snapshots: Snapshot | Sources | None = None) -> None:
    path.write_text(render_html(results, meta, snapshots), encoding="utf-8")
