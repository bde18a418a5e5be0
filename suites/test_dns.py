"""DNS: the zone is delegated to Azure's name servers, and they serve the address the cluster's ingress has.

Evidence: the zone and its record sets as ARM returns them (`snapshot.azure`), the ingress Service, the demo
Ingress and the external-dns Deployment (`snapshot.kube`), and what the parent zone's servers and each of the
zone's name servers answered, asked directly (`snapshot.dns`). Names compare case-insensitively, with or
without the trailing dot.
"""

from __future__ import annotations

from typing import Any

import pytest

from aksid.checks import NotApplicable, check
from aksid.config import Target, is_loopback_host
from aksid.evidence import Evidence, path_text
from aksid.external_dns import (
    TXT_REGISTRY,
    Registry,
    domain_matches,
    is_external_dns,
    ownership_fields,
    ownership_names,
    registry_of,
    relative,
    txt_values,
)
from aksid.modes import LIVE_MODES
from aksid.snapshot import EvidenceUnavailable, Snapshot, labels_match

INGRESS_SERVICE = "ingress-nginx-controller"
INGRESS_LABELS = {"app.kubernetes.io/name": "ingress-nginx"}


def _norm(name: str) -> str:
    return str(name).strip().rstrip(".").lower()


def _properties(resource: dict[str, Any]) -> dict[str, Any]:
    """ARM property names in lower case (the SDK writes `ARecords`, `TXTRecords`, `TTL`; other clients differ)."""
    return {str(key).lower(): value for key, value in (resource.get("properties") or {}).items()}


def _lower_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in item.items()}


def _domain(target: Target) -> str:
    return target.domain.rstrip(".")


def _name_servers(zone: dict[str, Any]) -> list[str]:
    return [str(name) for name in _properties(zone).get("nameservers") or []]


def _zone_or_not_applicable(snapshot: Snapshot, target: Target) -> dict[str, Any]:
    zone = snapshot.azure.dns_zone()
    if zone is None:
        raise NotApplicable(f"the DNS zone {_domain(target)} does not exist in Azure (see DNS-001)")
    return zone


def _record_set(snapshot: Snapshot, target: Target, rtype: str, name: str) -> dict[str, Any] | None:
    """The zone's record set of `rtype` at `name` (relative, like ARM's `name`)."""
    fqdn = _norm(f"{name}.{_domain(target)}")
    for record_set in snapshot.azure.record_sets():
        if str(record_set.get("type", "")).rsplit("/", 1)[-1].upper() != rtype:
            continue
        if _norm(record_set.get("name", "")) == _norm(name) or _norm(_properties(record_set).get("fqdn") or "") == fqdn:
            return record_set
    return None


def _a_record(snapshot: Snapshot, target: Target) -> tuple[dict[str, Any] | None, list[str] | None]:
    """The demo host's A record set and its addresses; None addresses for an alias record (Azure resolves those)."""
    record_set = _record_set(snapshot, target, "A", target.demo_host)
    if record_set is None:
        return None, []
    properties = _properties(record_set)
    addresses = sorted(str(_lower_keys(item).get("ipv4address")) for item in properties.get("arecords") or [])
    alias = (properties.get("targetresource") or {}).get("id")
    return record_set, None if alias and not addresses else addresses


def _property(resource: dict[str, Any], lower: str) -> str:
    """The field path of a property as the resource spells it (`properties.ARecords`), for evidence."""
    key = next((k for k in resource.get("properties") or {} if str(k).lower() == lower), lower)
    return f"properties.{key}"


def _ref(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))


def _load_balancer_addresses(obj: dict[str, Any]) -> list[str]:
    entries = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return sorted({str(entry.get("ip") or entry.get("hostname")) for entry in entries
                   if entry.get("ip") or entry.get("hostname")})


def ingress_services(snapshot: Snapshot, target: Target) -> list[dict[str, Any]]:
    """ingress-nginx's controller Service: type LoadBalancer, named ingress-nginx-controller or labelled as ingress-nginx."""
    return [
        service for service in snapshot.kube.list("v1", "Service", target.addon_namespace)
        if (service.get("spec") or {}).get("type") == "LoadBalancer"
        and (service["metadata"].get("name") == INGRESS_SERVICE
             or labels_match(service["metadata"].get("labels"), INGRESS_LABELS))
    ]


