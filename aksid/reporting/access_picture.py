"""report.html's picture of who can act as the DNS identity: `aksid who-can`'s answer, drawn beside the chain.

One row per principal, its shortest path read left to right: the principal; on the Kubernetes side the RBAC grant (role,
and the binding that grants it), the request it allows in a namespace, and what that gives (the AzureIdentityBinding
and its selector, a pod run as a federated ServiceAccount, a hostNetwork pod around NMI, ...); on the Azure side the
role at its scope and the operation it allows (and the zone, for a path that widens the identity's rights there); then
the identity, one node on the right that every path reaches. The principals ACCESS-001/002 do not allow come first,
their paths red; the allowed follow, green. A node two neighbouring rows share is drawn once, so their paths meet as in
a graph (lines stay level: nothing crosses). Every box and arrow has a <title> (the hover text): the full name, and
for an arrow its edge and evidence as `aksid who-can` prints them (snapshot entry · field).

Nothing is derived twice: the paths are aksid.access.who_can's, the verdicts those of ACCESS-001 (who_can's
allowed_subjects, `judge_kube`) and ACCESS-002 (azure_paths' `allowed`). At most MAX_ROWS principals are drawn (not
allowed first), with how many more `aksid who-can` lists, so the picture stays small on a cluster of 20,000 pods.
Inline SVG with a viewBox, no script; it shrinks with the window as the chain does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

from aksid.access.azure import CAPABILITIES
from aksid.access.who_can import WhoCanError, who_can
from aksid.reporting.chain import COLOURS, Sources, scope_text
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot

MAX_ROWS = 25  # principals drawn; the rest are counted ("and N more: see `aksid who-can`")
RED, GREEN, GREY = COLOURS["failed"], COLOURS["passed"], "#d0d7de"
SIDES = ("kubernetes", "azure")  # drawn in this order within each group (ACCESS-001's, then ACCESS-002's)

# Columns (x, width) of a 600 px picture, like the chain's: principal | grant or Azure role | request or operation |
# what it gives (or the zone) | the identity.
WIDTH = 600
COLUMNS = ((0, 118), (136, 104), (258, 94), (370, 138), (526, 74))
IDENTITY = len(COLUMNS) - 1
PAD, HEAD_H, LINE_H, ROW_GAP, GROUP_H, MAX_LINES = 5, 11, 12, 6, 20, 4
CHAR_W, HEAD_CHAR_W = 5.7, 6.3  # average glyph of the names (10px) and the headers (8.5px capitals), for wrapping

STYLE = """
.chain-access{display:flex;flex-wrap:wrap;column-gap:1.5rem;align-items:flex-start}
.chain-access>section{flex:1 1 auto;min-width:0;max-width:100%}
.chain-access>#chain>p{max-width:600px}
.chain-access>#access{flex:1 1 600px}
.access{margin:0 0 .6rem;min-width:0;max-width:100%} .access figcaption{font-weight:600;margin-bottom:.3rem}
.access svg{font-family:system-ui,sans-serif;display:block;max-width:100%;height:auto}
.access .h{font-size:8.5px;fill:#57606a;letter-spacing:.03em} .access .t{font-size:10px;fill:#1b1f24}
.access .g{font-size:11px;font-weight:600} .access .more{font-size:11px;fill:#57606a}
.access .ap-edge{cursor:help} .access-note{color:#57606a}
@media print{.chain-access{display:block} .access{page-break-inside:avoid}}
"""


@dataclass(frozen=True)
class Cell:
    """One node of a row's path: its column, what makes two rows' nodes one, its header, its text and hover text."""

    col: int
    key: tuple[str, ...]
    head: str
    text: str
    title: str


@dataclass(frozen=True)
class Hop:
    """An arrow of a row's path between two of its columns, with who-can's edge and evidence as the hover text."""

    src: int
    dst: int
    title: str
    dashed: bool = False


@dataclass(frozen=True)
class Row:
    side: str
    principal: str  # as who-can names it: "Group team-a", an Azure object id
    allowed: str | None  # why it is allowed, or None: not allowed
    cells: tuple[Cell, ...]  # left to right, the identity's column excluded
    hops: tuple[Hop, ...]


@dataclass
class Picture:
    identity: Mapping[str, Any]
    rows: list[Row]
    total: dict[bool, int]  # principals found: {allowed: count}
    notes: list[str] = field(default_factory=list)  # a side not drawn, and why


# -- from who-can's answer -------------------------------------------------------------------------

def _edge_title(edge: Mapping[str, Any]) -> str:
    fields = f" · {edge['fields']}" if edge.get("fields") else ""
    condition = f"\ncondition (not evaluated): {edge['condition']}" if edge.get("condition") else ""
    return f"{edge['from']} ─{edge['edge']}→ {edge['to']}\nevidence: {edge['evidence']}{fields}{condition}"


_VIA_BINDING = re.compile(r"^a pod labelled \S+ matches (AzureIdentityBinding \S+) \(selector (.+)\)$")
_VIA_HOST = re.compile(r"^a hostNetwork pod in (\S+) \(Pod Security enforce (.+)\) reaches IMDS around NMI$")
_VIA_HEADS = {"pod-identity": "binding, selector", "exec": "pod holding it", "identity-objects": "binding objects",
              "host-network": "NMI gap", "service-account": "ServiceAccount", "token": "ServiceAccount token",
              "escalate": "escalation", "impersonate": "impersonation", "borrow": "acts as another"}


def _via_text(via: str) -> str:
    """What a Kubernetes path gives, short: the binding and selector, the NMI gap's namespace and level."""
    if found := _VIA_BINDING.match(via):
        return f"{found[1]}, selector {found[2]}"
    if found := _VIA_HOST.match(via):
        return f"hostNetwork pod in {found[1]} reaches IMDS (enforce {found[2]})"
    if via.startswith(("acts as ", "a member of ")):  # through another principal: whom, and what it can do
        return via.split(" → ", 1)[0]
    return via.removeprefix("a ")


def _scope_words(scope: str) -> str:
    parts = [p for p in scope.split("/") if p]
    if len(parts) >= 2 and parts[-2].lower() == "userassignedidentities":
        return f"identity {parts[-1]}"
    return scope_text(scope)


def _operation_text(operation: str, target: str) -> str:
    """The capability's meaning (`write federated credentials on the identity`), from aksid.access.azure."""
    for capability in CAPABILITIES:
        if capability.operation == operation and target.startswith(f"{capability.on} "):
            return capability.meaning.split(" (", 1)[0]
    return operation.rsplit("/", 2)[-2] + "/" + operation.rsplit("/", 1)[-1] if "/" in operation else operation


def _middle(side: str, edge: Mapping[str, Any], after: Mapping[str, Any] | None, col: int) -> Cell:
    """The node an edge leads to, described by what the edge says it is (who_can's path structure)."""
    label, how = str(edge["to"]), str(edge["edge"])
    if side == "kubernetes" and how.startswith("bound by "):
        binding = how.removeprefix("bound by ")
        return Cell(col, (side, "grant", label, binding), "rbac grant", f"{label} by {binding}",
                    f"{label}\nbound by {binding}")
    if side == "kubernetes" and how.startswith("rule "):
        return Cell(col, (side, "request", label), "request", label, f"{label}\n(allowed by the {how})")
    if side == "kubernetes" and how == "gives":
        kind = str(edge.get("evidence") or "")
        return Cell(col, (side, "via", label), _VIA_HEADS.get(kind, kind or "gives"), _via_text(label), label)
    if side == "azure" and how == "holds":
        role, _, scope = label.rpartition(" at /")
        text = f"{role} at {_scope_words('/' + scope)}" if role else label
        return Cell(col, (side, "role", label), "azure role", text, label)
    if side == "azure" and how.startswith("allows"):
        target = str((after or {}).get("to") or "")
        return Cell(col, (side, "operation", label, target), "operation", _operation_text(label, target),
                    f"{label}\n{how}")
    if side == "azure" and label.startswith("zone "):
        return Cell(col, (side, "zone", label), "DNS zone", label.removeprefix("zone "), label)
    return Cell(col, (side, "node", label), "", label, label)


def _row(side: str, entry: Mapping[str, Any], identity_label: str) -> Row:
    """A principal's row: who-can's shortest path laid into the columns; a Kubernetes path right-aligned (grant,
    request, what it gives), an Azure one left-aligned (role at scope, operation; the zone when that is its end)."""
    principal, kind = str(entry["principal"]), str(entry.get("type") or "")
    label = principal if side == "kubernetes" else f"{kind} {principal}".strip()
    allowed = entry.get("allowed") or None
    verdict = f"allowed: {allowed}" if allowed else (
        "NOT allowed (ACCESS-001)" if side == "kubernetes" else "NOT allowed (ACCESS-002)")
    can = "; ".join(entry.get("can") or [])
    more = len(entry.get("also") or [])
    first = Cell(0, (side, "principal", principal), side, label,
                 f"{label}\n{verdict}\ncan: {can}" + (f"\nand {more} other paths (aksid who-can lists them)"
                                                         if more else ""))
    edges = list(entry.get("path") or [])
    hops: list[Hop] = []
    if edges and str(edges[0]["from"]) != label:  # a path that does not start at the principal: join it
        edges.insert(0, {"from": label, "to": edges[0]["from"], "edge": "can", "evidence": "", "fields": ""})
    reaches_identity = bool(edges) and str(edges[-1]["to"]) == identity_label
    inner = edges[:-1] if reaches_identity else edges  # the edges into the middle nodes
    if not edges or len(inner) > IDENTITY - 1:  # nothing this layout knows: one arrow with the whole path
        title = "\n".join(_edge_title(e) for e in edges) or "no path recorded"
        return Row(side, principal, allowed, (first,), (Hop(0, IDENTITY, title),))
    start = IDENTITY - len(inner) if side == "kubernetes" else 1
    cells = [first]
    for offset, edge in enumerate(inner):
        after = edges[offset + 1] if offset + 1 < len(edges) else None
        cells.append(_middle(side, edge, after, start + offset))
        hops.append(Hop(cells[-2].col, cells[-1].col, _edge_title(edge)))
    if reaches_identity:
        hops.append(Hop(cells[-1].col, IDENTITY, _edge_title(edges[-1])))
    else:  # the zone: whoever writes role assignments there widens the identity's rights over it
        hops.append(Hop(cells[-1].col, IDENTITY, f"{cells[-1].title} ─role assignments written here widen the rights "
                        f"of→ {identity_label}\n(the identity's own role on the zone: RBAC-001, RBAC-002)", dashed=True))
    return Row(side, principal, allowed, tuple(cells), tuple(hops))


def _order(row: Row) -> tuple[Any, ...]:
    """Rows sharing the right end of their paths next to each other (what the picture merges), right to left."""
    keys = {cell.col: "\x1f".join(cell.key) for cell in row.cells}
    return (SIDES.index(row.side) if row.side in SIDES else len(SIDES),
            *(keys.get(col, "") for col in range(IDENTITY - 1, 0, -1)), row.principal)


def _reason(text: str) -> str:
    return text.split(": run with", 1)[0].rstrip(".")


def build(snapshot: Snapshot, max_rows: int = MAX_ROWS) -> Picture | str:
    """The picture of the snapshot's DNS identity, or the one sentence saying why there is none."""
    try:
        answer = who_can(snapshot, judge_kube=True)
    except WhoCanError as exc:
        return f"Not drawn: {_reason(str(exc))}."
    except (EvidenceUnavailable, EvidenceNotCollected) as exc:
        return f"Not drawn: the access evidence could not be read ({_reason(str(exc))})."
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # a malformed snapshot: say so
        return f"Not drawn: the snapshot could not be read ({type(exc).__name__}: {exc})."
    identity = answer["identity"]
    identity_label = f"identity {identity.get('name')}"
    missing = {side: _reason(str(answer[side]["unavailable"])) for side in SIDES if answer[side].get("unavailable")}
    if len(missing) == len(SIDES):
        why = (missing["azure"] if missing["azure"] == missing["kubernetes"]
               else f"Azure: {missing['azure']}; Kubernetes: {missing['kubernetes']}")
        return ("Not drawn: the snapshot holds neither the Azure role assignments nor the Kubernetes RBAC objects "
                f"to draw it from ({why}).")
    notes = [f"The {'Azure' if side == 'azure' else 'Kubernetes'} side is not drawn: {why}." for side, why in missing.items()]
    rows = [_row(side, entry, identity_label) for side in SIDES for entry in answer[side]["principals"]]
    total = {False: sum(1 for r in rows if not r.allowed), True: sum(1 for r in rows if r.allowed)}
    red = sorted((r for r in rows if not r.allowed), key=_order)[:max_rows]
    green = sorted((r for r in rows if r.allowed), key=_order)[:max_rows - len(red)]
    return Picture(identity, red + green, total, notes)


# -- drawing -----------------------------------------------------------------------------------------

_BREAK = re.compile(r"(?<=[ /\-.:=,])")


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """`text` in at most `lines` lines of about `width` characters, broken after spaces, slashes, dashes and dots (ids
    and names have few spaces), a piece longer than a line cut; the last line clipped with an ellipsis."""
    found, line = [], ""
    for piece in (p for p in _BREAK.split(" ".join(text.split())) if p):
        if line and len((line + piece).rstrip()) > width:
            found.append(line.rstrip())
            line = ""
        while len(piece.rstrip()) > width:
            found.append(piece[:width])
            piece = piece[width:]
        line += piece
    if line.strip():
        found.append(line.rstrip())
    if len(found) > lines:
        last = found[lines - 1]
        found = found[:lines - 1] + [(last if len(last) < width else last[:width - 1]) + "…"]
    return found


def _chars(col: int, per_char: float) -> int:
    return max(4, int((COLUMNS[col][1] - 2 * PAD - 2) / per_char))


def _lines(cell: Cell) -> list[str]:
    return _wrap(cell.text, _chars(cell.col, CHAR_W), MAX_LINES)


def _cell_height(lines: int) -> int:
    return PAD + HEAD_H + LINE_H * lines + PAD - 2


@dataclass
class _Node:
    """A drawn box: a cell of one row, or of several neighbouring rows that share it."""

    cell: Cell
    first: int
    last: int
    verdict: str


def _box(node: _Node, top: float, bottom: float, principal: Row | None = None) -> str:
    x, width = COLUMNS[node.cell.col]
    lines = _lines(node.cell)
    middle = (top + bottom) / 2
    y = middle - _cell_height(len(lines)) / 2
    red = node.verdict == "not-allowed"
    fill, stroke = ("#fff", GREY) if principal is None else (("#ffebe9", RED) if red else ("#fff", GREEN))
    head = escape(_wrap(node.cell.head.upper(), _chars(node.cell.col, HEAD_CHAR_W), 1)[0]) if node.cell.head else ""
    text = [f'<text class="h" x="{x + PAD + 1}" y="{y + PAD + 8:.1f}">{head}</text>'] if head else []
    text += [f'<text class="t" x="{x + PAD + 1}" y="{y + PAD + HEAD_H + LINE_H * (i + 1) - 3:.1f}">{escape(line)}</text>'
             for i, line in enumerate(lines)]
    if principal is not None:
        attributes = (f' class="ap-node ap-principal" data-principal="{escape(principal.principal)}" '
                      f'data-side="{principal.side}" data-verdict="{node.verdict}"')
    else:
        attributes = f' class="ap-node" data-col="{node.cell.col}"'
    return (f"<g{attributes}><title>{escape(node.cell.title)}</title>"
            f'<rect x="{x + 1}" y="{top:.1f}" width="{width - 2}" height="{bottom - top:.1f}" rx="5" fill="{fill}" '
            f'stroke="{stroke}"/>' + "".join(text) + "</g>")


def _arrow(x1: float, x2: float, y: float, colour: str, dashed: bool, title: str, verdict: str) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (f'<g class="ap-edge" data-verdict="{verdict}"><title>{escape(title)}</title>'
            f'<line x1="{x1}" y1="{y:.1f}" x2="{x2 - 6}" y2="{y:.1f}" stroke="transparent" stroke-width="10"/>'
            f'<line x1="{x1}" y1="{y:.1f}" x2="{x2 - 6}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<polygon points="{x2 - 7},{y - 4:.1f} {x2 - 7},{y + 4:.1f} {x2 - 1},{y:.1f}" fill="{colour}"/></g>')


def _runs(rows: list[int]) -> list[list[int]]:
    """Consecutive row numbers, in runs."""
    found: list[list[int]] = []
    for row in sorted(rows):
        if found and found[-1][-1] == row - 1:
            found[-1].append(row)
        else:
            found.append([row])
    return found


def draw(picture: Picture, title: str = "") -> str:
    """The picture as an inline SVG in a <figure>; the rows' heights follow their text, the shared nodes span rows."""
    rows = picture.rows
    groups = [(False, [i for i, r in enumerate(rows) if not r.allowed]), (True, [i for i, r in enumerate(rows) if r.allowed])]
    tops: dict[int, float] = {}
    bottoms: dict[int, float] = {}
    parts: list[str] = []
    nodes: list[_Node] = []
    y = 0.0
    for allowed, members in groups:
        if not members:
            continue
        verdict = "allowed" if allowed else "not-allowed"
        drawn, found = len(members), picture.total[allowed]
        words = f"{'allowed' if allowed else 'not allowed'} ({found}" + (f", {drawn} drawn)" if drawn < found else ")")
        parts.append(f'<text class="g" x="0" y="{y + 14}" fill="{GREEN if allowed else RED}">{escape(words)}</text>')
        y += GROUP_H
        open_runs: dict[int, _Node] = {}
        for index in members:
            row = rows[index]
            height = max(_cell_height(len(_lines(cell))) for cell in row.cells)
            tops[index], bottoms[index] = y, y + height
            y += height + ROW_GAP
            present = {cell.col: cell for cell in row.cells}
            for col in range(IDENTITY):
                cell = present.get(col)
                run = open_runs.get(col)
                if cell is not None and run is not None and run.cell.key == cell.key and col > 0:
                    run.last = index
                    continue
                if cell is None:
                    open_runs.pop(col, None)
                    continue
                open_runs[col] = node = _Node(cell, index, index, verdict)
                nodes.append(node)
        y += ROW_GAP
    owner: dict[tuple[int, int], _Node] = {(row, node.cell.col): node for node in nodes
                                           for row in range(node.first, node.last + 1)}
    for node in nodes:
        principal = rows[node.first] if node.cell.col == 0 else None
        parts.append(_box(node, tops[node.first], bottoms[node.last], principal))
    # the identity: one box from the first row to the last, every path's arrow ending in it
    ident = picture.identity
    top, bottom = (min(tops.values()), max(bottoms.values())) if tops else (0.0, 40.0)
    ix, iw = COLUMNS[IDENTITY]
    room = max(1, int((bottom - top - 2 * PAD - HEAD_H) / LINE_H))  # the lines the box has room for
    name_lines = _wrap(str(ident.get("name")), _chars(IDENTITY, CHAR_W), min(room, 4))
    client = _wrap(f"client id {ident.get('clientId')}", _chars(IDENTITY, CHAR_W), 6)
    lines = (name_lines + [""] + client)[:room] if room > len(name_lines) + 1 else name_lines
    text_top = max(top, (top + bottom) / 2 - _cell_height(len(lines)) / 2)
    texts = [f'<text class="h" x="{ix + PAD + 1}" y="{text_top + PAD + 8:.1f}">IDENTITY</text>']
    texts += [f'<text class="t" x="{ix + PAD + 1}" y="{text_top + PAD + HEAD_H + LINE_H * (i + 1) - 3:.1f}">'
              f"{escape(line)}</text>" for i, line in enumerate(lines) if line]
    hover = f"identity {ident.get('name')}\nclient id {ident.get('clientId')}\n{ident.get('id')}"
    parts.append(f'<g class="ap-node ap-identity" data-identity="{escape(str(ident.get("name")))}"><title>'
                 f'{escape(hover)}</title><rect x="{ix + 1}" y="{top:.1f}" width="{iw - 2}" height="{bottom - top:.1f}" rx="5" '
                 f'fill="#fff" stroke="#57606a"/>' + "".join(texts) + "</g>")
    # the arrows: per pair of drawn nodes, one level line per run of rows that take it (titles merged)
    number = {id(node): at for at, node in enumerate(nodes)}
    arrows: dict[tuple[int, int, int, int, bool], list[tuple[int, str]]] = {}
    for index, row in enumerate(rows):
        for hop in row.hops:
            src, dst = owner.get((index, hop.src)), owner.get((index, hop.dst))  # the identity: no _Node, -1
            key = (number.get(id(src), -1), hop.src, number.get(id(dst), -1), hop.dst, hop.dashed)
            arrows.setdefault(key, []).append((index, hop.title))
    for (_, src_col, _, dst_col, dashed), taken in arrows.items():
        for run in _runs([index for index, _ in taken]):
            verdict = "allowed" if rows[run[0]].allowed else "not-allowed"
            level = (tops[run[0]] + bottoms[run[-1]]) / 2
            titles = list(dict.fromkeys(t for index, t in taken if index in run))
            hover = "\n\n".join(titles[:3]) + (f"\n\nand {len(titles) - 3} more" if len(titles) > 3 else "")
            x1 = COLUMNS[src_col][0] + COLUMNS[src_col][1]
            parts.append(_arrow(x1, COLUMNS[dst_col][0], level, GREEN if verdict == "allowed" else RED, dashed, hover,
                                verdict))
    hidden = sum(picture.total.values()) - len(rows)
    if hidden > 0:
        red_hidden = picture.total[False] - sum(1 for r in rows if not r.allowed)
        parts.append(f'<text class="more" x="0" y="{y + 10}" data-more="{hidden}">and {hidden} more ({red_hidden} not '
                     f"allowed, {hidden - red_hidden} allowed): see `aksid who-can`</text>")
        y += 20
    height = int(y + 4)
    name = escape(str(ident.get("name")))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
           f'role="img" aria-label="who can act as identity {name}">' + "".join(parts) + "</svg>")
    caption = escape(title or f"identity {ident.get('name')}")
    return f'<figure class="access" data-identity="{name}"><figcaption>{caption}</figcaption>{svg}</figure>'


# -- the report's section ------------------------------------------------------------------------------

def _sources(snapshots: Snapshot | Sources | None) -> dict[str | None, Snapshot | str | None]:
    if snapshots is None:
        return {}
    return {None: snapshots} if isinstance(snapshots, Snapshot) else dict(snapshots)


def render_access(snapshots: Snapshot | Sources | None) -> str:
    """The section "Who can act as the DNS identity": a picture per snapshot, or the sentence saying why not; empty
    without snapshots (a target whose snapshot is missing: the chain's section already says why)."""
    sources = _sources(snapshots)
    body: list[str] = []
    for name, snapshot in sources.items():
        if not isinstance(snapshot, Snapshot):
            continue
        label = f"{name}: " if name and len(sources) > 1 else ""
        picture = build(snapshot)
        if isinstance(picture, str):
            body.append(f'<p class="access-note">{escape(label + picture)}</p>')
            continue
        if not picture.rows:
            body.append(f'<p class="access-note">{escape(label)}no principal can act as identity '
                        f"{escape(str(picture.identity.get('name')))}, re-point it or widen its rights.</p>")
        else:
            body.append(draw(picture, f"{label}identity {picture.identity.get('name')}"))
        body += [f'<p class="access-note">{escape(label + note)}</p>' for note in picture.notes]
    if not body:
        return ""
    if not any(part.startswith("<figure") for part in body):  # nothing drawn: only why
        return "\n".join(['<section id="access"><h2>Who can act as the DNS identity</h2>', *body, "</section>"])
    legend = (f'<p class="legend"><span><i style="background:{RED}"></i>not allowed</span>'
              f'<span><i style="background:{GREEN}"></i>allowed</span></p>')
    intro = ("<p>Every principal that can act as the DNS identity, re-point it or widen its rights, each with its "
             "shortest path as <code>aksid who-can</code> finds it: red, not allowed (ACCESS-001 judges the "
             "Kubernetes side, ACCESS-002 the Azure side); green, allowed. Hover a box or an arrow for its full text "
             "and evidence.</p>")
    return "\n".join(['<section id="access"><h2>Who can act as the DNS identity</h2>', intro, legend, *body,
                      "</section>"])
