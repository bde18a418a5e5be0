"""Live DNS evidence with dnspython: the parent's delegation and what each authoritative server answers.

Every query goes straight to the server that should answer it (RD off, no resolver in between), over
UDP first and TCP when the answer is truncated, and is bounded by `timeout`. Queries run in parallel,
so a dead server costs one timeout, not one per query.

With `loopback_only` (the sandbox) no packet leaves 127.0.0.0/8 / ::1: the system resolver is never
asked, and an address outside loopback becomes an error entry instead of a query.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset

from aksid.collect.budget import Budget, GaveUp, retrying
from aksid.config import parse_dns_address
from aksid.snapshot import error, ok, question

MAX_WORKERS = 32
EDNS_PAYLOAD = 1232  # the DNS Flag Day 2020 size: no fragmentation, larger answers fall back to TCP
MAX_CNAME_CHAIN = 8
# Answers that mean the server could not or would not serve the name: evidence, but not an answer.
_FAILED_RCODES = {dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.NOTIMP, dns.rcode.FORMERR}

Address = tuple[str, int]
Entry = dict[str, Any]


def collect_dns(
    zone: str,
    host: str,
    name_servers: list[str],
    *,
    parent_servers: list[str] | None,
    server_addresses: dict[str, str] | None,
    loopback_only: bool,
    timeout: float = 2.0,
    txt_names: tuple[str, ...] = (),
    budget: Budget | None = None,
) -> dict[str, dict[str, Any]]:
    """Snapshot entries `parent` (the delegation as the parent serves it) and `servers` (per zone NS name).

    A query that times out, is reset or answers SERVFAIL is asked again within `budget` (attempts, backoff,
    deadline); a server that refuses TCP after a UDP timeout is not running, and is not asked again."""
    budget = budget or Budget.for_probes(timeout)
    try:
        origin = dns.name.from_text(zone.rstrip(".") + ".")
        questions = _questions(origin, host, txt_names)
    except dns.exception.DNSException as exc:
        reason = f"'{zone}' / '{host}' is not a valid DNS name: {_describe(exc)}"
        return {"parent": error(reason), "servers": error(reason)}
    with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="aksid-dns") as pool:
        # Phase 1: where to send queries (the system resolver only on real runs), lookups in parallel.
        parent_targets, parent_error = _parent_targets(pool, origin, parent_servers, loopback_only, timeout)
        lookups = {name: pool.submit(_server_address, name, server_addresses, loopback_only, timeout) for name in name_servers}
        server_targets = {name: future.result() for name, future in lookups.items()}
        # Phase 2: the queries themselves, all in parallel; targets without an address keep their error entry.
        parent_futures = {
            label: pool.submit(_parent_query, target, origin, timeout, budget)
            for label, target in parent_targets.items() if isinstance(target, tuple)
        }
        query_futures = {
            name: {key: pool.submit(_server_query, target, qname, rdtype, timeout, budget)
                   for key, (qname, rdtype) in questions.items()}
            for name, target in server_targets.items() if isinstance(target, tuple)
        }
        return {
            "parent": parent_error or _parent_entry(origin, parent_targets, parent_futures),
            "servers": _servers_entry(server_targets, query_futures),
        }


# --- targets ------------------------------------------------------------------------------------


def _questions(origin: dns.name.Name, host: str, txt_names: tuple[str, ...]) -> dict[str, tuple[dns.name.Name, int]]:
    wanted = [(origin, dns.rdatatype.SOA), (origin, dns.rdatatype.NS)]
    host_name = _query_name(host, origin)
    wanted += [(host_name, dns.rdatatype.A), (host_name, dns.rdatatype.TXT)]
    wanted += [(_query_name(name, origin), dns.rdatatype.TXT) for name in txt_names]
    return {f"{qname.to_text()} {dns.rdatatype.to_text(rdtype)}": (qname, rdtype) for qname, rdtype in wanted}


def _query_name(text: str, origin: dns.name.Name) -> dns.name.Name:
    """`hello.example.test` and `hello.example.test.` are absolute; a bare label (`a-hello`) is in the zone."""
    if not text.endswith(".") and "." not in text:
        return dns.name.from_text(text, origin=origin)
    return dns.name.from_text(text)


def _parent_targets(
    pool: ThreadPoolExecutor, origin: dns.name.Name, parent_servers: list[str] | None, loopback_only: bool, timeout: float
) -> tuple[dict[str, Address | Entry], Entry | None]:
    """Parent servers by label (an address, or an error entry), or an error entry when there are none."""
    if parent_servers:
        return {text: _configured_address(text, loopback_only) for text in parent_servers}, None
    if loopback_only:
        return {}, error("no parent server configured for the sandbox")
    # Real runs: the NS set of the zone that holds the delegation (zone_for_name skips non-cut labels).
    try:
        parent_zone = dns.resolver.zone_for_name(origin.parent(), lifetime=timeout)
        names = sorted({rdata.target.to_text() for rdata in dns.resolver.resolve(parent_zone, "NS", lifetime=timeout)})
    except dns.exception.DNSException as exc:
        return {}, error(f"the parent zone's name servers could not be resolved: {_describe(exc)}")
    futures = {name: pool.submit(_resolve_address, name, timeout) for name in names}
    return {name: future.result() for name, future in futures.items()}, None


def _server_address(
    name: str, server_addresses: Mapping[str, str] | None, loopback_only: bool, timeout: float
) -> Address | Entry:
    configured = _lookup(server_addresses or {}, name)
    if configured is not None:
        return _configured_address(configured, loopback_only)
    if loopback_only:
        return error(f"no address configured for {name} in the sandbox")
    return _resolve_address(name, timeout)


def _lookup(mapping: Mapping[str, str], name: str) -> str | None:
    """Names match with or without the trailing dot, in any case (DNS names are case-insensitive)."""
    wanted = name.rstrip(".").lower()
    return next((value for key, value in mapping.items() if key.rstrip(".").lower() == wanted), None)


def _configured_address(text: str, loopback_only: bool) -> Address | Entry:
    """"ip:port", "ip", "[v6]:port" or a bare IPv6 address; refused before any packet when off loopback."""
    try:
        address = parse_dns_address(text)
    except ValueError as exc:
        return error(str(exc))
    if loopback_only and not ipaddress.ip_address(address[0]).is_loopback:
        return error(f"{text} is outside the sandbox (only loopback addresses may be queried)")
    return address


def _resolve_address(name: str, timeout: float) -> Address | Entry:
    """Real runs only: the server's IPv4 address from the system resolver (callers check loopback_only)."""
    try:
        answer = dns.resolver.resolve(name, "A", lifetime=timeout)
    except dns.exception.DNSException as exc:
        return error(f"the address of {name} could not be resolved: {_describe(exc)}")
    return sorted(rdata.address for rdata in answer)[0], 53


