"""DNS evidence wired end to end: settings, the scenario `dns:` key, knotd in the sandbox, and DNS-001..004.

The scenarios themselves (red and benign) run in test_scenarios.py; here are the cases a scenario file
cannot express: a knotd dying under the suite, a missing knotd, and evidence shapes only a real network
produces (lame servers, extra delegations, non-loopback addresses), replayed from an edited snapshot.
"""

from __future__ import annotations

import copy
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import aksid.sandbox.dns as sandbox_dns
from aksid.config import ConfigError, resolve_target
from aksid.sandbox.processes import processes_under
from aksid.sandbox.runtime import SandboxError, down, up
from aksid.sandbox.scenario import ScenarioError, load_scenario

from .harness import run_suites

SUB = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
REQUIRED = {"AZ_DNS_DOMAIN": "example.test", "AZ_RESOURCE_GROUP": "rg", "AZ_AKS_CLUSTER_NAME": "a", "AZ_SUBSCRIPTION_ID": SUB}
DNS_CHECKS = {"DNS-001", "DNS-002", "DNS-003", "DNS-004"}
HOST = "hello.example.test"
NS2 = "ns2-01.azure-dns.net."


def knotd_pids_under(directory: Path) -> list[int]:
    """Running knotd processes whose command line names a file under `directory` (through /proc)."""
    return processes_under(directory, program="knotd")


def dns_results(run: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["id"], c["subject"]): c for c in run.results["checks"] if c["id"] in DNS_CHECKS}


# --- settings -----------------------------------------------------------------------------------


def test_profile_dns_section_takes_lists_and_mappings(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"network": "loopback-only", "azure": {"endpoint": "https://127.0.0.1:1"}, "dns": {
        "parent_servers": ["127.0.0.53:20053", "[::1]:20053"],
        "server_addresses": {"ns1-01.azure-dns.com.": "127.0.0.54:20053", "NS2-01.azure-dns.net": "127.0.0.55"},
        "timeout": 0.5,
    }}))
    target = resolve_target(profile=profile, environ=REQUIRED)
    assert target.parent_servers() == ["127.0.0.53:20053", "[::1]:20053"]
    assert target.server_addresses() == {"ns1-01.azure-dns.com.": "127.0.0.54:20053", "NS2-01.azure-dns.net": "127.0.0.55"}
    assert target.dns_timeout_seconds == 0.5
    assert target.sources["dns_parent_servers"] == f"profile {profile} (dns.parent_servers)"


def test_dns_settings_from_the_environment_and_their_defaults() -> None:
    target = resolve_target(environ={**REQUIRED, "AKSID_DNS_PARENT_SERVERS": "192.0.2.53:53, 198.51.100.53",
                                     "AKSID_DNS_SERVER_ADDRESSES": "ns1.example.net=192.0.2.1:5353"})
    assert target.parent_servers() == ["192.0.2.53:53", "198.51.100.53"]
    assert target.server_addresses() == {"ns1.example.net": "192.0.2.1:5353"}
    plain = resolve_target(environ=REQUIRED)
    assert plain.parent_servers() is None and plain.server_addresses() is None  # real runs: the system resolver
    assert plain.dns_timeout_seconds == 2.0


