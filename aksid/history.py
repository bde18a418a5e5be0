"""`aksid history DIR`: past nights side by side, one self-contained HTML page (no script, no external assets).

Each check (id + subject) is a row, each results.json a column ordered by its `started`; a cell is coloured by
the outcome. A row whose outcome changed from night to night says how often, so a flapping check stands out.
"""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path
from typing import Any

from aksid.diff import result_key
from aksid.userfiles import UserFileError, read_json

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.4rem} table{border-collapse:collapse} td,th{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left}
th{background:#f6f8fa;font-weight:600;font-size:12px} td.cell{text-align:center;font-size:12px;font-weight:700;min-width:3.5rem}
.passed{background:#dafbe1;color:#1a7f37} .failed{background:#ffcecb;color:#a40e26} .error{background:#fff1a8;color:#7d4e00}
.skipped{background:#eaeef2;color:#57606a} .waived{background:#ddf4ff;color:#0550ae} .missing{background:#fff;color:#8c959f}
tr.flapping th.row{border-left:4px solid #bf3989} .flips{color:#bf3989;font-weight:700}
"""
_LETTER = {"passed": "pass", "failed": "FAIL", "error": "ERR", "skipped": "skip", "waived": "waived", "missing": "–"}


class HistoryError(Exception):
    """The folder holds no results to show; the message says why."""


def load_nights(folder: Path, skipped: list[str] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Every aksid results.json under `folder`, oldest first (by `started`, then by path). A .json file that cannot
    be read or is not JSON is passed over, its one-sentence reason added to `skipped`."""
    nights, unread = [], []
    for path in sorted(folder.rglob("*.json")):
        try:
            document = read_json(path, "")
        except UserFileError as exc:
            unread.append(str(exc))
            continue
        if isinstance(document, dict) and str(document.get("schema", "")).startswith("aksid.results/"):
            nights.append((path, document))
    if skipped is not None:
        skipped += unread
    if not nights:
        more = f", and {len(unread) - 1} more file(s) not read" if len(unread) > 1 else ""
        raise HistoryError(f"{folder} holds no aksid results.json" + (f" ({unread[0]}{more})" if unread else ""))
    return sorted(nights, key=lambda night: (str(night[1].get("started")), str(night[0])))


def outcome_table(nights: list[tuple[Path, dict[str, Any]]]) -> dict[tuple[str, str, str], list[str]]:
    """(check id, subject, target) → the outcome of each night ('missing' where that night did not judge it)."""
    table: dict[tuple[str, str, str], list[str]] = {}
    fleet = any(len({c.get("target") for c in document.get("checks") or []}) > 1 for _, document in nights)
    for index, (_, document) in enumerate(nights):
        for check in document.get("checks") or []:
            row = table.setdefault(result_key(check, fleet), ["missing"] * len(nights))
            row[index] = check["outcome"]
    return dict(sorted(table.items()))


def flips(outcomes: list[str]) -> int:
    """How often the outcome changed between consecutive nights that judged the check."""
    seen = [o for o in outcomes if o != "missing"]
    return sum(1 for a, b in zip(seen, seen[1:], strict=False) if a != b)


def render_history(nights: list[tuple[Path, dict[str, Any]]]) -> str:
    table = outcome_table(nights)
    fleet = len({key[2] for key in table}) > 1
    heads = "".join(f'<th title="{escape(str(path))}" data-night="{index}">{escape(str(doc.get("started")))}</th>'
                    for index, (path, doc) in enumerate(nights))
    rows = []
    for key, outcomes in table.items():
        check_id, subject, target = key
        count = flips(outcomes)
        name = f"{target}: {subject}" if fleet and target else subject
        cells = "".join(f'<td class="cell {o}" data-night="{i}" title="{escape(o)}">{_LETTER.get(o, escape(o))}</td>'
                        for i, o in enumerate(outcomes))
        flap = f'<td class="flips">{count}</td>' if count else "<td></td>"
        rows.append(f'<tr class="{"flapping" if count > 1 else ""}" data-check="{escape(check_id)}" '
                    f'data-subject="{escape(subject)}"><th class="row"><b>{escape(check_id)}</b> '
                    f"<code>{escape(name)}</code></th>{flap}{cells}</tr>")
    flapping = sum(1 for outcomes in table.values() if flips(outcomes) > 1)
    return "\n".join([
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>aksid history</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>aksid history: {len(nights)} runs, {len(table)} checks</h1>",
        f"<p>{flapping} check(s) flapping (outcome changed more than once); changes counts outcome changes.</p>",
        f"<table><thead><tr><th>check / subject</th><th>changes</th>{heads}</tr></thead><tbody>",
        *rows, "</tbody></table></body></html>"])


def history_command(folder: Path, out: Path) -> int:
    skipped: list[str] = []
    try:
        nights = load_nights(folder, skipped)
    except HistoryError as exc:
        print(f"aksid history: {exc}", file=sys.stderr)
        return 4
    for reason in skipped:
        print(f"aksid history: passed over {reason}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_history(nights), encoding="utf-8")
    print(f"aksid history: {len(nights)} runs → {out}")
    return 0
