"""report.html for the person on call, as headless Chromium lays it out at 1024x768 and 1440x900: the verdict and the
first finding on the first screen, no sideways scroll, passed results folded by area, the chain after the findings
and wide enough to read, the fix copied by its button; a merged fleet opens with one row per target. The kubelet of
RBAC-003 is drawn as its own principal; each check is named once per chain. Who can act as the DNS identity is drawn
beside the chain where the window leaves room, below it otherwise, and shrinks with a narrow window.

Screenshots are kept under each test's tmp_path (their paths printed: `pytest -s` shows them)."""

from __future__ import annotations

import html as html_module
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aksid.merge import merge
from aksid.reporting.chain import Chain, Node, build_chain, draw_chain, judge
from aksid.results import CheckResult
from aksid.snapshot import Snapshot
from aksid.units import CANARY_NODES

RED = "dns-a-record-missing"  # DNS-002 failed and the TLS checks that cannot be verified without an address: >= 5
KUBELET = "rbac-kubelet-dns-zone-contributor"  # RBAC-003 failed: the kubelet identity may write the zone
TEAM = "access-team-creates-pods-in-addons"  # ACCESS-001 failed: the who-can picture has a red path
SIZES = ((1024, 768), (1440, 900))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Offline: no background services, names resolve nowhere, any proxy use fails (as tests/test_chain.py runs it).
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
           "--disable-default-apps", "--no-first-run", "--no-pings", "--disable-domain-reliability",
           "--disable-breakpad", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
           "--proxy-bypass-list=<-loopback>"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make debs)")


def _loaded(reports: Path) -> tuple[Snapshot, list[CheckResult]]:
    document = json.loads((reports / "results.json").read_text())
    return Snapshot.load(reports / "snapshot.json"), [CheckResult(**c) for c in document["checks"]]


