"""The DNS sandbox (real knotd over real UDP/TCP on loopback) and the live DNS collector against it.

Self-contained: its fixtures live here (no conftest), so it runs with `--noconftest`.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.tsigkeyring
import dns.update
import pytest

import aksid.sandbox.dns as sandbox_dns
from aksid.collect.dns import collect_dns
from aksid.sandbox.dns import DnsSandbox, DnsSandboxError, start_dns, stop_dns
from aksid.sandbox.processes import processes_under

ZONE = "example.test"
HOST = "hello.example.test"
SUBSCRIPTION = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
ZONE_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/{ZONE}"
NAME_SERVERS = ["ns1-01.azure-dns.com.", "ns2-01.azure-dns.net.", "ns3-01.azure-dns.org.", "ns4-01.azure-dns.info."]
OWNERSHIP = "heritage=external-dns,external-dns/owner=external-dns,external-dns/resource=ingress/hello/hello-kubernetes"
# external-dns writes the quotes into the Azure value; Azure serves them as part of the string.
OWNERSHIP_VALUE = f'"{OWNERSHIP}"'
OWNERSHIP_RDATA = '"\\"' + OWNERSHIP + '\\""'


def record_set(rtype: str, name: str, ttl: int, **records: Any) -> dict[str, Any]:
    fqdn = f"{ZONE}." if name == "@" else f"{name}.{ZONE}."
    return {
        "id": f"{ZONE_ID}/{rtype}/{name}", "name": name, "type": f"Microsoft.Network/dnszones/{rtype}",
        "etag": "00000000-0000-0000-0000-000000000000",
        "properties": {"metadata": {}, "TTL": ttl, "fqdn": fqdn, "provisioningState": "Succeeded", "targetResource": {},
                       **records},
    }


def zone_record_sets() -> list[dict[str, Any]]:
    return [
        record_set("SOA", "@", 3600, SOARecord={
            "host": NAME_SERVERS[0], "email": "azuredns-hostmaster.microsoft.com", "serialNumber": 1,
            "refreshTime": 3600, "retryTime": 300, "expireTime": 2419200, "minimumTTL": 300}),
        record_set("NS", "@", 172800, NSRecords=[{"nsdname": name} for name in NAME_SERVERS]),
        record_set("A", "hello", 300, ARecords=[{"ipv4Address": "127.0.0.80"}]),
        record_set("TXT", "hello", 300, TXTRecords=[{"value": [OWNERSHIP_VALUE]}]),
        record_set("TXT", "a-hello", 300, TXTRecords=[{"value": [OWNERSHIP_VALUE]}]),
    ]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def dns_for(state_dir: Path) -> Iterator[Callable[..., DnsSandbox]]:
    """Start DNS sandboxes on demand; every knotd is stopped by PID at teardown, whatever the test did."""
    started: list[DnsSandbox] = []

    def start(staging: dict[str, Any] | None = None, record_sets: list[dict[str, Any]] | None = None) -> DnsSandbox:
        sandbox = start_dns(state_dir / str(len(started)), ZONE, record_sets or zone_record_sets(), NAME_SERVERS, staging)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        stop_dns(sandbox.pids)


@pytest.fixture
def healthy(dns_for: Callable[..., DnsSandbox]) -> DnsSandbox:
    return dns_for()


def split(address: str) -> tuple[str, int]:
    ip, port = address.split(":")
    return ip, int(port)


def ask(address: str, name: str, rdtype: str, *, rd: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if not rd:
        query.flags &= ~dns.flags.RD
    ip, port = split(address)
    return dns.query.udp(query, ip, port=port, timeout=2)


def answers(response: dns.message.Message, name: str, rdtype: str) -> list[str]:
    rrset = response.get_rrset(response.answer, dns.name.from_text(name), dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
    return sorted(rdata.to_text() for rdata in rrset) if rrset else []


def server(sandbox: DnsSandbox, role: str) -> str:
    """The address of zone server "a" (127.0.0.54) or "b" (127.0.0.55), through the NS mapping."""
    wanted = {"a": "127.0.0.54", "b": "127.0.0.55"}[role]
    return next(address for address in sandbox.server_addresses.values() if address.startswith(f"{wanted}:"))


def referral(sandbox: DnsSandbox) -> dns.message.Message:
    return ask(sandbox.parent_servers[0], ZONE, "NS")


def knotd_pids_for(directory: Path) -> list[int]:
    """knotd processes whose command line names a config under `directory` (found through /proc)."""
    return processes_under(directory, program="knotd")


def pid_of(sandbox: DnsSandbox, role: str) -> int:
    """The PID of one knotd ("parent", "a", "b"), from its command line (the pid list has no promised order)."""
    for pid in sandbox.pids:
        if f"/dns/{role}/knot.conf".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError(f"no knotd for {role} in {sandbox.pids}")


class NoNetwork(Exception):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and block) every socket opened and every system-resolver call: proof that nothing was sent."""
    attempts: list[str] = []

    def forbidden(what: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args}")
            raise NoNetwork(what)
        return refuse

    monkeypatch.setattr(socket, "socket", forbidden("socket"))
    monkeypatch.setattr(dns.resolver, "resolve", forbidden("resolve"))
    monkeypatch.setattr(dns.resolver, "zone_for_name", forbidden("zone_for_name"))
    return attempts


