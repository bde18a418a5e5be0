"""The facts of one snapshot that `aksid diff` compares: each keyed by what it is about, valued by what matters.

A fact's key names its subject the same way on every night (no uid, no resourceVersion, no pod hash suffix,
no port of the sandbox's servers); its value holds only what a change of would matter (no timestamps, serials
or etags). Two snapshots differ where the same key has another value, or exists on one side only.
Rules (README, "What changed since last night"):
- a certificate is its issuer's name, its names (SANs) and its key type, and whether it was valid when
  collected: a renewal by the same issuer for the same names changes only serial and dates, so nothing;
  the sandbox's pebble CAs carry a random suffix per start (`Pebble Root CA 38c650`), which is dropped;
- pods are grouped by their workload (ReplicaSet hash and pod suffix dropped) and only their binding marks
  (aadpodidbinding, azure.workload.identity/use, hostNetwork) are compared;
- the SOA serial is judged only against the other servers of the same night (behind or current).

Each fact is shown under a check: the one that reads its unit of evidence, as the checks declare it (`_under`:
aksid.catalogue.grouped_under); a handful of facts go to a check chosen by what they mean rather than by their
unit (the kubelet's role assignment is RBAC-003's), each written where it is made with the reason.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aksid import catalogue, facts
from aksid.arm_ids import BUILTIN_NAMES, DNS_ZONE_CONTRIBUTOR, role_guid
from aksid.facts import workload_of
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot, labels_match
from aksid.units import unit_of

# Keys whose values change on every write or every night without meaning anything.
_NOISE_KEYS = {
    "resourceVersion", "uid", "creationTimestamp", "generation", "observedGeneration", "managedFields", "selfLink",
    "containerID", "imageID", "etag", "createdOn", "updatedOn", "createdBy", "updatedBy", "notAfter", "notBefore",
    "renewalTime", "revision", "restartCount", "podIP", "podIPs", "startTime", "uri", "lastRegisteredEmail",
    "numberOfRecordSets", "ownerReferences", "generateName", "pod-template-hash", "controller-revision-hash",
    "pod-template-generation", "deployment.kubernetes.io/revision", "cert-manager.io/certificate-revision",
    "cert-manager.io/private-key-secret-name", "kubectl.kubernetes.io/last-applied-configuration",
}
_NOISE_SUFFIXES = ("Time", "Timestamp", "At", "HeartbeatTime")
# Kinds compared by their own rules (pods, identities), or that are a controller's working state (orders).
_SPECIAL_KINDS = {"Pod", "ReplicaSet", "Secret", "Event", "CertificateRequest", "Order", "Challenge", "AzureIdentity",
                  "AzureIdentityBinding", "AzurePodIdentityException", "AzureAssignedIdentity", "ServiceAccount"}
# Facts shown under a check chosen by what they mean, not by their unit of evidence (every other fact is shown
# under its unit's check, `_under`); the tables _WORKLOAD_CHECKS, _PARTS, _CLUSTER_PARTS and _RECORD_CHECKS below do
# the same for workloads by name, fields and record types.
_MEANT = {
    # whose a role assignment is (azure:roleAssignments): the node pool's (the kubelet, the `-agentpool` identity),
    # which every pod can take, must not write the zone; the control plane's is the add-on's Managed Identity
    # Operator; DNS Zone Contributor at a zone is the right RBAC-001 wants of the DNS identity, not an extra one
    "node pool's role": "RBAC-003", "control plane's role": "RBAC-005", "the zone's role": "RBAC-001",
    # which mark a workload's pods carry (kube:Pod): a binding selector at home (the allowed workloads), elsewhere,
    # the workload identity label, hostNetwork or an exception's exemption (NMI bypassed)
    "selector at home": "BIND-002", "selector elsewhere": "BIND-003", "workload identity label": "WI-004",
    "bypass": "BIND-004",
    # NMI's pods, ready per node (kube:Pod)
    "NMI ready": "NMI-002",
    # the add-on's own exception, kube-system/aks-addon-exception (kube:AzurePodIdentityException)
    "add-on exception": "NMI-003",
    # a solver holding a client secret (kube:ClusterIssuer, kube:Issuer): the secret is the finding
    "client secret": "RBAC-004",
    # a name server's answer to the ownership record's question (dns:servers); its SOA serial behind the others', a
    # stale copy of the zone the delegation names (dns:servers)
    "ownership answer": "DNS-004", "SOA serial": "DNS-001",
    # of the served leaf (tls:handshake): its issuer is the trust, its names, key and dates the host and validity, its
    # intermediates and whether it is the issued one what cert-manager issued and the server sends
    "served issuer": "TLS-001", "served leaf": "TLS-002", "served as issued": "TLS-003",
}
# Units whose changes are shown with another unit's: no check judges a namespaced Issuer as a whole (ISS-003 and
# RBAC-004 judge its solvers, placed by _PARTS), so it stays beside the ClusterIssuers.
_SHOWN_WITH = {"kube:Issuer": "kube:ClusterIssuer"}
# Workloads a check is about by their name, not by their kind (the kind's check is the unit's): (kind, name pattern,
# check for the object or None for the unit's, check for its existence). The nmi DaemonSet's existence is NMI-001's
# finding; MIC running is NMI-004's (standard mode); the webhook's Deployment is WI-002's; external-dns' and
# cert-manager's args are where RBAC-004 finds a client secret, and they exist for BIND-002 to bind.
_WORKLOAD_CHECKS = (("DaemonSet", re.compile(r"(^|-)nmi$"), None, "NMI-001"),
                    ("Deployment", re.compile(r"(^|-)mic$"), "NMI-004", "NMI-004"),
                    ("Deployment", re.compile(r"wi-webhook|workload-identity"), "WI-002", "WI-002"),
                    ("Deployment", re.compile(r"^(external-dns|cert-manager)$"), "RBAC-004", "BIND-002"))
_PEBBLE_SUFFIX = re.compile(r"(Pebble (?:Root|Intermediate) CA) [0-9a-f]{6}\b")
_POD_SUFFIX = re.compile(r"-[a-z0-9]{5}$")
_BINDING_LABELS = ("aadpodidbinding", "azure.workload.identity/use")
_WI_CLIENT_ID = "azure.workload.identity/client-id"


@dataclass(frozen=True)
class Fact:
    check: str  # the check this fact bears on (the group it is shown under)
    category: str  # what kind of thing: "role assignment", "record", "served certificate", ...
    subject: str  # which one, in words
    value: Any  # what matters of it (JSON-able)
    under: str | None = None  # the key of a fact this one depends on: when that one changed, this one is not news


def _under(unit: str) -> str:
    """The check a change of `unit` (`kube:DaemonSet`, `azure:recordSets`) is shown under: the one check that reads
    it, or of several the one that names it in `groups` (aksid.catalogue.grouped_under); "other" when none does."""
    return catalogue.grouped_under(_SHOWN_WITH.get(unit, unit))


@functools.cache
def also_bears_on() -> dict[str, tuple[str, ...]]:
    """check → the checks that also bear on a change shown under it: those the diff shows nothing under (no unit is
    grouped under them and no fact means them: the allowed path BIND-005/WI-006, WI-005, the probes follow evidence
    other checks are shown with) that read a unit the check reads (or shows with it, _SHOWN_WITH)."""
    entries = catalogue.builtin()
    shown = set(catalogue.grouping().values()) | _meant_checks()
    followers = [entry for entry in entries if entry.id not in shown]
    found = {}
    for entry in (e for e in entries if e.id in shown):
        units = set(entry.reads) | {unit for unit, beside in _SHOWN_WITH.items() if beside in entry.reads}
        also = tuple(f.id for f in followers if f.id != entry.id and units & set(f.reads))
        if also:
            found[entry.id] = also
    return found


def _meant_checks() -> set[str]:
    """Every check a fact is shown under for what it means (_MEANT and the tables of workloads, fields, record types)."""
    found = set(_MEANT.values()) | set(_RECORD_CHECKS.values())
    found |= {check for _, _, own, exists in _WORKLOAD_CHECKS for check in (own, exists) if check}
    found |= {check for parts in _PARTS.values() for _, check in parts}
    return found | {check for _, _, check in _CLUSTER_PARTS}


def snapshot_facts(document: Mapping[str, Any]) -> dict[str, Fact]:
    """Every fact of one snapshot, by key."""
    clean = _without_sandbox_endpoints(document)
    facts: dict[str, Fact] = {}
    for producer in (_role_assignments, _access_assignments, _azure_records, _zone_servers, _delegation, _served_certificates,
                     _cluster_certificates, _pod_bindings, _pod_readiness, _service_accounts, _identity_objects,
                     _federated_credentials, _kube_objects, _arm_resources, _tls_behaviour):
        for key, fact in producer(clean):
            facts[key] = fact
    return facts


def _without_sandbox_endpoints(document: Mapping[str, Any]) -> dict[str, Any]:
    """The ACME servers' origins (the sandbox's pebbles listen on fresh ports each start) spelled as the setting's name,
    and the names of the CAs that issued through each (`_ca_roles`)."""
    text = json.dumps(document)
    for field in ("acme_prod_server", "acme_staging_server"):
        url = (document.get("target") or {}).get(field)
        match = re.match(r"https?://[^/]+", url) if isinstance(url, str) else None
        if match:
            text = text.replace(json.dumps(match.group(0))[1:-1], f"<{field}>")
    clean = json.loads(text)
    clean["_ca_roles"] = _ca_roles(clean)
    return clean


def _ca_roles(document: Mapping[str, Any]) -> dict[str, str]:
    """Issuer name → `Pebble Intermediate CA (<acme_staging_server>)`: the sandbox's pebbles name their CAs with a
    random suffix per start, prod and staging alike; the ACME Order that got a chain says which server made it."""
    roles: dict[str, str] = {}
    for _, order in _items(document, "Order"):
        status = order.get("status") or {}
        server = re.search(r"<acme_\w+_server>", json.dumps(status.get("authorizations") or status.get("url") or ""))
        if not server or not status.get("certificate"):
            continue
        try:
            chain = _certificates(base64.b64decode(status["certificate"]).decode())
        except (ValueError, UnicodeDecodeError):
            continue
        for cert in chain:
            for name in (cert.issuer.rfc4514_string(), cert.subject.rfc4514_string()):
                if _PEBBLE_SUFFIX.search(name):
                    roles[name] = _PEBBLE_SUFFIX.sub(r"\1", name) + f" ({server.group(0)})"
    return roles


def _ca_name(document: Mapping[str, Any], name: str) -> str:
    return (document.get("_ca_roles") or {}).get(name) or normalise(name)


def _ok(section: Mapping[str, Any] | None, key: str) -> Any:
    entry = (section or {}).get(key) or {}
    return entry.get("value") if entry.get("status") == "ok" else None


def normalise(value: Any) -> Any:
    """`value` without the keys that change on every write (timestamps, versions, ids, hashes)."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in sorted(value.items())
                if k not in _NOISE_KEYS and not (k.endswith(_NOISE_SUFFIXES) and k[:1].islower())}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        return _PEBBLE_SUFFIX.sub(r"\1", value)
    return value


