"""report.html: one self-contained page (no network, no external assets), for the person on call.

What they need first comes first, on one screen at 1024x768: the verdict, (a fleet's) one line per target, then
the findings with their fixes (wrapped, never a sideways scroll; each with a copy button: an inline handler, the
page has no <script> element, and the fix stays selectable with one click where scripts are off). The evidence
chain follows, and beside it where the window leaves room (below it otherwise) who can act as the DNS identity
(aksid/reporting/access_picture.py), then every result by area, each area collapsed (<details>). Each check's ID links
to its page (docs/checks/<ID>.md). Printable.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from aksid.catalogue import AREAS
from aksid.check_info import SEVERITIES
from aksid.reporting.access_picture import STYLE as ACCESS_STYLE
from aksid.reporting.access_picture import render_access
from aksid.reporting.baseline import html_section
from aksid.reporting.chain import STYLE as CHAIN_STYLE
from aksid.reporting.chain import Sources, render_chains, row_anchor
from aksid.reporting.check_links import page_url
from aksid.results import CheckResult, by_area, by_urgency, evidence_lines, is_fleet, labelled_subject, summary
from aksid.snapshot import Snapshot

_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:1rem 1.5rem;color:#1b1f24;max-width:100rem}
h1{font-size:1.3rem;margin:0 0 .3rem} h2{font-size:1.1rem;margin:1.2rem 0 .4rem;border-bottom:1px solid #d0d7de}
.verdict{border-left:6px solid #8c959f;background:#f6f8fa;padding:.35rem .7rem;margin:0 0 .5rem}
.verdict.red{border-color:#cf222e} .verdict.amber{border-color:#bf8700} .verdict.green{border-color:#1a7f37}
.verdict .word{font-size:1.05rem;font-weight:700;margin-right:.5rem} .red .word{color:#cf222e}
.amber .word{color:#9a6700} .green .word{color:#1a7f37}
.meta{color:#57606a;font-size:12px;margin:.15rem 0}
.totals span{display:inline-block;margin-right:1rem;font-weight:600}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td,th{border:1px solid #d0d7de;padding:.3rem .45rem;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th{background:#f6f8fa} code{font-size:12px;overflow-wrap:anywhere}
col.o{width:5.6rem} th{overflow-wrap:normal} col.k{width:19%} col.s{width:15%} col.x{width:31%}
table.fleet{width:auto;min-width:50%} table.fleet td,table.fleet th{padding:.2rem .6rem}
.failed{background:#ffebe9} .error{background:#fff8c5} .waived{background:#eef} .skipped{color:#57606a} .passed{color:#1a7f37}
.fleet .n-failed{color:#cf222e;font-weight:700} .fleet .n-error{color:#9a6700;font-weight:700}
.verdict-red{color:#cf222e} .verdict-amber{color:#9a6700} .verdict-green{color:#1a7f37}
details ul{margin:.25rem 0;padding-left:1.1rem} details summary{cursor:pointer;color:#57606a}
.outcome{font-weight:700;text-transform:uppercase;font-size:12px}
.fix pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;padding:.3rem .4rem;background:#f6f8fa;color:#1b1f24;
 border:1px solid #d0d7de;border-radius:4px;font-size:12px;user-select:all;-webkit-user-select:all}
.fix button{float:right;margin:0 0 .2rem .3rem;font-size:11px;cursor:pointer}
details.area{margin:.3rem 0} details.area>summary{font-weight:600;color:#1b1f24;padding:.2rem 0}
details.area>summary small{font-weight:400;color:#57606a}
a.doc{color:inherit}
@media print{body{margin:0;font-size:11px} tr{page-break-inside:avoid} .passed{display:none} .fix button{display:none}}
"""

# The copy button's handler: select the fix (so Ctrl+C works even where the clipboard API is refused, e.g. a page
# opened from a CI artefact), then put it on the clipboard.
_COPY = ("const p=this.parentNode.querySelector('pre');getSelection().selectAllChildren(p);"
         "const done=()=>{this.textContent='copied'};"
         "navigator.clipboard?navigator.clipboard.writeText(p.textContent).then(done,()=>{document.execCommand('copy');done()})"
         ":(document.execCommand('copy'),done())")
_FLEET_COLUMNS = ("failed", "error", "waived", "skipped", "passed")  # what to look at first, first
_COLUMNS = ('<colgroup><col class="o"><col class="k"><col class="s"><col><col class="x"></colgroup>'
            "<tr><th>outcome</th><th>check</th><th>subject</th><th>finding</th><th>fix</th></tr>")