# --- the sandbox itself -------------------------------------------------------------------------


def test_both_zone_servers_answer_the_a_record_authoritatively(healthy: DnsSandbox) -> None:
    assert set(healthy.server_addresses) == set(NAME_SERVERS)
    for address in healthy.server_addresses.values():
        ip, _ = split(address)
        assert ip in {"127.0.0.54", "127.0.0.55"}
        response = ask(address, HOST, "A")
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AA
        assert answers(response, HOST, "A") == ["127.0.0.80"]
        assert answers(ask(address, HOST, "TXT"), HOST, "TXT") == [OWNERSHIP_RDATA]
        assert answers(ask(address, f"a-{HOST}", "TXT"), f"a-{HOST}", "TXT") == [OWNERSHIP_RDATA]


def test_name_servers_alternate_between_a_and_b(healthy: DnsSandbox) -> None:
    ips = [split(healthy.server_addresses[name])[0] for name in NAME_SERVERS]
    assert ips == ["127.0.0.54", "127.0.0.55", "127.0.0.54", "127.0.0.55"]
    assert len({split(address)[1] for address in [*healthy.server_addresses.values(), *healthy.parent_servers]}) == 1
    assert split(healthy.parent_servers[0])[0] == "127.0.0.53"


def test_the_parent_refers_to_the_four_name_servers(healthy: DnsSandbox) -> None:
    response = referral(healthy)
    assert response.rcode() == dns.rcode.NOERROR
    assert not response.flags & dns.flags.AA  # a referral, not an authoritative answer
    assert not response.answer
    delegation = response.get_rrset(response.authority, dns.name.from_text(ZONE), dns.rdataclass.IN, dns.rdatatype.NS)
    assert delegation is not None
    assert sorted(rdata.target.to_text() for rdata in delegation) == sorted(NAME_SERVERS)
    assert ask(healthy.parent_servers[0], "test", "SOA").flags & dns.flags.AA


def test_staging_makes_server_b_serve_other_data(dns_for: Callable[..., DnsSandbox]) -> None:
    sandbox = dns_for({"servers": {"b": {"soa_serial": 0, "records": [
        {"name": "hello", "type": "A", "ttl": 300, "values": ["127.0.0.99"]},
        {"name": "a-hello", "type": "TXT", "values": []},  # an empty list removes the rrset on B
    ]}}})
    a, b = server(sandbox, "a"), server(sandbox, "b")
    assert answers(ask(a, HOST, "A"), HOST, "A") == ["127.0.0.80"]
    assert answers(ask(b, HOST, "A"), HOST, "A") == ["127.0.0.99"]
    serial_a = ask(a, ZONE, "SOA").answer[0][0].serial
    serial_b = ask(b, ZONE, "SOA").answer[0][0].serial
    assert (serial_a, serial_b) == (1, 0)
    assert answers(ask(a, f"a-{HOST}", "TXT"), f"a-{HOST}", "TXT") == [OWNERSHIP_RDATA]
    assert answers(ask(b, f"a-{HOST}", "TXT"), f"a-{HOST}", "TXT") == []


def test_parent_delegation_can_point_elsewhere(dns_for: Callable[..., DnsSandbox]) -> None:
    elsewhere = ["ns1.elsewhere.example.", "ns2.elsewhere.example."]
    sandbox = dns_for({"parent_delegation": elsewhere})
    response = referral(sandbox)
    delegation = response.get_rrset(response.authority, dns.name.from_text(ZONE), dns.rdataclass.IN, dns.rdatatype.NS)
    assert sorted(rdata.target.to_text() for rdata in delegation) == elsewhere
    assert set(sandbox.server_addresses) == set(NAME_SERVERS)  # the zone servers are unchanged


@pytest.mark.parametrize("staging, key", [
    ({"parent_delegations": []}, "dns.parent_delegations"),
    ({"servers": {"c": {}}}, "dns.servers.c"),
    ({"servers": {"b": {"serial": 2}}}, "dns.servers.b.serial"),
    ({"servers": {"a": {"records": [{"name": "hello", "type": "A", "values": [], "weight": 1}]}}},
     "dns.servers.a.records[0].weight"),
])
def test_unknown_staging_keys_are_rejected_by_name(dns_for: Callable[..., DnsSandbox], staging: dict[str, Any], key: str) -> None:
    with pytest.raises(DnsSandboxError, match=f"'{key}'".replace("[", r"\[").replace("]", r"\]")):
        dns_for(staging)


