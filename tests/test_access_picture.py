"""report.html's picture of who can act as the DNS identity (aksid/reporting/access_picture.py), read from the report
each scenario's `aksid demo` wrote (the session's base_reports): exactly the principals `aksid who-can` finds, red
exactly where ACCESS-001/002 find a principal outside what is allowed, each red path's nodes and evidence drawn; capped
on a large cluster; where the snapshot holds no access evidence, one sentence and no picture."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from aksid.access.who_can import who_can
from aksid.reporting.access_picture import MAX_ROWS, RED, build, draw, render_access
from aksid.sandbox.render import render
from aksid.sandbox.scenario import load_scenario
from aksid.snapshot import Snapshot
from aksid.snapshot_target import target_from_snapshot
from suites.test_access import access_graph
from suites.test_access_azure import paths_to

from .harness import aksid

TEAM = "access-team-creates-pods-in-addons"
SVG = "{http://www.w3.org/2000/svg}"
RBAC = "rbac.authorization.k8s.io/v1"


def _section(html: str) -> str:
    found = re.search(r'<section id="access">.*?</section>', html, re.S)
    assert found, "report.html has no section 'Who can act as the DNS identity'"
    return found.group(0)


def _svg(section: str) -> ET.Element:
    found = re.search(r"<svg .*?</svg>", section, re.S)
    assert found, section[:2000]
    return ET.fromstring(found.group(0))


def _title(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    return "" if title is None else title.text or ""


def _drawn(svg: ET.Element) -> dict[tuple[str, str], str]:
    """{(side, principal): verdict} of the principals drawn."""
    return {(g.get("data-side", ""), g.get("data-principal", "")): g.get("data-verdict", "")
            for g in svg.iter(f"{SVG}g") if "ap-principal" in (g.get("class") or "")}


def _edges(svg: ET.Element, verdict: str) -> list[str]:
    return [_title(g) for g in svg.iter(f"{SVG}g") if g.get("class") == "ap-edge" and g.get("data-verdict") == verdict]


def _principals(answer: dict[str, Any]) -> set[tuple[str, str]]:
    return {(side, p["principal"]) for side in ("kubernetes", "azure") for p in answer[side]["principals"]}


def _outside(snapshot: Snapshot) -> set[tuple[str, str]]:
    """Who ACCESS-001 and ACCESS-002 find outside what is allowed, as the checks compute it."""
    from aksid.access.who_can import allowed_subjects, is_allowed

    target = target_from_snapshot(snapshot)
    identity, graph = access_graph(snapshot, target)
    allowed, _ = allowed_subjects(snapshot, target)
    kube = {("kubernetes", str(p.subject)) for p in graph.paths() if not is_allowed(p.subject, allowed)}
    azure = {("azure", p.principal) for p in paths_to(snapshot, target, identity) if p.allowed is None}
    return kube | azure


def _run(folder: Path) -> tuple[Snapshot, str, dict[str, str]]:
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    outcomes = {c["id"]: c["outcome"] for c in results["checks"] if c["id"].startswith("ACCESS-")}
    return Snapshot.load(folder / "snapshot.json"), (folder / "report.html").read_text(encoding="utf-8"), outcomes


@pytest.mark.parametrize("scenario", ["healthy", TEAM, "access-privileged-namespace-host-network",
                                      "access-azure-operator-on-identity", "access-azure-user-access-admin-on-dns-rg"])
def test_the_picture_draws_who_can_and_reds_what_the_checks_fail(scenario: str, base_reports: Any) -> None:
    snapshot, html, outcomes = _run(base_reports(scenario))
    section = _section(html)
    assert "<script" not in section
    drawn = _drawn(_svg(section))
    answer = who_can(snapshot)
    assert len(_principals(answer)) <= MAX_ROWS  # so every one is drawn
    assert set(drawn) == _principals(answer)
    red = {key for key, verdict in drawn.items() if verdict == "not-allowed"}
    assert red == _outside(snapshot)
    for check, side in (("ACCESS-001", "kubernetes"), ("ACCESS-002", "azure")):
        assert outcomes[check] == ("failed" if any(s == side for s, _ in red) else "passed"), (check, red)
    if scenario == "healthy":
        assert not red and RED not in _svg_text(section) and not _edges(_svg(section), "not-allowed")


def _svg_text(section: str) -> str:
    return re.search(r"<svg .*?</svg>", section, re.S).group(0)  # type: ignore[union-attr]


def test_team_a_its_path_nodes_and_evidence_are_drawn_red(base_reports: Any) -> None:
    snapshot, html, _ = _run(base_reports(TEAM))
    svg = _svg(_section(html))
    assert {key for key, verdict in _drawn(svg).items() if verdict == "not-allowed"} == {("kubernetes", "Group team-a")}
    (entry,) = [p for p in who_can(snapshot)["kubernetes"]["principals"] if p["principal"] == "Group team-a"]
    boxes = [_title(g) for g in svg.iter(f"{SVG}g") if "ap-node" in (g.get("class") or "")]
    for edge in entry["path"]:  # every node of its shortest path is a box (the identity is the one on the right)
        assert any(box.splitlines()[0] == edge["to"] for box in boxes), (edge["to"], boxes)
    assert any("bound by RoleBinding kube-addons/team-a-edit" in box for box in boxes)
    red = _edges(svg, "not-allowed")
    assert len(red) == len(entry["path"])  # its own arrows, no one else's
    for edge in entry["path"]:  # each arrow's hover text: the edge and its evidence, as who-can prints them
        assert any(f"─{edge['edge']}→ {edge['to']}" in title and f"evidence: {edge['evidence']}" in title
                   for title in red), edge
    visible = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    for words in ("Group team-a", "ClusterRole edit", "create pods in", "kube-addons/cert-", "selector cert-manager",
                  "IDENTITY"):
        assert words in visible, words


def test_the_zone_path_ends_at_the_identity_dashed(base_reports: Any) -> None:
    """User Access Administrator on the DNS zone's group can widen the identity's rights: its path ends at the zone,
    drawn with a dashed arrow on to the identity."""
    _, html, _ = _run(base_reports("access-azure-user-access-admin-on-dns-rg"))
    section = _section(html)
    svg = _svg(section)
    zones = [g for g in svg.iter(f"{SVG}g") if _title(g).startswith("zone ") and "ap-node" in (g.get("class") or "")]
    assert zones
    assert 'stroke-dasharray="4 3"' in _svg_text(section)


def test_the_biggest_clusters_picture_is_capped(base_reports: Any) -> None:
    """20,000 pods and 1,500 users with edit in kube-addons: 25 rows, the not allowed first, the rest counted."""
    document = json.loads((base_reports(TEAM) / "snapshot.json").read_text(encoding="utf-8"))
    kube = document["kube"]
    kube["v1/Pod"]["value"] += [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"app-{i}", "namespace": "hello", "labels": {"app": "a"}},
         "spec": {"serviceAccountName": "default"}, "status": {"phase": "Running"}} for i in range(20000)]
    kube[f"{RBAC}/RoleBinding"]["value"] += [
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": f"rb-{i}", "namespace": "kube-addons"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
         "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"user-{i}@corp.test"}]}
        for i in range(1500)]
    snapshot = Snapshot(document)
    picture = build(snapshot)
    assert not isinstance(picture, str)
    svg_text = draw(picture)
    svg = ET.fromstring(re.search(r"<svg .*?</svg>", svg_text, re.S).group(0))  # type: ignore[union-attr]
    drawn = _drawn(svg)
    everyone = _principals(who_can(snapshot))
    assert len(drawn) == MAX_ROWS and set(drawn) <= everyone
    assert set(drawn.values()) == {"not-allowed"}  # 1501 not allowed: no room for the allowed
    (more,) = [t for t in svg.iter(f"{SVG}text") if t.get("data-more")]
    assert int(more.get("data-more", "0")) == len(everyone) - MAX_ROWS
    assert more.text and more.text.endswith("see `aksid who-can`")
    assert len(svg_text) < 80_000, len(svg_text)


def test_not_allowed_first_then_allowed_within_the_cap(base_reports: Any) -> None:
    snapshot = Snapshot.load(base_reports(TEAM) / "snapshot.json")
    picture = build(snapshot, max_rows=3)
    assert not isinstance(picture, str)
    assert [row.allowed is None for row in picture.rows] == [True, False, False]
    assert picture.rows[0].principal == "Group team-a"
    hidden = len(_principals(who_can(snapshot))) - 3
    assert hidden > 0 and f"and {hidden} more (0 not allowed, {hidden} allowed): see `aksid who-can`" in draw(picture)


def test_one_side_unreadable_draws_the_other_and_says_why(base_reports: Any) -> None:
    document = json.loads((base_reports(TEAM) / "snapshot.json").read_text(encoding="utf-8"))
    document["azure"]["accessAssignments"] = {"status": "error", "value": None, "reason": "403 AuthorizationFailed"}
    section = render_access(Snapshot(document))
    drawn = _drawn(_svg(section))
    assert drawn and {side for side, _ in drawn} == {"kubernetes"}
    notes = re.findall(r'<p class="access-note">(.*?)</p>', section)
    assert len(notes) == 1 and notes[0].startswith("The Azure side is not drawn: ") and "403" in notes[0]


@pytest.fixture(scope="module")
def static_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static-mode run of the tutorial's files (no sandbox): nothing says who else holds roles, nor any RBAC."""
    repo = tmp_path_factory.mktemp("static") / "healthy"
    render(load_scenario("healthy"), repo)
    run = aksid("run", "--aksid-mode", "static", "--aksid-env-file", str(repo / "env.sh"), "--aksid-manifests",
                str(repo / "manifests"), "--aksid-source-root", str(repo), "--aksid-plan", str(repo / "plan.json"),
                "--aksid-reports-dir", str(repo / "reports"), "-q", reports=repo / "reports")
    assert run.code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return repo / "reports"


def test_without_access_evidence_one_sentence_and_no_picture(static_reports: Path) -> None:
    section = _section((static_reports / "report.html").read_text(encoding="utf-8"))
    assert "<svg" not in section and "<figure" not in section
    body = re.sub(r"<h2>.*?</h2>", "", section.removeprefix('<section id="access">').removesuffix("</section>"))
    (sentence,) = re.findall(r'<p class="access-note">(.*?)</p>', body)
    assert re.sub(r'<p class="access-note">.*?</p>', "", body).strip() == ""  # nothing else
    assert sentence.startswith("Not drawn: ") and "needs a live environment" in sentence
    assert sentence.count(". ") == 0 and sentence.endswith(".")


def test_an_unknown_identity_is_one_sentence(base_reports: Any) -> None:
    document = json.loads((base_reports(TEAM) / "snapshot.json").read_text(encoding="utf-8"))
    document["target"]["identity_name"] = "no-such-identity"
    found = build(Snapshot(document))
    assert isinstance(found, str) and found.startswith("Not drawn: no user-assigned identity")