def verdict(results: list[CheckResult], fail_on: str = "low") -> tuple[str, str, str]:
    """(colour class, word, sentence) of the run as its exit code judges it (aksid.run.run.exit_code): red when a
    check at or above `fail_on` failed, amber when one could only not be verified, green otherwise."""
    threshold = SEVERITIES.index(fail_on) if fail_on in SEVERITIES else 0
    blocking = [r for r in results if r.outcome in ("failed", "error") and SEVERITIES.index(r.severity) >= threshold]
    failed = sum(1 for r in blocking if r.outcome == "failed")
    errors = len(blocking) - failed
    below = sum(1 for r in results if r.outcome in ("failed", "error")) - len(blocking)
    waived = sum(1 for r in results if r.outcome == "waived")
    parts = [f"{failed} failed" if failed else "", f"{errors} could not be verified" if errors else ""]
    sentence = " and ".join(p for p in parts if p) or "every check passed or did not apply"
    if failed or errors:
        sentence += f" (severity {fail_on} or higher)"
    extra = [f"{below} below the threshold" if below else "", f"{waived} waived" if waived else ""]
    sentence += "".join(f"; {e}" for e in extra if e)
    if failed:
        return "red", "FAILED", sentence
    return ("amber", "NOT VERIFIED", sentence) if errors else ("green", "PASSED", sentence)


def _evidence(r: CheckResult) -> str:
    """What the check judged, collapsed: `<details>` opens on a click."""
    lines = evidence_lines(r)
    if not lines:
        return ""
    items = "".join(f"<li><code>{escape(line)}</code></li>" for line in lines)
    return f'<details class="evidence"><summary>evidence ({len(lines)})</summary><ul>{items}</ul></details>'


def _fix(r: CheckResult) -> str:
    """A failed result's fix (the command with the observed ids) to copy, its general remediation folded away."""
    if r.outcome not in ("failed", "error"):
        return ""
    if not r.fix:
        return escape(r.remediation)
    return (f'<div class="fix"><button type="button" class="copy" onclick="{escape(_COPY)}">copy</button>'
            f"<pre>{escape(r.fix)}</pre></div>"
            f'<details class="remediation"><summary>remediation</summary>{escape(r.remediation)}</details>')


def _check_id(r: CheckResult, meta: dict[str, object]) -> str:
    url = page_url(r.id, meta)
    if not url:
        return f"<b>{escape(r.id)}</b>"
    return f'<b><a href="{escape(url)}" class="doc" title="why it matters, how to fix">{escape(r.id)}</a></b>'


def _row(r: CheckResult, meta: dict[str, object], fleet: bool = False, where: str = "row") -> str:
    anchor = row_anchor(r, where)  # "finding-…" in Needs attention (the chain's arrows point there), "row-…" below
    return (f'<tr class="{r.outcome}" data-check="{escape(r.id)}" id="{anchor}"><td class="outcome">{r.outcome}</td>'
            f"<td>{_check_id(r, meta)} <small>{escape(r.severity)}</small><br>{escape(r.title)}</td>"
            f"<td><code>{escape(labelled_subject(r, fleet))}</code></td><td>{escape(r.message)}{_evidence(r)}</td>"
            f"<td>{_fix(r)}</td></tr>")


def _identity_models(models: object) -> list[str]:
    if not isinstance(models, dict):
        return []
    items = "".join(
        f"<li><code>{escape(e['workload'])}</code>: {escape(e['model'])} ("
        + escape(", ".join(f"{b['model']} → {b['identity'] or b['client_id']}" for b in e["bindings"])) + ")</li>"
        for e in models.get("workloads") or [])
    return [f'<h2 id="identity-models">Identity models: {escape(str(models["cluster"]))}</h2>'
            + (f"<ul>{items}</ul>" if items else "")]


def _totals(results: list[CheckResult]) -> str:
    counts = summary(results)
    return '<p class="totals">' + "".join(f'<span class="{o}">{counts[o]} {o}</span>' for o in counts) + "</p>"


def _target_names(results: list[CheckResult], meta: dict[str, object]) -> list[str]:
    """The fleet's targets in the order the run (or merge) listed them, then any other a result names."""
    listed = [str(t.get("name")) for t in meta.get("targets") or [] if isinstance(t, dict)]  # type: ignore[union-attr]
    seen = {str(r.target) for r in results}
    return [name for name in listed if name in seen] + sorted(seen - set(listed))


