"""report.html opens with the evidence chain: the model read from real runs' snapshots, and its colours as a
browser renders them (headless Chromium, offline; the colour is read from the screenshot's pixels)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from aksid.merge import merge
from aksid.reporting.chain import COLOURS, NODES, build_canary_chain, build_chain, row_anchor
from aksid.results import CheckResult
from aksid.snapshot import Snapshot

from .harness import REPO, aksid

RED = "rbac-identity-contributor-on-dns-rg"  # RBAC-002 fails: the identity → role arrow
SCREENSHOTS = REPO / "bench" / "results"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Nothing leaves the machine: no background services, no DNS, no proxy reachable; run in an empty network
# namespace too when the kernel lets an unprivileged user make one.
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
           "--disable-default-apps", "--no-first-run", "--no-pings", "--disable-domain-reliability",
           "--disable-breakpad", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
           "--proxy-bypass-list=<-loopback>"]
WIDTH = 900  # wide enough for the chain; small enough to decode the PNG quickly in Python


def _run(scenario: str, reports: Path) -> Path:
    run = aksid("demo", "--scenario", scenario, "--reports-dir", str(reports), reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    return reports


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run("healthy", tmp_path_factory.mktemp("healthy"))


@pytest.fixture(scope="module")
def red(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(RED, tmp_path_factory.mktemp("red"))


def _loaded(reports: Path) -> tuple[Snapshot, list[CheckResult]]:
    document = json.loads((reports / "results.json").read_text())
    return Snapshot.load(reports / "snapshot.json"), [CheckResult(**c) for c in document["checks"]]


# -- the model ------------------------------------------------------------------------------------

def test_healthy_chain_names_every_link_and_is_green(healthy: Path) -> None:
    snapshot, results = _loaded(healthy)
    chain = build_chain(snapshot, results)
    assert [n.kind for n in chain.nodes] == list(NODES) and all(n.collected for n in chain.nodes)
    node = {n.kind: n for n in chain.nodes}
    assert node["pod"].name == "kube-addons: cert-manager, external-dns"
    assert "AzureIdentityBinding" in node["binding"].name and "selector cert-manager, external-dns" in node["binding"].facts
    client = snapshot.azure.identity_named("example-test-identity")["properties"]["clientId"]
    assert node["identity"].name == "example-test-identity" and node["identity"].facts == (f"client id {client}",)
    assert node["role"].name == "DNS Zone Contributor" and node["role"].facts == ("scope: zone example.test",)
    assert node["record"].facts[0] == "Azure DNS 127.0.0.80" and "ns4-01 127.0.0.80" in node["record"].facts[-1]
    assert node["ingress IP"].facts[0] == "status.loadBalancer 127.0.0.80"
    assert node["certificate"].facts[1].startswith("serial ")
    # the served leaf is the issued one: same serial in both nodes
    assert node["certificate"].facts[1].split(",")[0] in node["served chain"].facts[0]
    assert node["served chain"].facts[1].startswith("trust root: CN=Pebble Root CA")
    assert [link.state for link in chain.links] == ["passed"] * len(chain.links)
    assert build_canary_chain(snapshot, results) is None  # attach mode: no canary


def test_red_chain_is_red_exactly_where_the_check_failed(red: Path) -> None:
    snapshot, results = _loaded(red)
    chain = build_chain(snapshot, results)
    failing = [(chain.nodes[i].kind, link) for i, link in enumerate(chain.links) if link.state != "passed"]
    assert [(kind, link.state) for kind, link in failing] == [("identity", "failed")]
    link = chain.link("identity")
    assert link.finding is not None and link.finding.id == "RBAC-002"
    assert link.colour == COLOURS["failed"]
    role = next(n for n in chain.nodes if n.kind == "role")
    assert role.facts == ("DNS Zone Contributor at zone example.test", "Contributor at resource group rg-dns")


def test_the_red_arrow_links_to_its_finding_row(red: Path) -> None:
    html = (red / "report.html").read_text()
    _, results = _loaded(red)
    finding = next(r for r in results if r.outcome == "failed")
    anchor = row_anchor(finding)
    assert f'<a href="#{anchor}">' in html and f'id="{anchor}"><td' in html
    assert html.index('id="attention"') < html.index('id="chain"')  # the findings first, the chain after them (#24)
    # nothing fetched; a link (<a href>, to the check's page) is followed only when clicked
    assert "<script" not in html and not re.search(r"""(?:src|(?<!<a )href)\s*=\s*["']?(?:https?:)?//""", html)


def test_static_snapshot_draws_what_it_has_and_greys_the_rest(red: Path, tmp_path: Path) -> None:
    snapshot, results = _loaded(red)
    document = json.loads(json.dumps(snapshot.document))
    document["mode"] = "static"
    for key in document["tls"]:
        document["tls"][key] = {"status": "skipped", "value": None, "reason": "needs a live environment"}
    for key in document["dns"]:
        document["dns"][key] = {"status": "skipped", "value": None, "reason": "needs a live environment"}
    static = [r for r in results if not r.id.startswith(("TLS", "DNS"))]
    chain = build_chain(Snapshot(document), static)
    grey = {n.kind for n in chain.nodes if not n.collected}
    assert grey == {"served chain", "padlock"}
    assert all(n.name == "not collected" for n in chain.nodes if n.kind in grey)
    assert chain.link("served chain").state == "unjudged" and chain.link("identity").state == "failed"