# --- Azure --------------------------------------------------------------------------------------------------


def _principals(document: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """principal (aksid.facts.principal_of's spelling) → (name, check) for the identities the checks know: whose an
    assignment is chooses the check (_MEANT); any other identity's is the unit's."""
    azure = document.get("azure") or {}
    known: dict[str, tuple[str, str]] = {}
    for identity in _ok(azure, "identities") or []:
        principal = (identity.get("properties") or {}).get("principalId")
        if principal:
            pool = identity.get("name", "").endswith("-agentpool")
            check = _MEANT["node pool's role"] if pool else _under("azure:roleAssignments")
            known[facts.principal_of(identity)] = (identity.get("name", principal), check)
    cluster = _ok(azure, "managedCluster") or {}
    kubelet = ((cluster.get("properties") or {}).get("identityProfile") or {}).get("kubeletidentity") or {}
    if kubelet.get("objectId"):
        known[_principal(kubelet["objectId"])] = ("the kubelet identity", _MEANT["node pool's role"])
    control = (cluster.get("identity") or {}).get("principalId")
    if control:
        known[_principal(control)] = ("the control plane", _MEANT["control plane's role"])
    return known


def _principal(object_id: str) -> str:
    return facts.principal_of({"properties": {"principalId": object_id}})


def _role_assignments(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    azure = document.get("azure") or {}
    names = dict(BUILTIN_NAMES)
    for definition in _ok(azure, "roleDefinitions") or []:
        names[definition.get("name", "")] = (definition.get("properties") or {}).get("roleName", "")
    principals = _principals(document)
    unit = _under("azure:roleAssignments")
    for assignment in _ok(azure, "roleAssignments") or []:
        props = assignment.get("properties") or {}
        guid = role_guid(props.get("roleDefinitionId", ""))
        principal = props.get("principalId", "?")
        who, check = principals.get(facts.principal_of(assignment), (f"principal {principal}", unit))
        scope = props.get("scope", "?")
        if check == unit and guid == DNS_ZONE_CONTRIBUTOR and "/dnszones/" in scope.lower():
            check = _MEANT["the zone's role"]
        key = f"role:{principal}|{guid}|{scope.lower()}"
        yield key, Fact(check, "role assignment", f"{names.get(guid) or guid} for {who} at {scope}", "assigned")


def _access_assignments(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    """Other principals' roles at the DNS identity, the zone or above (ACCESS-002); those the principals of interest
    hold are shown once, with their role assignments."""
    azure = document.get("azure") or {}
    names = dict(BUILTIN_NAMES)
    for definition in _ok(azure, "roleDefinitions") or []:
        names[definition.get("name", "")] = (definition.get("properties") or {}).get("roleName", "")
    known = {str(a.get("id", "")).lower() for a in _ok(azure, "roleAssignments") or []}
    unit = _under("azure:accessAssignments")
    for assignment in _ok(azure, "accessAssignments") or []:
        if str(assignment.get("id", "")).lower() in known:
            continue
        props = assignment.get("properties") or {}
        guid = role_guid(props.get("roleDefinitionId", ""))
        principal, scope = props.get("principalId", "?"), props.get("scope", "?")
        yield (f"role:{principal}|{guid}|{scope.lower()}",
               Fact(unit, "role assignment", f"{names.get(guid) or guid} for {props.get('principalType') or 'principal'} "
                    f"{principal} at {scope}", "assigned"))


def _record_values(record: Mapping[str, Any]) -> list[str]:
    props = record.get("properties") or {}
    values: list[str] = []
    for field, value in props.items():
        if not field.endswith("Records") and field != "CNAMERecord":
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                values.append(" ".join(str(v) if not isinstance(v, list) else "".join(map(str, v))
                                       for v in item.values()))
    return sorted(values)


# Record sets whose type, not their unit, says which check they bear on: TXT holds external-dns' ownership record
# (DNS-004), NS the zone's own name servers (DNS-001's delegation); the rest are the unit's (DNS-002: the address).
_RECORD_CHECKS = {"TXT": "DNS-004", "NS": "DNS-001"}


def _azure_records(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    azure = document.get("azure") or {}
    for record in _ok(azure, "recordSets") or []:
        rtype = str(record.get("type", "")).rsplit("/", 1)[-1].upper()
        if rtype == "SOA":
            continue  # its serial moves with every change of the zone
        name = record.get("name", "?")
        yield (f"record:{rtype} {name.lower()}",
               Fact(_RECORD_CHECKS.get(rtype) or _under("azure:recordSets"), "Azure DNS record", f"{name} {rtype}",
                    _record_values(record)))
    zone = _ok(azure, "dnsZone") or {}
    servers = (zone.get("properties") or {}).get("nameServers")
    if servers:
        yield "zone:nameServers", Fact(_under("azure:dnsZone"), "Azure DNS zone", "name servers",
                                       sorted(s.lower() for s in servers))


def _zone_servers(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    servers = _ok(document.get("dns"), "servers") or {}
    serials: dict[str, int] = {}
    unit = _under("dns:servers")
    for server, entry in servers.items():
        if entry.get("status") != "ok":
            yield f"server:{server.lower()}", Fact(unit, "name server", server, "no answer")
            continue
        yield f"server:{server.lower()}", Fact(unit, "name server", server, "answers")
        for question, answer in ((entry.get("value") or {}).get("queries") or {}).items():
            value = answer.get("value")
            if question.upper().endswith(" SOA"):
                if value and value.get("serial") is not None:
                    serials[server] = int(value["serial"])
                continue
            check = _MEANT["ownership answer"] if question.upper().endswith(" TXT") else unit
            shown = "no answer" if value is None else [value.get("rcode"), sorted(value.get("answers") or [])]
            yield (f"answer:{server.lower()}|{question.lower()}",
                   Fact(check, "name server answer", f"{server} to {question}", shown))
    newest = max(serials.values(), default=0)
    for server, serial in serials.items():
        state = "current" if serial == newest else f"behind the other servers by {newest - serial}"
        yield f"soa:{server.lower()}", Fact(_MEANT["SOA serial"], "name server SOA serial", server, state)


def _delegation(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    parent = _ok(document.get("dns"), "parent")
    if not parent:
        return
    delegated: set[str] = set()
    for entry in (parent.get("servers") or {}).values():
        delegated.update(n.lower() for n in ((entry.get("value") or {}).get("ns") or []))
    yield "delegation", Fact(_under("dns:parent"), "parent delegation", str(parent.get("zone")), sorted(delegated))


# --- certificates -------------------------------------------------------------------------------------------


def _certificates(pem: str) -> list[Any]:
    from cryptography import x509

    try:
        return list(x509.load_pem_x509_certificates(pem.encode()))
    except ValueError:
        return []


def _key_type(cert: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC-{key.curve.name}"
    return type(key).__name__


def _names(cert: Any) -> list[str]:
    from cryptography import x509

    try:
        return sorted(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                      .get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return []


def _validity(cert: Any, created: str | None) -> str:
    try:
        when = datetime.fromisoformat(str(created))
    except ValueError:
        return "?"
    if when < cert.not_valid_before_utc:
        return "not yet valid"
    return "expired" if when > cert.not_valid_after_utc else "valid"


def _certificate_facts(prefix: str, label: str, cert: Any, document: Mapping[str, Any],
                       checks: tuple[str, str]) -> Iterator[tuple[str, Fact]]:
    created = document.get("created")
    issuer = _ca_name(document, cert.issuer.rfc4514_string())
    under = "tls-entry:handshake" if prefix.startswith("tls:") else None
    yield f"{prefix}|issuer", Fact(checks[0], label, "issuer", issuer, under)
    yield f"{prefix}|names", Fact(checks[1], label, "names", _names(cert), under)
    yield f"{prefix}|key", Fact(checks[1], label, "key type", _key_type(cert), under)
    yield f"{prefix}|validity", Fact(checks[1], label, "validity when collected", _validity(cert, created), under)


def _served_chain(document: Mapping[str, Any]) -> list[Any]:
    handshake = _ok(document.get("tls"), "handshake") or {}
    return [cert for pem in handshake.get("chain") or [] for cert in _certificates(pem)]


def _served_certificates(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    chain = _served_chain(document)
    if not chain:
        return
    yield from _certificate_facts("tls:leaf", "served certificate", chain[0], document,
                                  (_MEANT["served issuer"], _MEANT["served leaf"]))
    intermediates = [_ca_name(document, c.subject.rfc4514_string()) for c in chain[1:]]
    yield "tls:intermediates", Fact(_MEANT["served as issued"], "served certificate", "intermediates", intermediates,
                                    "tls-entry:handshake")


def _issued(document: Mapping[str, Any]) -> dict[str, Any]:
    """ns/name of each Certificate → the leaf cert-manager issued for it (aksid.facts: the same derivation TLS-003
    and the chain use; a certificate is no secret)."""
    try:
        snapshot = Snapshot(dict(document))
        certificates = snapshot.kube.list(facts.CERT_MANAGER, "Certificate")
    except (ValueError, EvidenceUnavailable, EvidenceNotCollected):
        return {}
    found = {}
    for certificate in certificates:
        meta = certificate.get("metadata") or {}
        try:
            leaf = facts.issued_leaf(snapshot, meta.get("namespace"), meta.get("name")).certificate
        except (EvidenceUnavailable, EvidenceNotCollected):
            continue
        if leaf is not None:
            found[f"{meta.get('namespace')}/{meta.get('name')}"] = leaf
    return found


def _cluster_certificates(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    issued = _issued(document)
    unit = _under("kube:Certificate")
    for owner, cert in sorted(issued.items()):
        yield from _certificate_facts(f"cert:{owner}", f"certificate {owner}", cert, document, (unit, unit))
    chain = _served_chain(document)
    if chain and issued:
        from cryptography.hazmat.primitives.serialization import Encoding

        served = chain[0].public_bytes(Encoding.DER)
        same = any(cert.public_bytes(Encoding.DER) == served for cert in issued.values())
        yield "tls:leaf|is-cluster's", Fact(_MEANT["served as issued"], "served certificate",
                                            "is the one cert-manager issued", same, "tls-entry:handshake")


# --- Kubernetes -------------------------------------------------------------------------------------------


def _items(document: Mapping[str, Any], kind_suffix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, entry in (document.get("kube") or {}).items():
        if key.rsplit("/", 1)[-1] == kind_suffix and entry.get("status") == "ok":
            for item in entry.get("value") or []:
                yield key, item


def _ref(item: Mapping[str, Any]) -> str:
    meta = item.get("metadata") or {}
    return f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))


def _pod_bindings(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    """Per workload, what binds its pods to an identity or exempts them from NMI."""
    exceptions = [((e.get("metadata") or {}).get("namespace"), _ref(e), (e.get("spec") or {}).get("podLabels") or {})
                  for _, e in _items(document, "AzurePodIdentityException")]
    marks: dict[str, set[str]] = {}
    for _, pod in _items(document, "Pod"):
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        found = {f"{label}={labels[label]}" for label in _BINDING_LABELS if label in labels}
        if (pod.get("spec") or {}).get("hostNetwork"):
            found.add("hostNetwork")
        found |= {f"exempted by {name}" for namespace, name, selector in exceptions
                  if namespace == meta.get("namespace") and selector and labels_match(labels, selector)}
        if found:
            marks.setdefault(workload_of(pod), set()).update(found)
    home = (document.get("target") or {}).get("addon_namespace") or "kube-addons"
    for workload, found in sorted(marks.items()):
        yield f"pods:{workload}", Fact(_binding_check(workload, found, home), "pods' binding marks",
                                       f"pods of {workload}", sorted(found))


def _pod_readiness(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    """DaemonSet pods: ready or not per node; other workloads: how many of their pods are ready."""
    counts: dict[str, list[int]] = {}
    for _, pod in _items(document, "Pod"):
        workload = workload_of(pod)
        conditions = (pod.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        check = _MEANT["NMI ready"] if re.search(r"(^|[-/])nmi$", workload) else "other"
        if workload.startswith("daemonset/"):
            node = (pod.get("spec") or {}).get("nodeName")
            yield f"ready:{workload}|{node}", Fact(check, "pod readiness", f"{workload} on {node}",
                                                   "ready" if ready else "not ready")
        else:
            tally = counts.setdefault(workload, [0, 0])
            tally[0] += ready
            tally[1] += 1
    for workload, (ready_pods, total) in counts.items():
        yield f"ready:{workload}", Fact("other", "pod readiness", workload, f"{ready_pods} of {total} ready")


def _binding_check(workload: str, marks: set[str], home: str) -> str:
    """Which mark a workload's pods carry says whose finding it is (_MEANT)."""
    if any(m.startswith("aadpodidbinding") for m in marks):
        return _MEANT["selector at home"] if workload.split("/")[1] == home else _MEANT["selector elsewhere"]
    return _MEANT["workload identity label"] if any(m.startswith("azure.workload") for m in marks) else _MEANT["bypass"]


def _service_accounts(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    for _, account in _items(document, "ServiceAccount"):
        client_id = ((account.get("metadata") or {}).get("annotations") or {}).get(_WI_CLIENT_ID)
        if client_id:
            yield (f"sa:{_ref(account)}", Fact(_under("kube:ServiceAccount"), "ServiceAccount annotation",
                                               f"{_ref(account)} {_WI_CLIENT_ID}", client_id))


def _identity_objects(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    for kind in ("AzureIdentity", "AzureIdentityBinding", "AzurePodIdentityException"):
        check = _under(f"kube:{kind}")
        for _, item in _items(document, kind):
            if kind == "AzurePodIdentityException" and _ref(item) == "kube-system/aks-addon-exception":
                check = _MEANT["add-on exception"]
            yield f"{kind}:{_ref(item)}", Fact(check, kind, _ref(item), normalise(item.get("spec") or {}))


def _federated_credentials(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    by_identity = _ok(document.get("azure"), "federatedCredentials") or {}
    for identity_id, credentials in by_identity.items():
        identity = identity_id.rsplit("/", 1)[-1]
        for credential in credentials or []:
            props = credential.get("properties") or {}
            value = {"issuer": props.get("issuer"), "subject": props.get("subject"),
                     "audiences": sorted(props.get("audiences") or [])}
            name = credential.get("name", "?")
            yield (f"fic:{identity}/{name.lower()}",
                   Fact(_under("azure:federatedCredentials"), "federated credential", f"{identity}/{name}", value))


def _kube_objects(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    for key, entry in (document.get("kube") or {}).items():
        kind = key.rsplit("/", 1)[-1]
        if kind in _SPECIAL_KINDS:
            continue
        check = _under(unit_of("kube", key))
        if entry.get("status") != "ok":
            yield f"kind:{key}", Fact(check, "kind", key, entry.get("status"))
            continue
        yield f"kind:{key}", Fact(check, "kind", key, "served")
        for item in entry.get("value") or []:
            shown = normalise({k: v for k, v in item.items() if k not in ("apiVersion", "kind")})
            shown["metadata"] = {k: v for k, v in (shown.get("metadata") or {}).items() if k in ("labels", "annotations")}
            if kind == "Certificate":
                shown.get("status", {}).pop("nextPrivateKeySecretName", None)
                yield f"obj:{key}|{_ref(item)}|times", Fact(check, kind, f"{_ref(item)} renewal",
                                                           _renewal_state(item, document.get("created")), f"kind:{key}")
            name = str((item.get("metadata") or {}).get("name"))
            own, exists = next(((c or check, e) for k, pattern, c, e in _WORKLOAD_CHECKS
                                if k == kind and pattern.search(name)), (check, None))
            under = f"kind:{key}"
            if exists:
                under = f"exists:{key}|{_ref(item)}"
                yield under, Fact(exists, kind, _ref(item), "exists", f"kind:{key}")
            for part, part_check, value in _split(kind, shown, own):
                yield (f"obj:{key}|{_ref(item)}{part}",
                       Fact(part_check, kind, _ref(item) + (f" {part[1:]}" if part else ""), value, under))


# Parts of an object that bear on another check than the object as a whole, by what the field means: (path, check).
# An issuer's ACME server is what ISS-002 compares, its solvers what ISS-003 judges (or RBAC-004, holding a client
# secret); an Ingress's annotations name its issuer (ISS-002).
_PARTS = {
    "ClusterIssuer": (("spec.acme.server", "ISS-002"), ("spec.acme.solvers", "ISS-003")),
    "Issuer": (("spec.acme.server", "ISS-002"), ("spec.acme.solvers", "ISS-003")),
    "Ingress": (("metadata.annotations", "ISS-002"),),
}


def _split(kind: str, shown: dict[str, Any], check: str) -> Iterator[tuple[str, str, Any]]:
    for path, part_check in _PARTS.get(kind, ()):
        *parents, last = path.split(".")
        holder: Any = shown
        for step in parents:
            holder = holder.get(step) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and last in holder:
            value = holder.pop(last)
            if path == "spec.acme.solvers" and "clientSecret" in json.dumps(value):
                part_check = _MEANT["client secret"]
            yield f" {path}", part_check, value
    yield "", check, shown


def _renewal_state(certificate: Mapping[str, Any], created: str | None) -> dict[str, str]:
    """Whether, when collected, the Certificate was past its renewal time or its end (not the times themselves)."""
    status = certificate.get("status") or {}
    state = {}
    for field, past in (("renewalTime", "renewal overdue"), ("notAfter", "expired")):
        try:
            late = datetime.fromisoformat(str(status[field]).replace("Z", "+00:00")) < datetime.fromisoformat(str(created))
        except (KeyError, ValueError):
            continue
        state[field] = past if late else "not yet"
    return state


def _arm_resources(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    azure = document.get("azure") or {}
    cluster = _ok(azure, "managedCluster")
    if cluster:
        shown = normalise(cluster)
        for part, check, value in _cluster_parts(shown):
            yield f"arm:managedCluster{part}", Fact(check, "managed cluster", str(cluster.get("name")) + part, value)
    zone = _ok(azure, "dnsZone")
    if zone:
        yield "arm:dnsZone", Fact(_under("azure:dnsZone"), "Azure DNS zone", str(zone.get("name")), normalise(zone))
    for identity in _ok(azure, "identities") or []:
        yield (f"arm:identity:{str(identity.get('name')).lower()}",
               Fact(_under("azure:identities"), "user-assigned identity", str(identity.get("name")), normalise(identity)))
    for scale_set in _ok(azure, "scaleSets") or []:  # what IMDS hands out on the pool's nodes (MIG-002)
        assigned = ((scale_set.get("identity") or {}).get("userAssignedIdentities") or {})
        yield (f"arm:scaleSet:{str(scale_set.get('name')).lower()}",
               Fact(_under("azure:scaleSets"), "scale set identities", str(scale_set.get("name")),
                    sorted(str(i).rsplit("/", 1)[-1].lower() for i in assigned)))
    for key in ("managedCluster", "dnsZone", "identities", "recordSets", "roleAssignments", "federatedCredentials",
                "scaleSets", "accessAssignments"):
        entry = azure.get(key) or {}
        if entry and entry.get("status") != "ok":
            yield f"arm-entry:{key}", Fact(_under(unit_of("azure", key)), "Azure evidence", key, entry.get("status"))


# Parts of the managed cluster each judged by another check than the cluster as a whole (NMI-004, the unit's), by
# what the field means: the add-on's pod identities (BIND-001), kubenet allowed (NMI-005), the add-on's exceptions
# (BIND-004), the OIDC issuer and workload identity (WI-001).
_CLUSTER_PARTS = (("podIdentityProfile", "userAssignedIdentities", "BIND-001"),
                  ("podIdentityProfile", "allowNetworkPluginKubenet", "NMI-005"),
                  ("podIdentityProfile", "userAssignedIdentityExceptions", "BIND-004"),
                  ("oidcIssuerProfile", None, "WI-001"), ("securityProfile", None, "WI-001"))


def _cluster_parts(cluster: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    props = cluster.get("properties") or {}
    for section, field, check in _CLUSTER_PARTS:
        holder = props.get(section)
        if isinstance(holder, dict) and field is not None and field in holder:
            yield f" {section}.{field}", check, holder.pop(field)
        elif field is None and section in props:
            yield f" {section}", check, props.pop(section)
    yield "", _under("azure:managedCluster"), cluster


def _tls_behaviour(document: Mapping[str, Any]) -> Iterator[tuple[str, Fact]]:
    tls = document.get("tls") or {}
    legacy = _ok(tls, "legacy")
    if legacy is not None:
        yield "tls:legacy", Fact(_under("tls:legacy"), "TLS", "TLS 1.0/1.1 accepted", legacy)
    http = _ok(tls, "http")
    if http is not None:
        yield "tls:http", Fact(_under("tls:http"), "TLS", "plain HTTP", [http.get("status"), http.get("location")])
    page = _ok(tls, "page")
    if page is not None:
        title = re.search(r"<title>(.*?)</title>", str(page.get("body") or ""), re.S)
        yield "tls:page", Fact(_under("tls:page"), "TLS", "HTTPS page",
                               [page.get("status"), title.group(1).strip() if title else None])
    handshake = _ok(tls, "handshake")
    if handshake is not None:
        yield "tls:protocol", Fact(_under("tls:handshake"), "TLS", "protocol", handshake.get("protocol"))
    for key, entry in tls.items():
        yield f"tls-entry:{key}", Fact(_under(unit_of("tls", key)), "TLS", key, "collected" if entry.get("status") == "ok"
                                       else f"{entry.get('status')}: {_without_ports(str(entry.get('reason')))}")


def _without_ports(text: str) -> str:
    return re.sub(r"(127(?:\.\d+){3}):\d+", r"\1", text)


def strip_pod_suffix(subject: str) -> str:
    """`pod/ns/app-6f9c8d7b45-2jspv` → `pod/ns/app-*`: results name a pod the same way across rollouts."""
    parts = subject.split("-")
    if len(parts) >= 3 and re.fullmatch(r"[a-z0-9]{8,10}", parts[-2]) and re.search(r"\d", parts[-2]) \
            and _POD_SUFFIX.search(subject):
        return "-".join(parts[:-2]) + "-*"
    return subject