# --- queries ------------------------------------------------------------------------------------


def _exchange(address: Address, qname: dns.name.Name, rdtype: int, timeout: float) -> tuple[dns.message.Message, str]:
    """One non-recursive query: UDP, then TCP if truncated, both within the same `timeout` budget."""
    deadline = time.monotonic() + timeout
    query = dns.message.make_query(qname, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
    query.flags &= ~dns.flags.RD
    ip, port = address
    response = dns.query.udp(query, ip, port=port, timeout=timeout, ignore_unexpected=True)
    if not response.flags & dns.flags.TC:
        return response, "udp"
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise dns.exception.Timeout(timeout=timeout)
    return dns.query.tcp(query, ip, port=port, timeout=remaining), "tcp"


class _ServerFailure(Exception):
    """SERVFAIL: the server could not answer this time; asked again, and kept as the answer if it lasts."""

    def __init__(self, response: dns.message.Message, transport: str) -> None:
        super().__init__("SERVFAIL")
        self.response, self.transport = response, transport


class _NotListening(Exception):
    """No answer over UDP and TCP refused: no DNS server runs there (not a lost packet: not asked again)."""


def _retry_cause(address: Address, timeout: float) -> Any:
    def cause_of(exc: BaseException) -> str | None:
        if isinstance(exc, _ServerFailure):
            return "SERVFAIL"
        if isinstance(exc, dns.exception.Timeout):
            if not _tcp_listening(address, min(timeout, 1.0)):
                raise _NotListening() from exc
            return "timeout"
        if isinstance(exc, (ConnectionResetError, EOFError)):
            return "reset"
        return None
    return cause_of


def _tcp_listening(address: Address, timeout: float) -> bool:
    """After a UDP timeout: a refused TCP connection means the server is down (a timeout means it may be there)."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return True


def _safe_exchange(
    address: Address, qname: dns.name.Name, rdtype: int, timeout: float, budget: Budget
) -> tuple[dns.message.Message, str] | Entry:
    label = _format_address(address)

    def ask() -> tuple[dns.message.Message, str]:
        response, transport = _exchange(address, qname, rdtype, budget.timeout(timeout))
        if response.rcode() == dns.rcode.SERVFAIL:
            raise _ServerFailure(response, transport)
        return response, transport

    try:
        return retrying(ask, budget=budget, family="dns", endpoint=label, cause_of=_retry_cause(address, timeout))
    except _ServerFailure as failure:  # not retryable any more (first attempt at the deadline)
        return failure.response, failure.transport
    except _NotListening:
        return error(f"{label} did not answer over UDP and refused TCP: no DNS server is listening there")
    except GaveUp as gave_up:
        if isinstance(gave_up.last, _ServerFailure):
            return gave_up.last.response, gave_up.last.transport
        if isinstance(gave_up.last, dns.exception.Timeout):
            return error(f"timeout: {label} did not answer within {timeout:g} s (after {gave_up.attempts} attempts)")
        return error(f"{label}: {_describe(gave_up.last)} (after {gave_up.attempts} attempts)")
    except ConnectionRefusedError:
        return error(f"{label} refused the connection")
    except OSError as exc:
        return error(f"{label}: {exc.strerror or exc}")
    except dns.exception.DNSException as exc:
        return error(f"{label} sent an unusable answer: {_describe(exc)}")


def _server_query(address: Address, qname: dns.name.Name, rdtype: int, timeout: float, budget: Budget) -> Entry:
    result = _safe_exchange(address, qname, rdtype, timeout, budget)
    if isinstance(result, dict):
        return result
    response, transport = result
    rcode = response.rcode()
    value: dict[str, Any] = {
        "rcode": dns.rcode.to_text(rcode), "aa": bool(response.flags & dns.flags.AA), "transport": transport,
        "answers": [], "ttl": None,
    }
    name, cnames = _follow_cnames(response, qname, rdtype)
    if cnames:
        value["cname"] = cnames
    rrset = _find(response.answer, name, rdtype)
    if rrset is not None:
        value["answers"] = sorted(rdata.to_text() for rdata in rrset)
        value["ttl"] = rrset.ttl
        if rdtype == dns.rdatatype.SOA:
            value["serial"] = rrset[0].serial
    if rcode in _FAILED_RCODES:
        return {"status": "error", "value": value, "reason": f"{_format_address(address)} answered {value['rcode']}"}
    return ok(value)


def _parent_query(address: Address, origin: dns.name.Name, timeout: float, budget: Budget) -> Entry:
    """The delegation: NS in the answer if the parent is also authoritative, else in the referral's authority."""
    result = _safe_exchange(address, origin, dns.rdatatype.NS, timeout, budget)
    if isinstance(result, dict):
        return result
    response, transport = result
    value: dict[str, Any] = {
        "address": _format_address(address), "rcode": dns.rcode.to_text(response.rcode()),
        "aa": bool(response.flags & dns.flags.AA), "transport": transport, "ns": [], "section": None,
    }
    for section_name, section in (("answer", response.answer), ("authority", response.authority)):
        rrset = _find(section, origin, dns.rdatatype.NS)
        if rrset is not None:
            value["ns"] = sorted(rdata.target.to_text() for rdata in rrset)
            value["section"] = section_name
            break
    if response.rcode() in _FAILED_RCODES:
        return {"status": "error", "value": value, "reason": f"{value['address']} answered {value['rcode']}"}
    return ok(value)


def _find(section: list[dns.rrset.RRset], name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
    return next((rrset for rrset in section if rrset.name == name and rrset.rdtype == rdtype), None)


def _follow_cnames(response: dns.message.Message, qname: dns.name.Name, rdtype: int) -> tuple[dns.name.Name, list[str]]:
    """Where the answer for `qname` really lives, through the CNAMEs the server included."""
    name, chain = qname, []
    while rdtype != dns.rdatatype.CNAME and len(chain) < MAX_CNAME_CHAIN:
        cname = _find(response.answer, name, dns.rdatatype.CNAME)
        if cname is None:
            break
        name = cname[0].target
        chain.append(name.to_text())
    return name, chain


# --- entries ------------------------------------------------------------------------------------


def _parent_entry(origin: dns.name.Name, targets: dict[str, Address | Entry], futures: dict[str, Future[Entry]]) -> Entry:
    servers = {label: futures[label].result() if label in futures else target for label, target in targets.items()}
    value = {"zone": origin.to_text(), "parent": origin.parent().to_text(), "servers": servers}
    if any(entry["status"] == "ok" for entry in servers.values()):
        return ok(value)
    reasons = "; ".join(f"{label}: {entry['reason']}" for label, entry in servers.items())
    return {"status": "error", "value": value, "reason": f"no parent server answered ({reasons})"}


def _servers_entry(targets: dict[str, Address | Entry], futures: dict[str, dict[str, Future[Entry]]]) -> Entry:
    if not targets:
        return error("the zone has no name servers to query")
    servers: dict[str, Entry] = {}
    for name, target in targets.items():
        if isinstance(target, dict):
            servers[name] = target  # no usable address: the reason is in the entry, and nothing was sent
            continue
        queries = {key: future.result() for key, future in futures[name].items()}
        servers[name] = ok({"address": _format_address(target), "queries": queries})
    return ok(servers)


def _format_address(address: Address) -> str:
    ip, port = address
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def answers_by_server(servers: dict[str, Any], fqdn: str) -> dict[str, list[str]]:
    """{name server: [A answers for fqdn]} from a `servers` entry of collect_dns (errors answer nothing)."""
    wanted = question(fqdn, "A").lower()
    found: dict[str, list[str]] = {}
    for name, server in (servers.get("value") or {}).items():
        queries = (server.get("value") or {}).get("queries") or {}
        entry = next((q for key, q in queries.items() if key.lower() == wanted), None) or {}
        found[name] = list((entry.get("value") or {}).get("answers") or []) if entry.get("status") == "ok" else []
    return found
