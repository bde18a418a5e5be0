"""Real authoritative DNS for the sandbox: knotd serving the zone (twice) and its parent, on loopback only.

Three knotd processes share one high port:

    parent  127.0.0.53  the parent zone (`example.test` -> `test`): its SOA/NS and the zone's delegation
    a       127.0.0.54  the zone, from the Azure record sets; accepts TSIG-signed RFC 2136 updates
    b       127.0.0.55  the same zone (a scenario may stage a stale or different copy here)

Layout under `state_dir/dns/<role>/`: `knot.conf`, `zone.db`, `knotd.log`, `run/` (pid file, control
socket) and `storage/` (journal, timers). Nothing is written outside `state_dir`.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA

from aksid.sandbox.processes import (
    BIND_ATTEMPTS,
    Daemon,
    Launcher,
    Owned,
    free_ports,
    start_daemons,
    start_on_free_ports,
    stop_processes,
)

PARENT_ADDRESS = "127.0.0.53"
ZONE_ADDRESSES = {"a": "127.0.0.54", "b": "127.0.0.55"}
UPDATE_KEY_NAME = "aksid-update."
UPDATE_KEY_ALGORITHM = "hmac-sha256"
DELEGATION_TTL = 172800  # what TLD registries use for NS delegations
DEFAULT_TTL = 3600
STAGED_TTL = 300
PARENT_NS_LABEL = "ns-aksid-parent"
_ZONE_LOAD_FAILED = "zone event 'load' failed"

_STAGING_KEYS = {"parent_delegation", "servers"}
_SERVER_KEYS = {"soa_serial", "records"}
_RECORD_KEYS = {"name", "type", "ttl", "values"}

# Azure record set property (lower-cased: ARM writes `caaRecords` but `ARecords`) per record type.
_AZURE_PROPERTY = {
    "A": "arecords", "AAAA": "aaaarecords", "CNAME": "cnamerecord", "TXT": "txtrecords", "NS": "nsrecords",
    "SOA": "soarecord", "MX": "mxrecords", "CAA": "caarecords", "PTR": "ptrrecords", "SRV": "srvrecords",
}

RRsets = dict[tuple[dns.name.Name, dns.rdatatype.RdataType], tuple[int, list[dns.rdata.Rdata]]]


class DnsSandboxError(RuntimeError):
    """The DNS sandbox could not be built or started; the message says why."""


@dataclass(frozen=True)
class DnsSandbox:
    pids: list[int]  # every knotd started, to be stopped by PID
    parent_servers: list[str]  # ["127.0.0.53:PORT"], authoritative for the parent zone
    server_addresses: dict[str, str]  # zone NS name (as in Azure nameServers) -> "127.0.0.x:PORT"
    update_key: dict[str, str]  # TSIG {name, algorithm, secret} allowed to send RFC 2136 updates to the zone


@dataclass
class _Instance:
    role: str  # "parent", "a" or "b"
    address: str
    origin: dns.name.Name  # the zone this knotd serves (the parent zone for "parent")
    directory: Path
    process: subprocess.Popen[bytes] | None = None


# --- public API ---------------------------------------------------------------------------------


def start_dns(
    state_dir: Path,
    zone: str,
    record_sets: list[dict[str, Any]],
    name_servers: list[str],
    staging: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> DnsSandbox:
    """Start knotd for the zone (servers A and B) and its parent; return once all three answer SOA."""
    staged = validate_staging(staging)
    if not name_servers:
        raise DnsSandboxError(f"no name servers given for the zone {zone}")
    knotd = _find_knotd()
    origin = _zone_origin(zone)
    base = _zone_rrsets(origin, record_sets, name_servers)
    delegation = staged.get("parent_delegation") or name_servers
    zone_texts = {
        role: _zone_text(_apply_server_staging(base, origin, role, staged.get("servers", {}).get(role, {})))
        for role in ZONE_ADDRESSES
    }
    parent_text = _parent_zone_text(origin, delegation)
    key = {"name": UPDATE_KEY_NAME, "algorithm": UPDATE_KEY_ALGORITHM,
           "secret": base64.b64encode(secrets.token_bytes(32)).decode()}

    root = state_dir.resolve() / "dns"
    instances = [_Instance("parent", PARENT_ADDRESS, origin.parent(), root / "parent")]
    instances += [_Instance(role, address, origin, root / role) for role, address in ZONE_ADDRESSES.items()]
    texts = {"parent": parent_text, **zone_texts}
    deadline = time.monotonic() + timeout

    def start(port: int, launch: Launcher) -> int:
        daemons = [_prepare(instance, knotd, texts[instance.role], port, key) for instance in instances]
        processes = start_daemons(*daemons, error=DnsSandboxError, timeout=timeout, deadline=deadline, launch=launch,
                                  interval=0.005)
        for instance, process in zip(instances, processes, strict=True):
            instance.process = process
        return port

    # _free_port is looked up at each attempt: a test replaces it to stage a lost race.
    port = start_on_free_ports(lambda: _free_port([instance.address for instance in instances]), start,
                               error=DnsSandboxError,
                               exhausted=f"knotd could not bind a free port in {BIND_ATTEMPTS} attempts")
    return DnsSandbox(
        pids=[instance.process.pid for instance in instances if instance.process is not None],
        parent_servers=[f"{PARENT_ADDRESS}:{port}"],
        server_addresses=_server_addresses(name_servers, port),
        update_key=key,
    )


def stop_dns(pids: Iterable[int], owned: Owned | None = None) -> None:
    """SIGTERM every knotd, wait for it, SIGKILL what is left; reap our children so no zombie stays."""
    stop_processes(pids, owned=owned)


# --- staging ------------------------------------------------------------------------------------


def validate_staging(staging: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check the scenario's `dns:` section up front, so a typo fails here and not as a silently ignored key."""
    if staging is None:
        return {}
    _require_mapping(staging, "dns")
    _reject_unknown(staging, _STAGING_KEYS, "dns")
    result: dict[str, Any] = {}
    delegation = staging.get("parent_delegation")
    if delegation is not None:
        if not isinstance(delegation, list) or not delegation or not all(isinstance(n, str) and n for n in delegation):
            raise DnsSandboxError("dns.parent_delegation must be a non-empty list of name server names")
        result["parent_delegation"] = list(delegation)
    servers = staging.get("servers") or {}
    _require_mapping(servers, "dns.servers")
    _reject_unknown(servers, set(ZONE_ADDRESSES), "dns.servers")
    result["servers"] = {role: _validate_server(servers[role] or {}, f"dns.servers.{role}") for role in servers}
    return result