def demo_ingresses(snapshot: Snapshot, target: Target) -> list[dict[str, Any]]:
    """Ingresses with a rule for the demo host."""
    fqdn = _norm(target.demo_fqdn)
    return [
        ingress for ingress in snapshot.kube.list("networking.k8s.io/v1", "Ingress")
        if any(_norm(rule.get("host") or "") == fqdn for rule in (ingress.get("spec") or {}).get("rules") or [])
    ]


def _inside_sandbox(target: Target, addresses: dict[str, list[str]]) -> None:
    """In loopback-only mode an address from the evidence off 127.0.0.0/8 means the data is not the sandbox's."""
    if target.network != "loopback-only":
        return
    for where, values in addresses.items():
        for value in values:
            if not is_loopback_host(value):
                raise EvidenceUnavailable(f"{value} ({where}) is outside the sandbox (network is loopback-only)")


def _listing(values: list[str] | None) -> str:
    return ", ".join(values) if values else "nothing"


# -- DNS-001 ------------------------------------------------------------------------------------

def zone_and_name_servers(snapshot: Snapshot, target: Target) -> dict[str, tuple[str, str | None]]:
    """The zone's delegation, each name server Azure lists for it, and the agreement of their SOA serials."""
    zone = snapshot.azure.dns_zone()
    domain = _norm(target.domain)
    subjects: dict[str, tuple[str, str | None]] = {f"zone/{domain}": ("delegation", None)}
    if zone is None:
        return subjects  # the delegation subject fails: the zone does not exist
    servers = _name_servers(zone)
    subjects.update({f"nameserver/{_norm(name)}": ("server", name) for name in servers})
    if len(servers) > 1:
        subjects[f"zone/{domain}/soa-serial"] = ("serial", None)
    return subjects