def _fleet_table(results: list[CheckResult], meta: dict[str, object]) -> str:
    """One row per target: its verdict and counts, its name linking to its first finding."""
    fail_on = str(meta.get("fail_on") or "low")
    rows = []
    for name in _target_names(results, meta):
        mine = [r for r in results if str(r.target) == name]
        colour, word, sentence = verdict(mine, fail_on)
        counts = summary(mine)
        first = next((r for r in by_urgency(mine) if r.outcome in ("failed", "error", "waived")), None)
        label = f'<a href="#{row_anchor(first)}">{escape(name)}</a>' if first else escape(name)
        cells = "".join(f'<td class="n-{o}">{counts[o] or ""}</td>' for o in _FLEET_COLUMNS)
        rows.append(f'<tr data-target="{escape(name)}"><td><b>{label}</b></td>'
                    f'<td class="verdict-{colour}" title="{escape(sentence)}"><b>{word}</b></td>{cells}</tr>')
    head = "<tr><th>target</th><th>verdict</th>" + "".join(f"<th>{o}</th>" for o in _FLEET_COLUMNS) + "</tr>"
    return f'<table class="fleet" id="targets">{head}{"".join(rows)}</table>'


def _areas(results: list[CheckResult], meta: dict[str, object], fleet: bool) -> list[str]:
    """Every result by area, each area folded: its summary says what is in it."""
    parts = ['<h2 id="areas">All results by area</h2>']
    for area, area_results in by_area(results).items():
        counts = summary(area_results)
        said = ", ".join(f"{counts[o]} {o}" for o in counts if counts[o])
        about = f" <small>{escape(AREAS[area])}</small>" if area in AREAS else ""
        rows = "".join(_row(r, meta, fleet) for r in by_urgency(area_results))
        parts.append(f'<details class="area" id="area-{escape(area)}"><summary>{escape(area)}: {said}{about}</summary>'
                     f"<table>{_COLUMNS}{rows}</table></details>")
    return parts


def _migration_table(section: object) -> list[str]:
    """The migration to workload identity: a table, one row per workload (from → to → state; aksid.migration)."""
    from aksid.migration import table_rows

    if not isinstance(section, dict) or not section.get("workloads"):
        return []
    rows = "".join(f'<tr data-state="{escape(state.split(":")[0])}"><td><code>{escape(workload)}</code></td>'
                   f"<td>{escape(source)}</td><td>{escape(to)}</td><td><b>{escape(state)}</b></td></tr>"
                   for workload, source, to, state in table_rows(section))
    return ['<h2 id="migration">Migration to workload identity</h2><table class="migration">'
            "<tr><th>workload</th><th>from (pod identity)</th><th>to (workload identity)</th><th>state</th></tr>"
            f"{rows}</table>"]


def _chain_and_access(results: list[CheckResult], snapshots: Snapshot | Sources | None) -> str:
    """The evidence chain, and who can act as the DNS identity beside it (a flex row: below it when the window is
    narrow or the chain wide)."""
    chains, access = render_chains(results, snapshots), render_access(snapshots)
    return f'<div class="chain-access">\n{chains}\n{access}\n</div>' if access else chains


def render_html(results: list[CheckResult], meta: dict[str, object], snapshots: Snapshot | Sources | None = None) -> str:
    target = meta.get("target") if isinstance(meta.get("target"), dict) else {}
    heading = f"{escape(str(target.get('cluster_name', '?')))} / {escape(str(target.get('domain', '?')))}"  # type: ignore[union-attr]
    fleet = is_fleet(results)
    if fleet:
        heading = escape(", ".join(_target_names(results, meta)))
    colour, word, sentence = verdict(results, str(meta.get("fail_on") or "low"))
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>aksid report: {heading}</title><style>{_STYLE}{CHAIN_STYLE}{ACCESS_STYLE}</style></head><body>",
        f"<h1>aksid report: {heading}</h1>",
        f'<div class="verdict {colour}" id="verdict"><span class="word">{word}</span>{escape(sentence)}'
        f'<p class="meta">mode {escape(str(meta.get("mode")))}, started {escape(str(meta.get("started")))}</p></div>',
        _totals(results),
    ]
    if fleet:
        parts.append(_fleet_table(results, meta))
    urgent = [r for r in by_urgency(results) if r.outcome in ("failed", "error", "waived")]
    if urgent:
        rows = (_row(r, meta, fleet, "finding") for r in urgent)
        parts += [f'<h2 id="attention">Needs attention ({len(urgent)})</h2><table>', _COLUMNS, *rows, "</table>"]
    parts += [_chain_and_access(results, snapshots), *html_section(meta), *_identity_models(meta.get("identity_models")),
              *_migration_table(meta.get("migration")), *_areas(results, meta, fleet), "</body></html>"]
    return "\n".join(part for part in parts if part)


def write_html(path: Path, results: list[CheckResult], meta: dict[str, object],
               snapshots: Snapshot | Sources | None = None) -> None:
    path.write_text(render_html(results, meta, snapshots), encoding="utf-8")