def test_bad_record_data_fails_before_any_knotd_starts(dns_for: Callable[..., DnsSandbox], state_dir: Path) -> None:
    with pytest.raises(DnsSandboxError, match=r"invalid A data '127\.0\.0\.999'"):
        dns_for({"servers": {"b": {"records": [{"name": "hello", "type": "A", "values": ["127.0.0.999"]}]}}})
    assert not state_dir.exists()


def test_a_zone_knot_refuses_fails_with_its_log_line_and_leaves_no_knotd(
    dns_for: Callable[..., DnsSandbox], state_dir: Path
) -> None:
    # CNAME and other data at one name: Azure forbids it too; knotd refuses to load the zone.
    broken = [*zone_record_sets(), record_set("CNAME", "hello", 300, CNAMERecord={"cname": "elsewhere.example"})]
    with pytest.raises(DnsSandboxError, match="could not load example.test.: .*another record exists beside CNAME"):
        start_dns(state_dir, ZONE, broken, NAME_SERVERS)
    assert knotd_pids_for(state_dir) == []


def test_a_port_lost_to_a_race_is_retried(
    dns_for: Callable[..., DnsSandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    thief = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    thief.bind(("127.0.0.54", 0))
    thief.listen()
    stolen = thief.getsockname()[1]
    real_free_port = sandbox_dns._free_port
    offered: list[int] = []

    def free_port(addresses: list[str]) -> int:
        offered.append(stolen if not offered else real_free_port(addresses))
        return offered[-1]

    monkeypatch.setattr(sandbox_dns, "_free_port", free_port)
    try:
        sandbox = dns_for()
    finally:
        thief.close()
    assert len(offered) == 2 and offered[0] == stolen
    assert split(sandbox.parent_servers[0])[1] == offered[1]
    assert answers(ask(server(sandbox, "a"), HOST, "A"), HOST, "A") == ["127.0.0.80"]


def test_a_signed_update_is_visible_at_once_on_the_updated_server(healthy: DnsSandbox) -> None:
    a = server(healthy, "a")
    ip, port = split(a)
    name = f"_acme-challenge.{HOST}."
    key = healthy.update_key
    assert key["algorithm"] == "hmac-sha256"

    unsigned = dns.update.UpdateMessage(f"{ZONE}.")
    unsigned.add(name, 60, "TXT", '"forged"')
    assert dns.query.udp(unsigned, ip, port=port, timeout=2).rcode() != dns.rcode.NOERROR

    keyring = dns.tsigkeyring.from_text({key["name"]: (key["algorithm"], key["secret"])})
    update = dns.update.UpdateMessage(f"{ZONE}.", keyring=keyring, keyname=key["name"])
    update.add(name, 60, "TXT", '"dns01-token"')
    assert dns.query.tcp(update, ip, port=port, timeout=2).rcode() == dns.rcode.NOERROR

    response = ask(a, name, "TXT")
    assert response.flags & dns.flags.AA
    assert answers(response, name, "TXT") == ['"dns01-token"']
    assert ask(a, ZONE, "SOA").answer[0][0].serial > 1  # knot bumps the serial on every update


def test_stop_leaves_no_knotd_and_nothing_beside_the_state_dir(tmp_path: Path, state_dir: Path) -> None:
    sandbox = start_dns(state_dir, ZONE, zone_record_sets(), NAME_SERVERS)
    assert len(sandbox.pids) == 3
    stop_dns(sandbox.pids)
    for pid in sandbox.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert knotd_pids_for(state_dir) == []
    assert [path.name for path in tmp_path.iterdir()] == ["state"]


# --- the collector against it -------------------------------------------------------------------


def collect(sandbox: DnsSandbox, **overrides: Any) -> dict[str, dict[str, Any]]:
    arguments: dict[str, Any] = dict(
        parent_servers=sandbox.parent_servers, server_addresses=sandbox.server_addresses, loopback_only=True,
        timeout=2.0, txt_names=(f"a-{HOST}",),
    )
    arguments.update(overrides)
    return collect_dns(ZONE, HOST, NAME_SERVERS, **arguments)


def test_collect_dns_over_the_healthy_sandbox(healthy: DnsSandbox) -> None:
    evidence = collect(healthy)

    parent = evidence["parent"]
    assert parent["status"] == "ok"
    (referral_entry,) = parent["value"]["servers"].values()
    assert referral_entry["status"] == "ok"
    assert referral_entry["value"]["ns"] == sorted(NAME_SERVERS)
    assert referral_entry["value"]["aa"] is False
    assert referral_entry["value"]["rcode"] == "NOERROR"
    assert referral_entry["value"]["section"] == "authority"

    servers = evidence["servers"]
    assert servers["status"] == "ok"
    assert set(servers["value"]) == set(NAME_SERVERS)
    for name, entry in servers["value"].items():
        assert entry["status"] == "ok", entry
        assert entry["value"]["address"] == healthy.server_addresses[name]
        queries = entry["value"]["queries"]
        assert all(query["status"] == "ok" and query["value"]["aa"] for query in queries.values()), queries
        assert queries[f"{HOST}. A"]["value"]["answers"] == ["127.0.0.80"]
        assert queries[f"{HOST}. A"]["value"]["ttl"] == 300
        assert queries[f"{ZONE}. SOA"]["value"]["serial"] == 1
        assert queries[f"{ZONE}. NS"]["value"]["answers"] == sorted(NAME_SERVERS)
        assert queries[f"{HOST}. TXT"]["value"]["answers"] == [OWNERSHIP_RDATA]
        assert queries[f"a-{HOST}. TXT"]["value"]["answers"] == [OWNERSHIP_RDATA]


def test_collect_dns_sees_what_staging_makes_b_serve(dns_for: Callable[..., DnsSandbox]) -> None:
    stale_b = {"soa_serial": 0, "records": [{"name": "hello", "type": "A", "values": ["127.0.0.99"]}]}
    sandbox = dns_for({"servers": {"b": stale_b}})
    servers = collect(sandbox)["servers"]["value"]
    a_answers = {name: servers[name]["value"]["queries"][f"{HOST}. A"]["value"]["answers"] for name in NAME_SERVERS}
    assert a_answers == dict(zip(NAME_SERVERS, [["127.0.0.80"], ["127.0.0.99"]] * 2, strict=False))
    assert servers[NAME_SERVERS[1]]["value"]["queries"][f"{ZONE}. SOA"]["value"]["serial"] == 0


def test_collect_dns_reports_a_dead_server_as_not_listening_in_bounded_time(healthy: DnsSandbox) -> None:
    os.kill(pid_of(healthy, "b"), signal.SIGKILL)
    started = time.monotonic()
    evidence = collect(healthy, timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 5.0  # a bound, not a benchmark: all queries run in parallel, each within `timeout`
    servers = evidence["servers"]["value"]
    for name in NAME_SERVERS[1::2]:  # ns2, ns4 -> B
        queries = servers[name]["value"]["queries"]
        # no answer over UDP, and TCP refused: nothing listens there, which retrying cannot change (not retried)
        assert queries and all(query["status"] == "error" and "no DNS server is listening there" in query["reason"]
                               for query in queries.values())
    for name in NAME_SERVERS[0::2]:  # ns1, ns3 -> A, still alive
        assert all(query["status"] == "ok" for query in servers[name]["value"]["queries"].values())
    assert evidence["parent"]["status"] == "ok"


def test_collect_dns_never_leaves_loopback_in_the_sandbox(no_network: list[str]) -> None:
    evidence = collect_dns(
        ZONE, HOST, NAME_SERVERS, parent_servers=["192.0.2.53:53"],
        server_addresses={NAME_SERVERS[0]: "10.1.2.3:53", NAME_SERVERS[1]: "[2001:db8::1]:53", NAME_SERVERS[2]: "8.8.8.8"},
        loopback_only=True, timeout=0.5,
    )
    parent = evidence["parent"]
    assert parent["status"] == "error"
    assert "192.0.2.53:53 is outside the sandbox" in parent["value"]["servers"]["192.0.2.53:53"]["reason"]
    servers = evidence["servers"]["value"]
    for name, address in [(NAME_SERVERS[0], "10.1.2.3:53"), (NAME_SERVERS[1], "[2001:db8::1]:53"), (NAME_SERVERS[2], "8.8.8.8")]:
        assert servers[name]["status"] == "error"
        assert f"{address} is outside the sandbox" in servers[name]["reason"]
    assert servers[NAME_SERVERS[3]]["status"] == "error"  # no mapping: never the system resolver
    assert "no address configured" in servers[NAME_SERVERS[3]]["reason"]
    assert no_network == []


def test_collect_dns_without_parent_servers_in_the_sandbox_asks_no_resolver(no_network: list[str]) -> None:
    evidence = collect_dns(ZONE, HOST, NAME_SERVERS, parent_servers=None, server_addresses=None, loopback_only=True)
    assert evidence["parent"] == {"status": "error", "value": None, "reason": "no parent server configured for the sandbox"}
    assert all(entry["status"] == "error" for entry in evidence["servers"]["value"].values())
    assert no_network == []