@check(
    "DNS-001", "the zone exists and the parent delegates it to exactly its name servers", "high",
    remediation="Create the zone if it is missing (`az network dns zone create -g <rg> -n <domain>`); set the "
                "domain's NS records at the registrar / in the parent zone to exactly the zone's name servers "
                "(`az network dns zone show -g <rg> -n <domain> --query nameServers`), no more, no fewer.",
    subjects=zone_and_name_servers,
    modes=LIVE_MODES,
    reads=("azure:dnsZone", "dns:parent", "dns:servers"),
    link="zone → record",
    groups=("azure:dnsZone",),
)
def test_zone_delegated(subject: tuple[str, str | None], snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    what, name_server = subject
    zone = snapshot.azure.dns_zone()
    if zone is not None:
        evidence.arm("dnsZone", zone, _property(zone, "nameservers"))
    if what == "delegation":
        _assert_delegation(snapshot, target, evidence)
    elif what == "server":
        assert name_server is not None
        _assert_authoritative(snapshot, target, name_server, evidence)
    else:
        _assert_serials_agree(snapshot, target, evidence)


def _assert_delegation(snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    domain = _domain(target)
    zone = snapshot.azure.dns_zone()
    evidence.target(target, "domain", "dns_resource_group")
    evidence.fix(f"az network dns zone create -g {target.dns_resource_group} -n {domain}")
    assert zone is not None, (
        f"DNS zone {domain} does not exist in resource group {target.dns_resource_group} (subscription "
        f"{target.subscription_id}): external-dns and cert-manager have nowhere to write; create it "
        f"(`az network dns zone create -g {target.dns_resource_group} -n {domain}`) or fix AZ_DNS_DOMAIN / AZ_DNS_RESOURCE_GROUP"
    )
    expected = sorted({_norm(name) for name in _name_servers(zone)})
    assert expected, f"Azure lists no name servers for zone {domain} (properties.nameServers is empty); nothing can serve it"
    parent = snapshot.dns.parent()
    problems = []
    for label, entry in parent["servers"].items():
        value = entry.get("value")
        if value is None:
            raise EvidenceUnavailable(f"parent server {label} (zone {parent['parent']}) gave no answer for {domain} NS: "
                                      f"{entry['reason']}")
        if value["rcode"] not in ("NOERROR", "NXDOMAIN"):
            raise EvidenceUnavailable(
                f"parent server {label} (zone {parent['parent']}) answered {value['rcode']} for {domain} NS")
        evidence.dns_parent(label, value, "rcode", "ns")
        delegated = sorted({_norm(name) for name in value["ns"]})
        if not delegated:
            problems.append(f"parent server {label} (zone {parent['parent']}) does not delegate {domain} at all "
                            f"(answered {value['rcode']} without NS records)")
            continue
        missing = [name for name in expected if name not in delegated]
        extra = [name for name in delegated if name not in expected]
        parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
            [f"also names {', '.join(extra)}, which Azure does not list for the zone"] if extra else [])
        if parts:
            problems.append(f"parent server {label} (zone {parent['parent']}) delegates {domain} to "
                            f"{', '.join(delegated)}: it {' and '.join(parts)}")
    evidence.fix(f"at the registrar of {domain} (parent zone {parent['parent']}), set the NS records to exactly "
                 f"{' '.join(expected)}")
    assert not problems, (
        "; ".join(problems) + f". Azure's name servers for {domain} are {', '.join(expected)}: make exactly these the "
        "domain's NS records at the registrar, or resolvers ask servers that do not hold this zone"
    )


def _assert_authoritative(snapshot: Snapshot, target: Target, name_server: str, evidence: Evidence) -> None:
    domain = _domain(target)
    address = snapshot.dns.server(name_server)["address"]
    answer = snapshot.dns.answer(name_server, domain, "SOA")
    evidence.dns_answer(snapshot.document, name_server, domain, "SOA", "rcode", "aa", "answers")
    evidence.fix(f"remove {name_server} from the NS records of {domain} at the registrar, or set them to `az network "
                 f"dns zone show -g {target.dns_resource_group} -n {domain} --query nameServers`")
    problems = []
    if answer["rcode"] != "NOERROR":
        problems.append(f"answers {answer['rcode']}")
    if not answer["aa"]:
        problems.append("answers without the AA bit (not authoritative)")
    if answer["rcode"] == "NOERROR" and not answer["answers"]:
        problems.append("returns no SOA record")
    assert not problems, (
        f"lame delegation: name server {name_server} ({address}) is listed for zone {domain} but "
        f"{' and '.join(problems)} for its SOA: resolvers that pick it get no answer or another zone's data; "
        "the zone's name servers must be the ones Azure assigned to this zone (a zone deleted and re-created gets new ones)"
    )


def _assert_serials_agree(snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    domain = _domain(target)
    zone = snapshot.azure.dns_zone()
    assert zone is not None
    serials: dict[str, int] = {}
    for name_server in _name_servers(zone):
        answer = snapshot.dns.answer(name_server, domain, "SOA")  # no answer at all: cannot compare (error)
        evidence.dns_answer(snapshot.document, name_server, domain, "SOA", "aa", "serial")
        if answer["aa"] and answer.get("serial") is not None:
            serials[_norm(name_server)] = int(answer["serial"])  # lame servers are reported on their own subject
    if not serials:
        pytest.skip("no name server answered the zone's SOA authoritatively (see the nameserver subjects)")
    by_serial: dict[int, list[str]] = {}
    for name_server, serial in serials.items():
        by_serial.setdefault(serial, []).append(name_server)
    listing = "; ".join(f"serial {serial} on {', '.join(names)}" for serial, names in sorted(by_serial.items()))
    behind = [name for serial, names in sorted(by_serial.items())[:-1] for name in names]
    evidence.fix(f"compare the parent's NS records for {domain} with `az network dns zone show -g "
                 f"{target.dns_resource_group} -n {domain} --query nameServers`; {', '.join(behind)} serve an older copy")
    assert len(by_serial) == 1, (
        f"the SOA serials of zone {domain} differ across its name servers ({listing}): the servers with the lower "
        "serial serve an older copy of the zone; Azure DNS converges within minutes, so a lasting difference means "
        "the delegation names servers of another (stale) copy of the zone"
    )


# -- DNS-002 ------------------------------------------------------------------------------------

def demo_record(snapshot: Snapshot, target: Target) -> dict[str, str]:
    _zone_or_not_applicable(snapshot, target)
    return {f"record/{_norm(target.demo_fqdn)}": target.demo_fqdn}


@check(
    "DNS-002", "the demo host's A record in Azure DNS equals the ingress load balancer IP", "high",
    remediation="Let external-dns (re)publish the host: check `kubectl -n kube-addons logs deploy/external-dns` "
                "(zone access, domain filter, ownership record: DNS-004) and that ingress-nginx runs with "
                "--publish-service so the Ingress status carries the load balancer IP.",
    subjects=demo_record,
    modes=LIVE_MODES,
    reads=("azure:recordSets", "kube:Service", "kube:Ingress", "azure:dnsZone"),
    link="record → ingress IP",
    groups=("azure:recordSets",),
)
def test_a_record_matches_load_balancer(subject: str, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    fqdn, domain, namespace = subject, _domain(target), target.addon_namespace
    services = ingress_services(snapshot, target)
    for service in services:
        evidence.kube(service, "spec.type", "status.loadBalancer.ingress")
    evidence.fix(f"install ingress-nginx in {namespace} with controller.service.type=LoadBalancer")
    assert services, (
        f"no LoadBalancer Service of ingress-nginx in namespace {namespace} (named {INGRESS_SERVICE} or labelled "
        f"app.kubernetes.io/name=ingress-nginx): {fqdn} has no ingress address to point at; install ingress-nginx with "
        "controller.service.type=LoadBalancer"
    )
    load_balancer = sorted({ip for service in services for ip in _load_balancer_addresses(service)})
    service_names = ", ".join(_ref(service) for service in services)
    assert load_balancer, (
        f"Service {service_names} has no load balancer address yet (status.loadBalancer.ingress is empty): {fqdn} "
        f"cannot point at it; `kubectl -n {namespace} describe service` shows the cloud provider's events"
    )
    evidence.fix(f"kubectl -n {namespace} describe service {' '.join(s['metadata']['name'] for s in services)}")
    record_set, addresses = _a_record(snapshot, target)
    if record_set is not None:
        evidence.arm("recordSets", record_set, _property(record_set, "arecords"))
    else:
        evidence.arm_count("recordSets", snapshot.azure.record_sets(), note=f"no A record {target.demo_host}")
    for ingress in demo_ingresses(snapshot, target):
        evidence.kube(ingress, "status.loadBalancer.ingress")
    evidence.fix(f"kubectl -n {namespace} logs deploy/external-dns (it publishes {fqdn} -> {_listing(load_balancer)}); "
                 f"check its zone access (RBAC-001) and ownership record (DNS-004)")
    ingresses = {_ref(ingress): _load_balancer_addresses(ingress) for ingress in demo_ingresses(snapshot, target)}
    _inside_sandbox(target, {
        f"load balancer of Service {service_names}": load_balancer,
        f"A record {fqdn} in Azure DNS": addresses or [],
        **{f"status of Ingress {name}": ips for name, ips in ingresses.items()},
    })
    assert record_set is not None, (
        f"Azure DNS zone {domain} has no A record for {fqdn} (record set '{target.demo_host}'), while the ingress load "
        f"balancer (Service {service_names}) is {_listing(load_balancer)}: the host does not resolve; external-dns has not "
        f"published it - check `kubectl -n {namespace} logs deploy/external-dns` and its zone access (RBAC-001)"
    )
    if addresses is None:
        alias = (_properties(record_set).get("targetresource") or {}).get("id")
        raise EvidenceUnavailable(f"A record {fqdn} in Azure DNS is an alias to {alias}: its addresses are not in the zone data")
    assert addresses == load_balancer, (
        f"A record {fqdn} in Azure DNS holds {_listing(addresses)}, but the ingress load balancer (Service {service_names}) "
        f"is {_listing(load_balancer)}: browsers are sent to an address the ingress does not have; external-dns corrects "
        f"this within its --interval unless it cannot write the zone (RBAC-001) or does not own the record (DNS-004) - "
        f"check `kubectl -n {namespace} logs deploy/external-dns`"
    )
    stale = {name: ips for name, ips in ingresses.items() if ips and ips != load_balancer}
    evidence.fix(f"run ingress-nginx with --publish-service={namespace}/{INGRESS_SERVICE} so Ingress "
                 f"{', '.join(stale)} carries {_listing(load_balancer)}")
    assert not stale, (
        "; ".join(f"Ingress {name} for {fqdn} carries status address {_listing(ips)}" for name, ips in stale.items())
        + f", not the load balancer's {_listing(load_balancer)}: external-dns publishes the Ingress status, so the record "
        f"will follow it; run ingress-nginx with --publish-service={namespace}/{INGRESS_SERVICE}"
    )


# -- DNS-003 ------------------------------------------------------------------------------------

def zone_name_servers(snapshot: Snapshot, target: Target) -> dict[str, str]:
    zone = _zone_or_not_applicable(snapshot, target)
    servers = _name_servers(zone)
    if not servers:
        raise NotApplicable(f"Azure lists no name servers for zone {_domain(target)} (see DNS-001)")
    return {f"nameserver/{_norm(name)}": name for name in servers}


def _served(snapshot: Snapshot, name_server: str, fqdn: str) -> list[str] | None:
    try:
        return sorted(snapshot.dns.answer(name_server, fqdn, "A")["answers"])
    except EvidenceUnavailable:
        return None


@check(
    "DNS-003", "every authoritative server of the zone answers the demo host's A record with the Azure address", "high",
    remediation="All of the zone's name servers must serve what Azure holds (Azure DNS propagates a change to all of "
                "them within about a minute): a server that lags or differs is usually one the delegation names by "
                "mistake - compare the parent's NS records with `az network dns zone show --query nameServers`.",
    subjects=zone_name_servers,
    modes=LIVE_MODES,
    reads=("dns:servers", "azure:recordSets", "azure:dnsZone"),
    link="zone → record",
    groups=("dns:servers",),
)
def test_servers_answer_a_record(subject: str, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    name_server, fqdn, domain = subject, target.demo_fqdn, _domain(target)
    record_set, expected = _a_record(snapshot, target)
    if record_set is not None:
        evidence.arm("recordSets", record_set, _property(record_set, "arecords"))
    answer = snapshot.dns.answer(name_server, fqdn, "A")
    evidence.dns_answer(snapshot.document, name_server, fqdn, "A", "rcode", "aa", "answers")
    evidence.fix(f"compare the NS records of {domain} at the registrar with `az network dns zone show -g "
                 f"{target.dns_resource_group} -n {domain} --query nameServers`; remove {name_server} if it is not among them")
    address = snapshot.dns.server(name_server)["address"]
    served = sorted(answer["answers"])
    _inside_sandbox(target, {f"A record {fqdn} in Azure DNS": expected or [], f"answer of {name_server} for {fqdn}": served})
    assert answer["rcode"] in ("NOERROR", "NXDOMAIN"), (
        f"name server {name_server} ({address}) answered {answer['rcode']} for {fqdn} A: resolvers that pick it cannot "
        f"resolve the host; it does not serve zone {domain} (see DNS-001)"
    )
    assert answer["aa"], (
        f"name server {name_server} ({address}) answered {fqdn} A without the AA bit: it is not authoritative for zone "
        f"{domain} (lame, see DNS-001), so its answer cannot be trusted"
    )
    others = {
        _norm(other): _served(snapshot, other, fqdn)
        for other in snapshot.dns.servers() if _norm(other) != _norm(name_server)
    }
    context = "; ".join(f"{other} answers {_listing(ips)}" for other, ips in others.items() if ips is not None)
    if expected is None:  # an alias record: Azure resolves it, so the servers can only be compared with each other
        disagree = {other: ips for other, ips in others.items() if ips is not None and ips != served}
        assert served and not disagree, (
            f"name server {name_server} ({address}) answers {fqdn} A with {_listing(served)}, the other servers do not "
            f"agree ({context}): resolvers get different addresses depending on the server they ask"
        )
        return
    what = _listing(served) if served else f"no address ({answer['rcode']})"
    assert served == expected, (
        f"name server {name_server} ({address}) answers {fqdn} A with {what}, but Azure DNS holds "
        f"{_listing(expected) if expected else 'no A record'}{f' ({context})' if context else ''}: resolvers that ask this "
        "server get a different answer than the zone data"
    )


# -- DNS-004 ------------------------------------------------------------------------------------
#
# external-dns' own registry options decide what its ownership record looks like (aksid/external_dns.py): only
# `--registry=txt` keeps one; `--txt-prefix` / `--txt-suffix` rename it; `--txt-encrypt-enabled` seals its value,
# which the collector decrypted with the AES key when it could read it (the snapshot's `decrypted` section).

DECRYPTED = "externalDnsOwnership"


def external_dns_deployments(snapshot: Snapshot, target: Target) -> list[dict[str, Any]]:
    """external-dns wherever it runs; those that publish the demo host (public Azure DNS, a domain filter that
    matches it) when some do, else all of them (a filter that leaves the host out is then named in the finding)."""
    found = [d for d in snapshot.kube.deployments() if is_external_dns(d)]
    publishing = [d for d in found if _publishes(registry_of(d), target)]
    return publishing or found


def _publishes(registry: Registry, target: Target) -> bool:
    return registry.provider in ("", "azure") and domain_matches(registry.domain_filters, target.demo_fqdn)


def external_dns_record(snapshot: Snapshot, target: Target) -> dict[str, str]:
    _zone_or_not_applicable(snapshot, target)
    if not external_dns_deployments(snapshot, target):
        raise NotApplicable("no external-dns Deployment in the cluster (by name, image or --provider=azure): no "
                            "ownership record is expected (DNS-002 still checks the A record)")
    return {f"record/{_norm(target.demo_fqdn)}": target.demo_fqdn}


def _decrypted(snapshot: Snapshot) -> dict[str, Any] | None:
    entry = (snapshot.document.get("decrypted") or {}).get(DECRYPTED)
    return entry.get("value") if isinstance(entry, dict) and entry.get("status") == "ok" else None


@check(
    "DNS-004", "the external-dns ownership TXT record exists with the expected owner id", "medium",
    remediation="external-dns only updates records whose TXT ownership record carries its --txt-owner-id: give each "
                "cluster sharing a zone its own owner id, and hand a record over by deleting the A and TXT records "
                "(external-dns recreates both) or by rewriting the owner in the TXT value.",
    subjects=external_dns_record,
    modes=LIVE_MODES,
    reads=("azure:recordSets", "kube:Deployment", "azure:dnsZone"),
    link="zone → record",
)
def test_ownership_record(subject: str, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    fqdn, domain = subject, _domain(target)
    deployments = external_dns_deployments(snapshot, target)
    for deployment in deployments:
        for index, container in enumerate(deployment["spec"]["template"]["spec"].get("containers") or []):
            evidence.kube(deployment, f"spec.template.spec.containers[{index}].args",
                          *([f"spec.template.spec.containers[{index}].env"] if container.get("env") else []))
    registries = [registry_of(d) for d in deployments]
    others = [r for r in registries if r.registry != TXT_REGISTRY]
    registries = [r for r in registries if r.registry == TXT_REGISTRY]
    if not registries:
        pytest.skip("; ".join(f"external-dns {r.ref} runs with --registry={r.registry}" for r in others)
                    + ": it keeps no TXT ownership records (ownership lives in its registry, or nowhere with noop), "
                    "so there is none to judge")
    owners = sorted({r.owner for r in registries})
    runs = ", ".join(f"{r.ref} with {r.affixes()}" for r in registries)
    filtered = [r for r in registries if not _publishes(r, target)]
    names = sorted({relative(name, domain) for r in registries for name in ownership_names(fqdn, r)})
    decrypted = _decrypted(snapshot)
    encrypted = [r for r in registries if r.encrypted]
    found: list[tuple[str, dict[str, str]]] = []
    unreadable: dict[str, str] = {}  # record name -> why its encrypted value could not be read
    undecryptable: list[str] = []  # records the configured key does not open: external-dns cannot read them either
    unrecognised: list[str] = []  # values that are not ownership text, with no encryption configured
    for name in names:
        record_set = _record_set(snapshot, target, "TXT", name)
        if record_set is None:
            continue
        evidence.arm("recordSets", record_set, _property(record_set, "txtrecords"))
        for index, value in enumerate(txt_values(record_set)):
            fields = ownership_fields(value)
            if fields is not None:
                found.append((f"{name}.{domain}", fields))
                continue
            if not encrypted:
                unrecognised.append(f"{name}.{domain}")
                continue
            opened = _open(decrypted, record_set, index, encrypted, evidence)
            if isinstance(opened, dict):
                found.append((f"{name}.{domain} (decrypted)", opened))
            elif opened == "undecryptable":
                undecryptable.append(f"{name}.{domain}")
            else:
                unreadable[f"{name}.{domain}"] = opened
    a_records = [r for r in snapshot.azure.record_sets() if str(r.get("id", "")).endswith(f"/A/{target.demo_host}")]
    evidence.fix(f"az network dns record-set a delete -g {target.dns_resource_group} -z {domain} -n {target.demo_host} "
                 f"(external-dns recreates it with its TXT ownership record, owner {', '.join(owners)})"
                 + (f"; ids {' '.join(str(r.get('id')) for r in a_records)}" if a_records else ""))
    if not found and unreadable:
        pytest.skip(f"the ownership TXT records {', '.join(unreadable)} are encrypted (--txt-encrypt-enabled) and "
                    f"cannot be read here: {'; '.join(sorted(set(unreadable.values())))}; the owner is not judged")
    if not found:
        evidence.arm_count("recordSets", snapshot.azure.record_sets(), note=f"no TXT {', '.join(names)}")
    hint = ""
    if undecryptable:
        hint = (f"; TXT {', '.join(undecryptable)} does not decrypt with the AES key external-dns is given (written with "
                "another key: another external-dns sharing the zone, or a key rotated since), so external-dns reads "
                "it as no ownership record at all")
    elif unrecognised:
        hint = (f"; TXT {', '.join(unrecognised)} holds a value that is not external-dns ownership text (encrypted by an "
                "external-dns with --txt-encrypt-enabled? this one runs without it)")
    if filtered:
        hint += "; " + ", ".join(f"{r.ref} (--domain-filter={','.join(r.domain_filters) or '-'}, --provider="
                                 f"{r.provider or '-'})" for r in filtered) + f" does not publish {fqdn} at all"
    assert found, (
        f"no external-dns ownership TXT record for {fqdn} in zone {domain} (looked for TXT {', '.join(names)}): external-dns "
        f"(running as {runs}) does not own the host, so it will neither update nor delete its A record{hint}"
    )
    foreign = [(name, fields.get("external-dns/owner")) for name, fields in found
               if fields.get("external-dns/owner") not in owners]
    evidence.fix("; ".join(f"az network dns record-set txt delete -g {target.dns_resource_group} -z {domain} -n "
                           f"{name.split(' ')[0].removesuffix('.' + domain)}" for name, _ in foreign)
                 + f" and the A record {target.demo_host}, so this cluster's external-dns ({', '.join(owners)}) "
                 "recreates both - only if the other owner no longer needs them")
    assert not foreign, (
        "; ".join(f"the ownership TXT record {name} says external-dns/owner={owner}" for name, owner in foreign)
        + f", but this cluster's external-dns runs as {runs}: another external-dns instance (another cluster sharing "
        f"the zone?) owns {fqdn}, and this cluster's will not update it"
    )


def _open(decrypted: dict[str, Any] | None, record_set: dict[str, Any], index: int, encrypted: list[Registry],
          evidence: Evidence) -> dict[str, str] | str:
    """The ownership fields of an encrypted value as the collector decrypted it; else "undecryptable" (the key
    external-dns is given does not open it) or why it could not be read (no key in hand)."""
    if decrypted is None:
        return ("this snapshot holds no decryption of them (it was taken by an aksid that did not decrypt "
                "external-dns' records, or in a mode that reads no cluster)")
    reasons = []
    tried = False
    for registry in encrypted:
        key = (decrypted.get("keys") or {}).get(registry.ref)
        if key is None:
            reasons.append(f"the collector saw no AES key setting of {registry.ref}")
            continue
        evidence.decrypted(DECRYPTED, decrypted, path_text("keys", registry.ref, "readable"))
        if not key.get("readable"):
            reasons.append(f"external-dns {registry.ref} takes its AES key from {key.get('key')}, and {key.get('reason')}")
            continue
        for position, record in enumerate(decrypted.get("records") or []):
            if record.get("deployment") != registry.ref or str(record.get("id", "")).lower() != str(
                    record_set.get("id", "")).lower():
                continue
            values = record.get("decrypted") or []
            plain = values[index] if index < len(values) else None
            evidence.decrypted(DECRYPTED, decrypted, f"records[{position}].decrypted[{index}]")
            tried = True
            fields = ownership_fields(plain) if plain is not None else None
            if fields is not None:
                return fields
    if tried or not reasons:
        return "undecryptable"
    return "; ".join(reasons)