def _validate_server(server: Any, where: str) -> dict[str, Any]:
    _require_mapping(server, where)
    _reject_unknown(server, _SERVER_KEYS, where)
    serial = server.get("soa_serial")
    if serial is not None and (isinstance(serial, bool) or not isinstance(serial, int) or not 0 <= serial < 2**32):
        raise DnsSandboxError(f"{where}.soa_serial must be an integer from 0 to 4294967295")
    records = server.get("records") or []
    if not isinstance(records, list):
        raise DnsSandboxError(f"{where}.records must be a list")
    for index, record in enumerate(records):
        _validate_record(record, f"{where}.records[{index}]")
    return {"soa_serial": serial, "records": records}


def _validate_record(record: Any, where: str) -> None:
    _require_mapping(record, where)
    _reject_unknown(record, _RECORD_KEYS, where)
    for field in ("name", "type"):
        if not isinstance(record.get(field), str) or not record[field]:
            raise DnsSandboxError(f"{where}.{field} must be a non-empty string")
    ttl = record.get("ttl", STAGED_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        raise DnsSandboxError(f"{where}.ttl must be a non-negative integer")
    values = record.get("values")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise DnsSandboxError(f"{where}.values must be a list of strings (an empty list removes the rrset)")


def _require_mapping(value: Any, where: str) -> None:
    if not isinstance(value, Mapping):
        raise DnsSandboxError(f"{where} must be a mapping, not {type(value).__name__}")


def _reject_unknown(mapping: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in mapping if key not in allowed)
    if unknown:
        raise DnsSandboxError(f"unknown key '{where}.{unknown[0]}' in the DNS staging (allowed: {', '.join(sorted(allowed))})")


def _apply_server_staging(base: RRsets, origin: dns.name.Name, role: str, server: Mapping[str, Any]) -> RRsets:
    """This server's copy of the zone: the Azure data with the scenario's per-server differences."""
    rrsets = dict(base)
    where = f"dns.servers.{role}"
    for index, record in enumerate(server.get("records") or []):
        rdtype = _rdtype(record["type"], f"{where}.records[{index}].type")
        if rdtype == dns.rdatatype.SOA:
            raise DnsSandboxError(f"{where}.records[{index}]: stage the SOA with {where}.soa_serial")
        owner = _owner(record["name"], origin, f"{where}.records[{index}].name")
        if not record["values"]:
            rrsets.pop((owner, rdtype), None)  # staged absence: this server lacks the rrset
            continue
        texts = [_txt_rdata([v]) if rdtype == dns.rdatatype.TXT else v for v in record["values"]]
        rrsets[(owner, rdtype)] = (record.get("ttl", STAGED_TTL), _rdatas(rdtype, texts, origin, f"{where}.records[{index}]"))
    if server.get("soa_serial") is not None:
        ttl, (soa,) = rrsets[(origin, dns.rdatatype.SOA)]
        assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
        rrsets[(origin, dns.rdatatype.SOA)] = (ttl, [soa.replace(serial=server["soa_serial"])])
    return rrsets


# --- zone data ----------------------------------------------------------------------------------


def _zone_origin(zone: str) -> dns.name.Name:
    try:
        origin = dns.name.from_text(zone.rstrip(".") + ".")
    except dns.exception.DNSException as exc:
        raise DnsSandboxError(f"'{zone}' is not a valid DNS zone name: {exc}") from None
    if origin == dns.name.root:
        raise DnsSandboxError("the root zone cannot be sandboxed (it has no parent)")
    return origin


def _zone_rrsets(origin: dns.name.Name, record_sets: list[dict[str, Any]], name_servers: list[str]) -> RRsets:
    """The zone as Azure holds it; the apex SOA/NS default to what Azure would create with the zone."""
    rrsets: RRsets = {}
    for record_set in record_sets:
        where = f"record set {record_set.get('id') or record_set.get('name')}"
        rtype = str(record_set.get("type", "")).rsplit("/", 1)[-1].upper()
        if rtype not in _AZURE_PROPERTY:
            raise DnsSandboxError(f"{where}: record type '{rtype}' is not supported by the DNS sandbox")
        properties = {str(k).lower(): v for k, v in (record_set.get("properties") or {}).items()}
        try:
            texts = _azure_rdata_texts(rtype, properties.get(_AZURE_PROPERTY[rtype]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise DnsSandboxError(f"{where}: malformed {rtype} records ({type(exc).__name__}: {exc})") from None
        if not texts:
            continue  # an empty or alias (targetResource) record set: Azure serves no data we could reproduce
        rdtype = dns.rdatatype.from_text(rtype)
        owner = _owner(str(record_set.get("name", "@")), origin, f"{where} name")
        ttl = int(properties.get("ttl") or DEFAULT_TTL)
        rrsets[(owner, rdtype)] = (ttl, _rdatas(rdtype, texts, origin, where))
    if (origin, dns.rdatatype.SOA) not in rrsets:
        soa = f"{_absolute(name_servers[0])} azuredns-hostmaster.microsoft.com. 1 3600 300 2419200 300"
        rrsets[(origin, dns.rdatatype.SOA)] = (DEFAULT_TTL, _rdatas(dns.rdatatype.SOA, [soa], origin, "default SOA"))
    if (origin, dns.rdatatype.NS) not in rrsets:
        texts = [_absolute(name) for name in name_servers]
        rrsets[(origin, dns.rdatatype.NS)] = (DELEGATION_TTL, _rdatas(dns.rdatatype.NS, texts, origin, "default NS"))
    return rrsets


def _azure_rdata_texts(rtype: str, data: Any) -> list[str]:
    """Presentation-format rdata for one Azure record set's records (ARM property names, any case)."""
    if not data:
        return []
    items = [{str(k).lower(): v for k, v in item.items()} for item in (data if isinstance(data, list) else [data])]
    match rtype:
        case "A":
            return [item["ipv4address"] for item in items]
        case "AAAA":
            return [item["ipv6address"] for item in items]
        case "CNAME":
            return [_absolute(item["cname"]) for item in items]
        case "NS":
            return [_absolute(item["nsdname"]) for item in items]
        case "PTR":
            return [_absolute(item["ptrdname"]) for item in items]
        case "MX":
            return [f"{item['preference']} {_absolute(item['exchange'])}" for item in items]
        case "SRV":
            return [f"{item['priority']} {item['weight']} {item['port']} {_absolute(item['target'])}" for item in items]
        case "CAA":
            return [f"{item['flags']} {item['tag']} {_quote(str(item['value']).encode())}" for item in items]
        case "TXT":
            return [_txt_rdata(item.get("value") or [""]) for item in items]
        case "SOA":
            item = items[0]
            email = str(item["email"]).replace("@", ".")
            return [f"{_absolute(item['host'])} {_absolute(email)} {item.get('serialnumber') or 1} {item['refreshtime']} "
                    f"{item['retrytime']} {item['expiretime']} {item['minimumttl']}"]
    raise DnsSandboxError(f"record type '{rtype}' is not supported by the DNS sandbox")


def _txt_rdata(strings: list[str]) -> str:
    """Azure stores TXT values verbatim (external-dns even writes the quotes): serve them byte for byte,
    split into 255-byte character-strings as Azure does for long values."""
    chunks: list[bytes] = []
    for value in strings:
        raw = value.encode()
        chunks += [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
    return " ".join(_quote(chunk) for chunk in chunks)


def _quote(raw: bytes) -> str:
    escaped = "".join(f"\\{chr(b)}" if b in (0x22, 0x5C) else chr(b) if 0x20 <= b < 0x7F else f"\\{b:03d}" for b in raw)
    return f'"{escaped}"'


def _absolute(name: str) -> str:
    return name if name.endswith(".") else f"{name}."


def _owner(name: str, origin: dns.name.Name, where: str) -> dns.name.Name:
    try:
        owner = origin if name == "@" else dns.name.from_text(name, origin=origin)
    except dns.exception.DNSException as exc:
        raise DnsSandboxError(f"{where}: '{name}' is not a valid name: {exc}") from None
    if not owner.is_subdomain(origin):
        raise DnsSandboxError(f"{where}: '{name}' is outside the zone {origin}")
    return owner


def _rdtype(text: str, where: str) -> dns.rdatatype.RdataType:
    try:
        return dns.rdatatype.from_text(text)
    except dns.exception.DNSException:
        raise DnsSandboxError(f"{where}: unknown record type '{text}'") from None


def _rdatas(rdtype: dns.rdatatype.RdataType, texts: list[str], origin: dns.name.Name, where: str) -> list[dns.rdata.Rdata]:
    """Parse with dnspython, so bad data fails here with its record named (knotd would only log it)."""
    rdatas = []
    for text in texts:
        try:
            rdatas.append(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=origin, relativize=False))
        except (dns.exception.DNSException, ValueError) as exc:
            raise DnsSandboxError(f"{where}: invalid {dns.rdatatype.to_text(rdtype)} data '{text}': {exc}") from None
    return rdatas


def _zone_text(rrsets: RRsets) -> str:
    """A zone file with absolute names only, SOA first (knot requires nothing more)."""
    ordered = sorted(rrsets.items(), key=lambda item: (item[0][1] != dns.rdatatype.SOA, item[0][0], item[0][1]))
    lines = [
        f"{owner.to_text()} {ttl} IN {dns.rdatatype.to_text(rdtype)} {rdata.to_text()}"
        for (owner, rdtype), (ttl, rdatas) in ordered
        for rdata in rdatas
    ]
    return "\n".join(lines) + "\n"


def _parent_zone_text(origin: dns.name.Name, delegation: list[str]) -> str:
    """The parent: its own SOA/NS (with glue for its own server) and the zone's delegation, without glue
    because Azure's name servers are out of bailiwick."""
    parent = origin.parent()
    label = PARENT_NS_LABEL if origin.labels[0].decode().lower() != PARENT_NS_LABEL else f"{PARENT_NS_LABEL}-2"
    ns = dns.name.from_text(label, origin=parent).to_text()
    lines = [
        f"{parent.to_text()} {DEFAULT_TTL} IN SOA {ns} hostmaster.{ns} 1 3600 300 2419200 300",
        f"{parent.to_text()} {DEFAULT_TTL} IN NS {ns}",
        f"{ns} {DEFAULT_TTL} IN A {PARENT_ADDRESS}",
    ]
    targets = _rdatas(dns.rdatatype.NS, [_absolute(name) for name in delegation], parent, "dns.parent_delegation")
    lines += [f"{origin.to_text()} {DELEGATION_TTL} IN NS {target.to_text()}" for target in targets]
    return "\n".join(lines) + "\n"


def _server_addresses(name_servers: list[str], port: int) -> dict[str, str]:
    """ns1 -> A, ns2 -> B, ns3 -> A, ns4 -> B: both copies are reachable through the zone's NS names."""
    addresses = list(ZONE_ADDRESSES.values())
    return {name: f"{addresses[index % len(addresses)]}:{port}" for index, name in enumerate(name_servers)}


# --- knotd --------------------------------------------------------------------------------------


def _find_knotd() -> str:
    # /usr/sbin is often missing from PATH for non-root users; Debian installs knotd there.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
    knotd = shutil.which("knotd", path=path)
    if knotd is None:
        raise DnsSandboxError("knotd is not installed: apt-get install knot")
    return knotd


def _knot_config(instance: _Instance, port: int, key: Mapping[str, str] | None) -> str:
    """One knotd: one loopback address, its own rundir/storage/control socket, few threads (fast start)."""
    directory = instance.directory
    if '"' in str(directory) or "\n" in str(directory):
        raise DnsSandboxError(f"the state directory {directory} contains a quote or newline, which knot.conf cannot hold")
    lines = [
        f"# aksid DNS sandbox: {instance.role} server for {instance.origin.to_text()}",
        "server:",
        f'    rundir: "{directory}/run"',
        f"    listen: {instance.address}@{port}",
        "    udp-workers: 1",
        "    tcp-workers: 1",
        "    background-workers: 1",
        "control:",
        # knotd makes the socket path absolute, and unix socket paths are limited to ~107 bytes; knotd runs
        # with cwd=run/ and never changes it in the foreground, so /proc/self/cwd/ keeps the path short.
        '    listen: "/proc/self/cwd/knot.sock"',
        "log:",
        "  - target: stdout",
        "    any: info",
        "database:",
        f'    storage: "{directory}/storage"',
    ]
    if key is not None:
        lines += [
            "key:",
            f"  - id: {key['name']}",
            f"    algorithm: {key['algorithm']}",
            f"    secret: {key['secret']}",
            "acl:",
            "  - id: update",
            "    address: 127.0.0.0/8",
            f"    key: {key['name']}",
            "    action: update",
        ]
    lines += [
        "zone:",
        f"  - domain: {instance.origin.to_text()}",
        f'    file: "{directory}/zone.db"',
        # Updates are answered from memory as soon as they are committed; also write them to zone.db at
        # once (a restart or an inspecting test sees them) and keep the change history in the journal.
        "    zonefile-sync: 0",
        "    zonefile-load: whole",
        "    journal-content: changes",
    ]
    if key is not None:
        lines.append("    acl: update")
    return "\n".join(lines) + "\n"


def _prepare(instance: _Instance, knotd: str, zone_text: str, port: int, key: Mapping[str, str]) -> Daemon:
    """Write this knotd's directory (config, zone file) and say how to start it and know it serves its zone."""
    if instance.directory.exists():
        shutil.rmtree(instance.directory)  # a stale journal would be replayed over the new zone file
    (instance.directory / "run").mkdir(parents=True)
    (instance.directory / "storage").mkdir()
    (instance.directory / "zone.db").write_text(zone_text, encoding="utf-8")
    config = instance.directory / "knot.conf"
    config.write_text(_knot_config(instance, port, None if instance.role == "parent" else key), encoding="utf-8")
    config.chmod(0o600)  # it holds the TSIG secret
    name = f"knotd for the {instance.role} server ({instance.address}:{port})"

    def serves_zone() -> bool:
        """Whether it serves its zone yet; raises when it never will."""
        if _answers_soa(instance.address, port, instance.origin):
            return True
        log = _read_log(instance.directory)
        if _ZONE_LOAD_FAILED in log:
            # knotd keeps running without the zone: waiting for the timeout would not change that.
            raise DnsSandboxError(f"{name} could not load {instance.origin}: {_first_error(log)}")
        return False

    return Daemon(name, [knotd, "-c", str(config)], log=instance.directory / "knotd.log", ready=serves_zone,
                  ready_when=f"it answers SOA {instance.origin} authoritatively", cwd=instance.directory / "run",
                  port_taken="cannot bind address", cause=_first_error)


def _answers_soa(address: str, port: int, origin: dns.name.Name, timeout: float = 0.2) -> bool:
    """One SOA probe over a connected UDP socket: a port nobody listens on fails at once (ICMP refused)
    instead of costing the whole timeout."""
    query = dns.message.make_query(origin, dns.rdatatype.SOA)
    query.flags &= ~dns.flags.RD
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            sock.send(query.to_wire())
            response = dns.message.from_wire(sock.recv(65535))
        except (OSError, dns.exception.DNSException):
            return False
    return (
        response.id == query.id
        and response.rcode() == dns.rcode.NOERROR
        and bool(response.flags & dns.flags.AA)
        and any(rrset.rdtype == dns.rdatatype.SOA and rrset.name == origin for rrset in response.answer)
    )


def _read_log(directory: Path) -> str:
    try:
        return (directory / "knotd.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _first_error(log: str) -> str:
    """The first error in knotd's log: the cause (later errors and the last line are consequences); "" if none."""
    lines = [_strip_timestamp(line) for line in log.splitlines() if line.strip()]
    return next((line for line in lines if line.startswith(("critical:", "error:"))), "")


def _strip_timestamp(line: str) -> str:
    stamp, _, rest = line.strip().partition(" ")
    return rest if stamp[:1].isdigit() and rest else line.strip()


def _free_port(addresses: list[str]) -> int:
    """A port free for both UDP and TCP on every address (knotd still may lose a race: see PortTaken)."""
    return free_ports(addresses, udp=True)[0]