def test_merged_fleet_draws_one_chain_per_target_and_notes_a_missing_snapshot(
        healthy: Path, red: Path, tmp_path: Path) -> None:
    inputs = []
    for name, source in (("prod", healthy), ("staging", red), ("gone", healthy)):
        document = json.loads((source / "results.json").read_text())
        document["targets"] = [{**document["targets"][0], "name": name,
                                "snapshot": str(source / "snapshot.json") if name != "gone" else "/nowhere/snapshot.json"}]
        for check in document["checks"]:
            check["target"] = name
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(document))
        inputs.append(folder / "results.json")
    merge(inputs, tmp_path / "merged")
    html = (tmp_path / "merged" / "report.html").read_text()
    assert re.findall(r'data-chain="([^"]+)"', html) == ["prod: hello.example.test", "staging: hello.example.test"]
    assert "gone: no chain drawn, its snapshot /nowhere/snapshot.json is missing" in html
    assert html.count('data-state="failed"') == 1  # staging's RBAC-002 only, not prod's green chain


# -- rendered -------------------------------------------------------------------------------------

def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    isolate = ["unshare", "-rn"] if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0 else []
    return subprocess.run([*isolate, CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


# Finds every arrow's bar and writes where it is and its computed fill into an attribute of <html>: the report
# itself has no script; only this probing copy does, and it changes nothing on screen.
_PROBE = """<script>
const bars = [...document.querySelectorAll('g.link rect.bar')].map(bar => {
  const box = bar.getBoundingClientRect();
  return {from: bar.parentNode.dataset.from, state: bar.parentNode.dataset.state,
          x: box.left + window.scrollX + box.width / 2, y: box.top + window.scrollY + box.height / 2,
          fill: getComputedStyle(bar).fill};
});
document.documentElement.setAttribute('data-bars', JSON.stringify(bars));
</script>"""


def _bars(report: Path, tmp_path: Path) -> list[dict[str, object]]:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", _PROBE + "</body>"))
    done = _chromium("--dump-dom", f"--window-size={WIDTH},900", probe.as_uri(), profile=tmp_path / "profile-dom")
    found = re.search(r'data-bars="([^"]*)"', done.stdout)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def _screenshot(report: Path, out: Path, height: int, tmp_path: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    done = _chromium(f"--screenshot={out}", f"--window-size={WIDTH},{height}", report.as_uri(),
                     profile=tmp_path / "profile-shot")
    assert out.is_file(), done.stderr[-2000:]


def _png_pixels(path: Path) -> Callable[[float, float], tuple[int, int, int]]:
    """The screenshot's pixel reader (x, y) -> RGB: 8-bit RGB or RGBA, not interlaced, as Chromium writes them."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        header, idat = (body, idat) if kind == b"IHDR" else (header, idat + body if kind == b"IDAT" else idat)
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    step = 4 if colour == 6 else 3
    raw, stride, rows, previous = zlib.decompress(idat), width * step, [], bytearray(width * step)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                nearest = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner))[2]
                line[i] = (line[i] + nearest) & 0xFF
        rows.append(bytes(line))
        previous = line
    return lambda x, y: tuple(rows[int(y)][int(x) * step:int(x) * step + 3])  # type: ignore[return-value]


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _close(got: tuple[int, int, int], wanted: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 6 for a, b in zip(got, wanted, strict=True))


needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (make debs)")


@needs_chromium
@pytest.mark.parametrize("which", ["healthy", "red"])
def test_rendered_arrows_have_their_colour(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    reports: Path = request.getfixturevalue(which)
    bars = _bars(reports / "report.html", tmp_path)
    assert len(bars) == len(NODES) - 1
    height = int(max(float(str(b["y"])) for b in bars)) + 120
    shot = SCREENSHOTS / f"chain-{'healthy' if which == 'healthy' else RED}.png"
    _screenshot(reports / "report.html", shot, height, tmp_path)
    pixel_at = _png_pixels(shot)
    seen = {str(b["from"]): pixel_at(float(str(b["x"])), float(str(b["y"]))) for b in bars}
    wanted = {str(b["from"]): _rgb(COLOURS[str(b["state"])]) for b in bars}
    for source, pixel in seen.items():
        assert _close(pixel, wanted[source]), f"the arrow from {source} is drawn {pixel}, not {wanted[source]}"
    red_arrows = {source for source, pixel in seen.items() if _close(pixel, _rgb(COLOURS["failed"]))}
    assert red_arrows == (set() if which == "healthy" else {"identity"})
    computed = {str(b["from"]): str(b["fill"]) for b in bars}
    if which == "red":
        assert computed["identity"] == "rgb(207, 34, 46)"  # #cf222e as the browser computed it


def test_provision_run_draws_the_canary_chain_beside_it(tmp_path: Path) -> None:
    run = aksid("demo", "--mode", "provision", "--reports-dir", str(tmp_path), reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    snapshot, results = _loaded(tmp_path)
    canary = build_canary_chain(snapshot, results)
    assert canary is not None and [link.state for link in canary.links] == ["passed"] * 5
    assert canary.nodes[0].name == "aksid-canary.example.test" and canary.nodes[-1].facts == ("left nothing",)
    html = (tmp_path / "report.html").read_text()
    assert re.findall(r'data-chain="([^"]+)"', html) == ["hello.example.test", "canary"]