@pytest.fixture(scope="module")
def fleet(base_reports: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`aksid merge` of three runs, each its own target: a healthy one and two red ones."""
    folder = tmp_path_factory.mktemp("fleet")
    inputs = []
    for name, scenario in (("prod", "healthy"), ("staging", RED), ("dev", KUBELET)):
        source = base_reports(scenario)
        document = json.loads((source / "results.json").read_text())
        document["targets"] = [{**document["targets"][0], "name": name, "snapshot": str(source / "snapshot.json")}]
        for check in document["checks"]:
            check["target"] = name
        (folder / name).mkdir()
        (folder / name / "results.json").write_text(json.dumps(document))
        inputs.append(folder / name / "results.json")
    merge(inputs, folder / "merged")
    return folder / "merged"


# -- in the browser ---------------------------------------------------------------------------------

# Measures the page as laid out and writes the figures into an attribute of <html> (read from --dump-dom); then
# presses the first copy button and records what it selected. Only this probing copy of the report has a script.
_PROBE = """<script>
const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height}; };
const first = document.querySelector('tr[id^="finding-"]');
const fix = document.querySelector('.fix pre');
// rendered at all: a closed <details> hides its content with content-visibility, which checkVisibility() sees
const shown = el => el.checkVisibility ? el.checkVisibility() : el.getClientRects().length > 0;
const probe = {
  innerWidth: innerWidth, innerHeight: innerHeight,
  scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
  verdict: box(document.getElementById('verdict')), first: box(first), firstCheck: first && first.dataset.check,
  findings: document.querySelectorAll('tr[id^="finding-"]').length,
  chainTop: box(document.getElementById('chain')), attentionTop: box(document.getElementById('attention')),
  chains: [...document.querySelectorAll('figure.chain svg')].map(svg => box(svg).width),
  access: box(document.getElementById('access')),
  accessSvgs: [...document.querySelectorAll('figure.access svg')].map(svg => box(svg)),
  fixOverflow: [...document.querySelectorAll('.fix pre, td')].filter(el => el.scrollWidth > el.clientWidth + 1).length,
  openAreas: document.querySelectorAll('details.area[open]').length, areas: document.querySelectorAll('details.area').length,
  passedShown: [...document.querySelectorAll('tr.passed')].filter(shown).length,
  targets: [...document.querySelectorAll('#targets tr[data-target]')].map(tr => [tr.dataset.target, tr.cells[1].textContent]),
  targetsBox: box(document.getElementById('targets')),
};
const button = document.querySelector('.fix button.copy');
if (button) { button.click(); probe.selected = String(getSelection()); probe.fix = fix.textContent; }
document.documentElement.setAttribute('data-probe', JSON.stringify(probe));
</script>"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    isolate = ["unshare", "-rn"] if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0 else []
    return subprocess.run([*isolate, CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _probe(probe: Path, width: int, height: int, tmp_path: Path) -> dict[str, Any]:
    done = _chromium("--dump-dom", f"--window-size={width},{height}", probe.as_uri(), profile=tmp_path / "profile")
    found = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert found, done.stderr[-2000:]
    return json.loads(html_module.unescape(found.group(1)))


def _measure(report: Path, size: tuple[int, int], tmp_path: Path) -> dict[str, Any]:
    """The figures with the page's viewport exactly `size`: --dump-dom lays the page out in a window whose frame
    takes part of --window-size (a screenshot's does not), so the window is grown by what the frame took."""
    probe = tmp_path / f"probe-{size[0]}.html"
    probe.write_text(report.read_text().replace("</body>", _PROBE + "</body>"))
    figures = _probe(probe, *size, tmp_path)
    if (figures["innerWidth"], figures["innerHeight"]) != size:
        figures = _probe(probe, 2 * size[0] - figures["innerWidth"], 2 * size[1] - figures["innerHeight"], tmp_path)
    assert (figures["innerWidth"], figures["innerHeight"]) == size
    return figures


def _screenshot(report: Path, size: tuple[int, int], tmp_path: Path, name: str) -> Path:
    shot = tmp_path / f"{name}-{size[0]}x{size[1]}.png"
    done = _chromium(f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", report.as_uri(),
                     profile=tmp_path / "profile-shot")
    assert shot.is_file() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    print(f"screenshot: {shot}")
    return shot


def _first_screen(figures: dict[str, Any]) -> None:
    """The verdict and the whole first finding on the first screen; nothing wider than the window."""
    height = figures["innerHeight"]
    assert figures["scrollWidth"] <= figures["clientWidth"], f"the page scrolls sideways: {figures['scrollWidth']} px"
    assert figures["fixOverflow"] == 0, "a cell or fix overflows its column"
    assert figures["verdict"]["top"] >= 0 and figures["verdict"]["bottom"] <= height
    assert figures["first"] is not None and figures["first"]["bottom"] <= height, (
        f"the first finding ends at {figures['first']['bottom']:.0f} px, below the {height} px screen")


@needs_chromium
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_red_report_findings_first_on_one_screen(base_reports: Any, size: tuple[int, int], tmp_path: Path) -> None:
    report = base_reports(RED) / "report.html"
    figures = _measure(report, size, tmp_path)
    _screenshot(report, size, tmp_path, RED)
    assert figures["findings"] >= 5 and figures["firstCheck"] == "DNS-002"  # failed before could-not-verify
    _first_screen(figures)
    assert figures["attentionTop"]["top"] < figures["chainTop"]["top"]
    assert figures["chains"] and min(figures["chains"]) >= 560, f"the chain is drawn {figures['chains']} px wide"
    assert figures["areas"] >= 5 and figures["openAreas"] == 0 and figures["passedShown"] == 0
    assert figures["selected"].strip() == figures["fix"].strip() and "kubectl" in figures["fix"]  # the copy button


@needs_chromium
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_three_target_fleet_opens_with_a_row_per_target(fleet: Path, size: tuple[int, int], tmp_path: Path) -> None:
    report = fleet / "report.html"
    figures = _measure(report, size, tmp_path)
    _screenshot(report, size, tmp_path, "fleet")
    assert figures["targets"] == [["prod", "PASSED"], ["staging", "FAILED"], ["dev", "FAILED"]]
    assert figures["targetsBox"]["bottom"] <= figures["first"]["top"]
    _first_screen(figures)
    assert len(figures["chains"]) == 3 and figures["passedShown"] == 0


@needs_chromium
def test_the_kubelet_branch_is_readable_at_1024(base_reports: Any, tmp_path: Path) -> None:
    """The chain with the kubelet beside it scales into the window instead of scrolling."""
    report = base_reports(KUBELET) / "report.html"
    figures = _measure(report, (1024, 768), tmp_path)
    _screenshot(report, (1024, 1400), tmp_path, KUBELET)
    _first_screen(figures)
    assert figures["chains"][0] > 900  # the chain and its side column, not squeezed to a strip
    assert figures["access"]["top"] >= figures["chainTop"]["bottom"] - 1  # who can: below the wide chain


@needs_chromium
@pytest.mark.parametrize("size", [*SIZES, (560, 700)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_who_can_picture_beside_or_below_the_chain(base_reports: Any, size: tuple[int, int], tmp_path: Path) -> None:
    """1440: beside the chain; 1024: below it, full size; 560: shrunk into the window. Never a sideways scroll."""
    report = base_reports(TEAM) / "report.html"
    figures = _measure(report, size, tmp_path)
    _screenshot(report, (size[0], 1800), tmp_path, TEAM)
    assert figures["scrollWidth"] <= figures["clientWidth"], f"the page scrolls sideways: {figures['scrollWidth']} px"
    (picture,) = figures["accessSvgs"]
    chain, access = figures["chainTop"], figures["access"]
    assert access is not None and picture["right"] <= figures["clientWidth"]
    if size[0] >= 1440:
        assert access["left"] >= chain["right"] and abs(access["top"] - chain["top"]) < 2, (chain, access)
    else:
        assert access["top"] >= chain["bottom"] - 1, (chain, access)
    if size[0] >= 1024:
        assert picture["width"] == 600  # full size, as the chain
        _first_screen(figures)  # ACCESS-001 says one line per principal: its finding fits the first screen
    else:
        assert 400 < picture["width"] < 600 and picture["height"] < picture["width"] * 2  # scaled, not squeezed


# -- the chain's model ------------------------------------------------------------------------------

def test_rbac_003_draws_the_kubelet_identity_not_the_dns_identitys_arrow(base_reports: Any) -> None:
    snapshot, results = _loaded(base_reports(KUBELET))
    chain = build_chain(snapshot, results)
    assert [link.state for link in chain.links] == ["passed"] * len(chain.links)  # the DNS identity's role is fine
    (branch,) = chain.branches
    assert (branch.node.kind, branch.beside, branch.joins, branch.link.state) == ("kubelet identity", "identity", "zone",
                                                                                 "failed")
    kubelet = snapshot.azure.managed_cluster()["properties"]["identityProfile"]["kubeletidentity"]
    assert branch.node.name == kubelet["resourceId"].rsplit("/", 1)[-1]
    assert branch.node.facts == (f"object id {kubelet['objectId']}", "DNS Zone Contributor at zone example.test")
    assert branch.link.finding is not None and branch.link.finding.id == "RBAC-003"
    html = (base_reports(KUBELET) / "report.html").read_text()
    assert 'class="link branch" data-from="kubelet identity" data-to="zone" data-state="failed"' in html
    assert html.count('data-state="failed"') == 1


def test_no_branch_when_the_kubelet_cannot_write_the_zone(base_reports: Any) -> None:
    snapshot, results = _loaded(base_reports("healthy"))
    assert build_chain(snapshot, results).branches == ()
    assert "kubelet identity" not in draw_chain(build_chain(snapshot, results))


def _canary_result(check_id: str, outcome: str) -> CheckResult:
    return CheckResult(id=check_id, title="t", severity="high", area="CANARY", subject="host/aksid-canary.example.test",
                       outcome=outcome, message="it says why", remediation="r", nodeid=f"n::{check_id}")


def test_a_check_judging_two_arrows_is_named_once() -> None:
    """CANARY-001 judges two arrows of the canary's chain, CANARY-002 two more: each is named on its first."""
    from aksid.reporting.chain import canary_link_checks

    results = [_canary_result("CANARY-001", "failed"), _canary_result("CANARY-002", "failed"),
               _canary_result("CANARY-003", "passed")]
    links = tuple(judge(checks, results) for checks in canary_link_checks())
    chain = Chain("canary", tuple(Node(kind, kind) for kind in CANARY_NODES), links)
    svg = draw_chain(chain)
    visible = " ".join(re.findall(r"<text[^>]*>(.*?)</text>", svg))  # what is drawn, not the tooltips
    for check_id in ("CANARY-001", "CANARY-002", "CANARY-003"):
        assert visible.count(check_id) == 1, f"{check_id} drawn {visible.count(check_id)} times: {visible}"
    assert visible.count("the same finding as the arrow above") == 2
    assert svg.count('data-state="failed"') == 4  # still every arrow it judges is red