@pytest.mark.parametrize("variables, phrase", [
    ({"AKSID_DNS_PARENT_SERVERS": "127.0.0.53:99999"}, "dns_parent_servers '127.0.0.53:99999' from environment"),
    ({"AKSID_DNS_PARENT_SERVERS": "ns.example.net"}, "is not an address"),
    ({"AKSID_DNS_SERVER_ADDRESSES": "127.0.0.54:53"}, "not of the form NS-NAME=ip:port"),
    ({"AKSID_DNS_SERVER_ADDRESSES": "ns1.example.net=nowhere"}, "has an entry for ns1.example.net that is not an address"),
    ({"AKSID_DNS_TIMEOUT": "0"}, "dns_timeout '0' from environment (AKSID_DNS_TIMEOUT) must be more than 0"),
])
def test_bad_dns_settings_name_the_field(variables: dict[str, str], phrase: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_target(environ={**REQUIRED, **variables})
    assert phrase in str(caught.value)


@pytest.mark.parametrize("variables, phrase", [
    ({"AKSID_DNS_PARENT_SERVERS": "127.0.0.53:53,192.0.2.53:53"}, "dns_parent_servers entry '192.0.2.53:53'"),
    ({"AKSID_DNS_SERVER_ADDRESSES": "ns1.example.net=[2001:db8::1]:53"}, "entry 'ns1.example.net=[2001:db8::1]:53'"),
])
def test_loopback_only_refuses_dns_servers_outside_the_sandbox(variables: dict[str, str], phrase: str) -> None:
    environ = {**REQUIRED, "AKSID_NETWORK": "loopback-only", "AKSID_ARM_ENDPOINT": "https://127.0.0.1:1", **variables}
    with pytest.raises(ConfigError, match="is outside the sandbox") as caught:
        resolve_target(environ=environ)
    assert phrase in str(caught.value)


# --- the scenario `dns:` key --------------------------------------------------------------------


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_a_patch_merges_its_dns_staging_over_its_base(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", {"description": "d", "base": "healthy", "dns": {
        "parent_delegation": ["ns1.elsewhere.example."],
        "servers": {"b": {"soa_serial": 0, "records": [{"name": "hello", "type": "A", "values": ["127.0.0.81"]}]}},
    }})
    patch = write(tmp_path / "patch.yaml", {"description": "d", "base": "base.yaml", "dns": {
        "parent_delegation": None,  # null deletes
        "servers": {"a": {"soa_serial": 7}, "b": {"records": [{"name": "www", "type": "A", "values": ["127.0.0.82"]}]}},
    }})
    assert load_scenario(str(patch)).dns == {
        "servers": {"a": {"soa_serial": 7},
                    "b": {"soa_serial": 0, "records": [{"name": "www", "type": "A", "values": ["127.0.0.82"]}]}},  # lists replace
    }
    assert load_scenario("healthy").dns == {}


@pytest.mark.parametrize("dns, phrase", [
    ({"servers": {"c": {}}}, "unknown key 'dns.servers.c'"),
    ({"parent_delegation": "ns1.example.net."}, "dns.parent_delegation must be a non-empty list"),
    ({"servers": {"b": {"records": [{"name": "hello", "type": "A"}]}}}, "dns.servers.b.records[0].values must be a list"),
    (["parent_delegation"], "'dns' must be a mapping"),
])
def test_a_malformed_dns_key_is_a_scenario_error_naming_the_file(tmp_path: Path, dns: Any, phrase: str) -> None:
    path = write(tmp_path / "mine.yaml", {"description": "d", "base": "healthy", "dns": dns})
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    assert str(path) in str(caught.value) and phrase in str(caught.value)


def test_bad_record_data_fails_up_naming_the_file_before_anything_starts(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.yaml", {"description": "d", "base": "healthy", "dns": {
        "servers": {"b": {"records": [{"name": "hello", "type": "A", "values": ["127.0.0.999"]}]}}}})
    state = tmp_path / "state"
    with pytest.raises(SandboxError, match=r"invalid A data '127\.0\.0\.999'") as caught:
        up(str(path), state)
    assert str(path) in str(caught.value)
    assert not (state / "pids.json").exists() and knotd_pids_under(state) == []


# --- knotd in the sandbox -----------------------------------------------------------------------


def test_up_records_the_knotd_pids_and_down_stops_them_leaving_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    sandbox = up("healthy", state)
    try:
        pids = json.loads((state / "pids.json").read_text())
        assert set(pids) == {"serve", "knotd-parent", "knotd-a", "knotd-b", "pebble-prod", "pebble-staging", "nginx"}
        assert sorted(knotd_pids_under(state)) == sorted(pid for name, pid in pids.items() if name.startswith("knotd"))
        dns = yaml.safe_load(sandbox.profile.read_text())["dns"]
        assert [address.split(":")[0] for address in dns["parent_servers"]] == ["127.0.0.53"]
        assert {address.split(":")[0] for address in dns["server_addresses"].values()} == {"127.0.0.54", "127.0.0.55"}
    finally:
        stopped = down(state)
    assert sorted(stopped) == sorted(pids.values())
    assert knotd_pids_under(state) == []
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert [path.name for path in tmp_path.iterdir()] == ["state"]


def test_a_missing_knotd_is_a_sandbox_error_naming_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_dns.shutil, "which", lambda *args, **kwargs: None)
    state = tmp_path / "state"
    with pytest.raises(SandboxError, match="knotd is not installed: apt-get install knot"):
        up("healthy", state)
    assert not (state / "pids.json").exists()  # nothing was started, not even the API servers


@pytest.mark.parametrize("killed, erroring", [
    ("knotd-b", {("DNS-001", f"nameserver/{NS2.rstrip('.')}"), ("DNS-001", "nameserver/ns4-01.azure-dns.info"),
                 ("DNS-001", "zone/example.test/soa-serial"),
                 ("DNS-003", f"nameserver/{NS2.rstrip('.')}"), ("DNS-003", "nameserver/ns4-01.azure-dns.info")}),
    ("knotd-parent", {("DNS-001", "zone/example.test")}),
])
def test_a_knotd_killed_mid_run_is_an_error_with_the_cause(
    sandbox_for: Callable[..., Any], tmp_path: Path, killed: str, erroring: set[tuple[str, str]]
) -> None:
    sandbox = sandbox_for("healthy")
    os.kill(json.loads((sandbox.state_dir / "pids.json").read_text())[killed], signal.SIGKILL)
    run = run_suites("--aksid-profile", str(sandbox.profile), "--aksid-set", "dns_timeout=0.5", reports=tmp_path)
    assert run.code == 1, run.stdout + run.stderr
    assert run.ids_with("failed") == set(), run.stdout
    results = dns_results(run)
    errors = {key: c["message"] for key, c in results.items() if c["outcome"] == "error"}
    assert set(errors) == erroring, run.stdout
    assert all("did not answer over UDP and refused TCP: no DNS server is listening there" in message
               for message in errors.values()), errors
    assert all(c["outcome"] == "passed" for key, c in results.items() if key not in erroring)
    assert "could not collect dns" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


# --- the checks on evidence shapes a scenario cannot stage: replayed from an edited snapshot -------


@pytest.fixture(scope="module")
def healthy_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One live run against the healthy sandbox: all DNS checks green; its snapshot is the base of the edits."""
    root = tmp_path_factory.mktemp("dns-healthy")
    up("healthy", root / "state")
    try:
        run = run_suites("--aksid-profile", str(root / "state" / "profile.yaml"), reports=root / "reports")
    finally:
        down(root / "state")
    assert run.code == 0, run.stdout + run.stderr
    results = dns_results(run)
    assert {check_id for check_id, _ in results} == DNS_CHECKS
    assert all(c["outcome"] == "passed" for c in results.values()), results
    yield json.loads((root / "reports" / "snapshot.json").read_text())


def replay(document: dict[str, Any], tmp_path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    run = run_suites("--aksid-replay", str(path), reports=tmp_path / "reports")
    assert "Traceback" not in run.stdout + run.stderr
    return dns_results(run)


def server_query(document: dict[str, Any], server: str, question: str) -> dict[str, Any]:
    return document["dns"]["servers"]["value"][server]["value"]["queries"][question]


def kube_item(document: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    return next(item for item in document["kube"][key]["value"] if item["metadata"]["name"] == name)


def record_set(document: dict[str, Any], rtype: str, name: str) -> dict[str, Any]:
    return next(r for r in document["azure"]["recordSets"]["value"] if r["type"].endswith(f"/{rtype}") and r["name"] == name)


def test_lame_servers_and_a_wrong_delegation_fail_dns_001(healthy_snapshot: dict[str, Any], tmp_path: Path) -> None:
    document = copy.deepcopy(healthy_snapshot)
    (parent,) = document["dns"]["parent"]["value"]["servers"].values()
    parent["value"]["ns"] = ["NS1-01.AZURE-DNS.COM", "ns2-01.azure-dns.net.", "ns3-01.azure-dns.org.", "ns9.elsewhere.example."]
    soa = server_query(document, NS2, "example.test. SOA")
    soa.update(status="error", reason="answered REFUSED")
    soa["value"].update(rcode="REFUSED", aa=False, answers=[], serial=None)
    results = replay(document, tmp_path)
    delegation = results[("DNS-001", "zone/example.test")]
    assert delegation["outcome"] == "failed"
    # only ns4 is missing and only ns9 extra: case and the trailing dot are no difference
    assert "it lacks ns4-01.azure-dns.info and also names ns9.elsewhere.example, which Azure does not list" in (
        delegation["message"])
    lame = results[("DNS-001", "nameserver/ns2-01.azure-dns.net")]
    assert lame["outcome"] == "failed" and lame["message"].startswith("lame delegation: name server ns2-01.azure-dns.net.")
    assert "answers REFUSED and answers without the AA bit" in lame["message"]
    assert results[("DNS-001", "zone/example.test/soa-serial")]["outcome"] == "passed"  # the lame one is left out
    others = {key: c["outcome"] for key, c in results.items() if key[0] != "DNS-001"}
    assert set(others.values()) == {"passed"}, others


def test_an_address_outside_the_sandbox_is_an_error_never_a_verdict(healthy_snapshot: dict[str, Any], tmp_path: Path) -> None:
    document = copy.deepcopy(healthy_snapshot)
    kube_item(document, "v1/Service", "ingress-nginx-controller")["status"]["loadBalancer"]["ingress"] = [{"ip": "20.61.1.7"}]
    kube_item(document, "networking.k8s.io/v1/Ingress", "hello-kubernetes")["status"]["loadBalancer"]["ingress"] = [
        {"ip": "20.61.1.7"}]
    record_set(document, "A", "hello")["properties"]["ARecords"] = [{"ipv4Address": "20.61.1.7"}]
    results = replay(document, tmp_path)
    assert results[("DNS-002", f"record/{HOST}")]["outcome"] == "error"
    assert "20.61.1.7 (load balancer of Service kube-addons/ingress-nginx-controller) is outside the sandbox" in (
        results[("DNS-002", f"record/{HOST}")]["message"])
    dns_003 = [c for key, c in results.items() if key[0] == "DNS-003"]
    assert dns_003 and all(c["outcome"] == "error" and "20.61.1.7" in c["message"] and "outside the sandbox" in c["message"]
                           for c in dns_003)


def test_ownership_record_forms_external_dns_writes(healthy_snapshot: dict[str, Any], tmp_path: Path) -> None:
    """0.18+ writes only `a-hello`; a value may come without the quotes; the owner id may be the default."""
    document = copy.deepcopy(healthy_snapshot)
    document["azure"]["recordSets"]["value"].remove(record_set(document, "TXT", "hello"))
    owned = "heritage=external-dns,external-dns/owner=default,external-dns/resource=ingress/hello/hello-kubernetes"
    record_set(document, "TXT", "a-hello")["properties"]["TXTRecords"] = [{"value": [owned[:100], owned[100:]]}]
    for deployment in document["kube"]["apps/v1/Deployment"]["value"]:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            container["args"] = [a for a in container.get("args") or [] if not a.startswith("--txt-owner-id")]
    assert replay(document, tmp_path)[("DNS-004", f"record/{HOST}")]["outcome"] == "passed"
    record_set(document, "TXT", "a-hello")["properties"]["TXTRecords"] = [{"value": [f'"{owned}"'.replace("=default", "=x")]}]
    failed = replay(document, tmp_path)[("DNS-004", f"record/{HOST}")]
    assert failed["outcome"] == "failed"
    expected = ("a-hello.example.test says external-dns/owner=x, but this cluster's external-dns runs as "
                "kube-addons/external-dns with --txt-owner-id=default")
    assert expected in failed["message"]


def test_a_snapshot_without_dns_evidence_is_an_error_not_a_pass(healthy_snapshot: dict[str, Any], tmp_path: Path) -> None:
    document = copy.deepcopy(healthy_snapshot)
    del document["dns"]  # a snapshot saved before DNS evidence existed
    results = replay(document, tmp_path)
    needs_servers = {key: c for key, c in results.items() if key[0] in ("DNS-001", "DNS-003")}
    assert needs_servers and all(c["outcome"] == "error" and "no DNS evidence" in c["message"] for c in needs_servers.values())
    assert results[("DNS-002", f"record/{HOST}")]["outcome"] == "passed"  # Azure and the cluster suffice there
