"""The evidence chain the tutorial builds, drawn at the top of report.html.

pod → binding → identity → role → zone → record → ingress IP → certificate → served chain → padlock: one node
per link of the chain, named and with its key fact as the run's snapshot holds it, and each arrow between two
nodes coloured by the checks that judge it (those whose `check` marker declares it in `link`, `link_checks`):
green when they all passed, red when one failed (the arrow names it and points at its row), amber when one could
not verify, violet when a failure is waived, grey when none judged it; a check is named on the first arrow it judges.
Another principal a red check finds reaching the chain (RBAC-003: the kubelet identity may write the zone) is drawn
beside it with its own arrow. In provision mode the canary's own chain is drawn beside it. Inline SVG, no script.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from cryptography import x509

from aksid import catalogue, facts, hostnames
from aksid.identity_models import POD_IDENTITY, WORKLOAD_IDENTITY, workload_models
from aksid.results import CheckResult, is_fleet
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot, labels_match
from aksid.trust import parse_chain, top_issuer
from aksid.units import BRANCH_ARROWS, CANARY_ARROWS, CANARY_NODES, MAIN_ARROWS, NODES


def link_checks() -> tuple[tuple[str, ...], ...]:
    """The checks that judge each arrow (NODES[i] → NODES[i + 1]), in catalogue order, as the checks declare them
    (`link=`): a check may judge two arrows (RBAC-001: the role, and that it is scoped to the zone); NMI and the
    probes judge whether a pod reaches its binding at all; a check that declares none is not drawn."""
    return catalogue.link_checks(MAIN_ARROWS)


def branch_link_checks() -> tuple[tuple[str, ...], ...]:
    """The checks that judge each branch's arrow (BRANCH_ARROWS: `kubelet identity → zone` is RBAC-003's)."""
    return catalogue.link_checks(BRANCH_ARROWS)


def canary_link_checks() -> tuple[tuple[str, ...], ...]:
    """The same for the canary's chain (its arrows declared `canary: <node> → <node>`)."""
    return catalogue.link_checks(CANARY_ARROWS)


COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#bf8700", "waived": "#8250df", "unjudged": "#8c959f"}
STATE_WORDS = {"passed": "passed", "failed": "failed", "error": "could not verify", "waived": "waived",
               "unjudged": "not judged"}
# Well-known built-in roles, for snapshots whose role definitions leave one out.
BUILTIN_ROLES = {"befefa01-2a29-4197-83a8-272ff33ce314": "DNS Zone Contributor",
                 "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor", "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
                 "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
                 "f1a07417-d97a-45cb-824c-7a7467783830": "Managed Identity Operator"}
CERT_MANAGER = "cert-manager.io/v1"


@dataclass(frozen=True)
class Node:
    kind: str
    name: str
    facts: tuple[str, ...] = ()
    collected: bool = True  # False: the snapshot has no evidence for it (drawn grey, dashed)


@dataclass(frozen=True)
class Link:
    checks: tuple[str, ...]
    state: str  # passed, failed, error, waived, unjudged
    results: tuple[CheckResult, ...] = ()

    @property
    def finding(self) -> CheckResult | None:
        """The result the arrow names: the first failure, else error, else waived failure."""
        for outcome in ("failed", "error", "waived"):
            found = next((r for r in self.results if r.outcome == outcome), None)
            if found is not None:
                return found
        return None

    @property
    def colour(self) -> str:
        return COLOURS[self.state]


@dataclass(frozen=True)
class Branch:
    """Another principal a red check found reaching a node of the chain (the kubelet identity that may write the
    zone): drawn beside the chain, level with the node it stands in for, its own arrow into the node it reaches."""
    node: Node
    beside: str  # the chain's node it is drawn level with (the kubelet identity beside the DNS identity)
    joins: str  # the chain's node its arrow reaches
    link: Link


@dataclass(frozen=True)
class Chain:
    title: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    branches: tuple[Branch, ...] = ()

    def link(self, source: str) -> Link:
        """The arrow leaving the node of that kind (`chain.link("identity")` is identity → role)."""
        return self.links[[n.kind for n in self.nodes].index(source)]


# -- which results judge an arrow ------------------------------------------------------------------

def judge(checks: tuple[str, ...], results: Iterable[CheckResult]) -> Link:
    mine = tuple(r for r in results if r.id in checks)
    outcomes = {r.outcome for r in mine}
    for outcome in ("failed", "error", "waived"):
        if outcome in outcomes:
            return Link(checks, outcome, mine)
    return Link(checks, "passed" if "passed" in outcomes else "unjudged", mine)


def row_anchor(result: CheckResult, where: str = "finding") -> str:
    """A stable, unique HTML id for a result's row (`finding-RBAC-002-1a2b3c4d`; `row-...` in the area tables)."""
    digest = hashlib.sha1(f"{result.target}|{result.nodeid}|{result.subject}".encode()).hexdigest()[:10]
    return f"{where}-{result.id}-{digest}"


# -- reading the snapshot --------------------------------------------------------------------------

class _Target:
    """The few settings the chain needs, from the snapshot's own record of its target."""

    def __init__(self, view: Mapping[str, Any], mode: object = None) -> None:
        self.static = mode == "static"  # a repository's files: no status, no DNS answers, no handshake
        self.domain = str(view.get("domain") or "").rstrip(".")
        self.demo_fqdn = f"{view.get('demo_host') or 'hello'}.{self.domain}"
        self.demo_host = str(view.get("demo_host") or "hello")
        self.identity_name = str(view.get("identity_name") or f"{self.domain.replace('.', '-')}-identity")
        self.namespace = str(view.get("addon_namespace") or "kube-addons")


def _guarded(kind: str, reader: Callable[[], Node], static: bool = False) -> Node:
    """A node, or a grey one saying why its evidence is not there."""
    try:
        return reader()
    except (EvidenceNotCollected, EvidenceUnavailable) as exc:
        # left out (static mode, an opt-in) or asked for and not obtained (a refused connection): both drawn grey
        missing = static or isinstance(exc, EvidenceNotCollected) or "not collected" in str(exc)
        return Node(kind, "not collected" if missing else "unavailable", (_sentence(str(exc)),), collected=False)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # a malformed snapshot still draws
        return Node(kind, "unreadable", (f"{type(exc).__name__}: {exc}",), collected=False)


def _sentence(text: str) -> str:
    return text.split(": run with", 1)[0]


def _identity(snapshot: Snapshot, t: _Target) -> dict[str, Any] | None:
    return snapshot.azure.identity_named(t.identity_name)


def _props(resource: Mapping[str, Any] | None) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in ((resource or {}).get("properties") or {}).items()}


def _workloads(snapshot: Snapshot, t: _Target) -> list[Any]:
    """The workloads bound to the DNS identity (cert-manager, external-dns), else every bound one of the add-ons."""
    models = workload_models(snapshot)
    try:
        identity = _identity(snapshot, t)
    except (EvidenceUnavailable, EvidenceNotCollected):
        identity = None
    client = str(_props(identity).get("clientid") or "").lower()
    mine = [w for w in models if any((b.identity or "").lower() == t.identity_name.lower()
                                     or (client and str(b.client_id or "").lower() == client) for b in w.bindings)]
    return mine or [w for w in models if w.namespace == t.namespace]


def _pod_node(snapshot: Snapshot, t: _Target) -> Node:
    workloads = _workloads(snapshot, t)
    if not workloads:
        return Node("pod", "no workload bound", (f"no Deployment in {t.namespace} reaches an identity",))
    namespaces = sorted({w.namespace for w in workloads})
    name = f"{', '.join(namespaces)}: {', '.join(sorted(w.name for w in workloads))}"
    pods = []
    for workload in workloads:
        found = facts.find_workload(snapshot, workload.kind, workload.namespace, workload.name)
        if found is not None:
            pods += facts.workload_pods(snapshot, found)
    running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
    models = " and ".join(sorted({m.replace("-", " ") for w in workloads for m in w.models}))
    if t.static:
        return Node("pod", name, (f"{models}; pod templates in the repository",))
    return Node("pod", name, (f"{models}; {running} of {len(pods)} pods Running" if pods else f"{models}; no pod listed",))


_VIA_BINDING = re.compile(r"^AzureIdentityBinding (?P<ref>\S+) \(selector (?P<selector>.+)\)$")


def _binding_node(snapshot: Snapshot, t: _Target) -> Node:
    workloads = _workloads(snapshot, t)
    bindings = [b for w in workloads for b in w.bindings]
    if not bindings:
        return Node("binding", "none", ("no AzureIdentityBinding selector or client-id annotation reaches the identity",))
    names, facts = [], []
    pod_identity = [m for b in bindings if b.model == POD_IDENTITY and (m := _VIA_BINDING.match(b.via))]
    if pod_identity:
        names.append("AzureIdentityBinding " + ", ".join(dict.fromkeys(m["ref"].split("/")[-1] for m in pod_identity)))
        facts.append("selector " + ", ".join(dict.fromkeys(m["selector"] for m in pod_identity)))
    if any(b.model == WORKLOAD_IDENTITY for b in bindings):
        accounts = sorted({f"{w.namespace}/{w.service_account}" for w in workloads
                           if any(b.model == WORKLOAD_IDENTITY for b in w.bindings)})
        names.append("ServiceAccount " + ", ".join(accounts))
        clients = sorted({str(b.client_id) for b in bindings if b.model == WORKLOAD_IDENTITY})
        facts.append("azure.workload.identity/client-id " + ", ".join(clients))
    return Node("binding", ", ".join(names) or "binding", tuple(facts))


def _identity_node(snapshot: Snapshot, t: _Target) -> Node:
    identity = _identity(snapshot, t)
    if identity is None:
        return Node("identity", t.identity_name, ("not in Azure",))
    props = _props(identity)
    return Node("identity", str(identity.get("name")), (f"client id {props.get('clientid')}",))


def _role_names(snapshot: Snapshot) -> dict[str, str]:
    names = dict(BUILTIN_ROLES)
    for definition in snapshot.azure.role_definitions():
        guid = str(definition.get("id") or definition.get("name") or "").rsplit("/", 1)[-1].lower()
        names[guid] = str(_props(definition).get("rolename") or names.get(guid) or guid)
    return names


def scope_text(scope: str) -> str:
    """`zone example.test`, `resource group rg-dns`, `subscription 5b3f…`, or the scope's last two segments."""
    parts = [p for p in scope.split("/") if p]
    lowered = [p.lower() for p in parts]
    if len(parts) >= 2 and lowered[-2] == "dnszones":
        return f"zone {parts[-1]}"
    if len(parts) >= 2 and lowered[-2] == "resourcegroups":
        return f"resource group {parts[-1]}"
    if len(parts) == 2 and lowered[0] == "subscriptions":
        return f"subscription {parts[1]}"
    return "/".join(parts[-2:]) or scope


def _assignments(snapshot: Snapshot, t: _Target) -> list[tuple[str, str]]:
    """(role name, scope) of every role assignment of the DNS identity (aksid.facts, as the RBAC checks read them)."""
    principal = str(_props(_identity(snapshot, t)).get("principalid") or "")
    names = _role_names(snapshot)
    found = []
    for assignment in facts.role_assignments(snapshot, principal):
        props = _props(assignment)
        guid = str(props.get("roledefinitionid") or "").rsplit("/", 1)[-1].lower()
        found.append((names.get(guid, guid), str(props.get("scope") or "")))
    return found


def _role_node(snapshot: Snapshot, t: _Target) -> Node:
    if _identity(snapshot, t) is None:
        return Node("role", "none", (f"no identity {t.identity_name} to hold a role",))
    found = _assignments(snapshot, t)
    if not found:
        return Node("role", "none", (f"{t.identity_name} holds no role",))
    found.sort(key=lambda a: (a[0] != "DNS Zone Contributor", a[0], a[1]))
    if len(found) == 1:
        return Node("role", found[0][0], (f"scope: {scope_text(found[0][1])}",))
    return Node("role", ", ".join(dict.fromkeys(name for name, _ in found)),
                tuple(f"{name} at {scope_text(scope)}" for name, scope in found[:3]))


def _zone_node(snapshot: Snapshot, t: _Target) -> Node:
    zone = snapshot.azure.dns_zone()
    if zone is None:
        return Node("zone", t.domain, ("not in Azure DNS",))
    servers = [str(s).rstrip(".") for s in _props(zone).get("nameservers") or []]
    facts = [f"name servers {', '.join(servers[:2])}" + (f" +{len(servers) - 2}" if len(servers) > 2 else "")
             if servers else "name servers not known (Azure assigns them)"]
    try:
        parent = snapshot.dns.parent()
        delegations = [set(str(n).rstrip(".").lower() for n in (e.get("value") or {}).get("ns") or [])
                       for e in (parent.get("servers") or {}).values()]
        agree = all(d == {s.lower() for s in servers} for d in delegations) and delegations
        facts.append(f"parent {parent.get('parent')} delegates " + ("to exactly these" if agree else "elsewhere"))
    except EvidenceUnavailable:
        facts.append("delegation not collected")
    return Node("zone", str(zone.get("name")), tuple(facts))


def _a_addresses(snapshot: Snapshot, t: _Target) -> list[str] | None:
    for record_set in snapshot.azure.record_sets():
        if str(record_set.get("type", "")).rsplit("/", 1)[-1].upper() == "A" and \
                str(record_set.get("name", "")).lower() == t.demo_host.lower():
            return sorted(str({str(k).lower(): v for k, v in item.items()}.get("ipv4address"))
                          for item in _props(record_set).get("arecords") or [])
    return None


def _record_node(snapshot: Snapshot, t: _Target) -> Node:
    try:
        addresses = _a_addresses(snapshot, t)
        azure = f"Azure DNS {', '.join(addresses) or 'no address'}" if addresses is not None else "not in Azure DNS"
    except EvidenceNotCollected:
        azure = "Azure DNS record sets not collected"
    try:
        servers = snapshot.dns.servers()
    except EvidenceUnavailable:
        return Node("record", f"{t.demo_fqdn} A", (azure, "name servers not asked (not collected)"))
    answers = []
    for name in servers:
        short = name.rstrip(".").split(".", 1)[0]
        try:
            got = snapshot.dns.answer(name, t.demo_fqdn, "A")
            answers.append(f"{short} {', '.join(got.get('answers') or []) or got.get('rcode')}")
        except EvidenceUnavailable:
            answers.append(f"{short} no answer")
    lines = [", ".join(answers[i:i + 2]) for i in range(0, len(answers), 2)]
    return Node("record", f"{t.demo_fqdn} A", (azure, *lines[:3]))


def _load_balancer(obj: Mapping[str, Any]) -> list[str]:
    entries = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return sorted({str(e.get("ip") or e.get("hostname")) for e in entries if e.get("ip") or e.get("hostname")})


def _ingress_node(snapshot: Snapshot, t: _Target) -> Node:
    services = [s for s in snapshot.kube.list("v1", "Service", t.namespace)
                if (s.get("spec") or {}).get("type") == "LoadBalancer"
                and (s["metadata"].get("name") == "ingress-nginx-controller"
                     or labels_match(s["metadata"].get("labels"), {"app.kubernetes.io/name": "ingress-nginx"}))]
    if not services:
        return Node("ingress IP", "no load balancer", (f"no ingress-nginx LoadBalancer Service in {t.namespace}",))
    service = services[0]
    addresses = _load_balancer(service)
    facts = [f"status.loadBalancer {', '.join(addresses) or 'empty (no address yet)'}"
             if not t.static else "address assigned at deploy: not collected in static mode"]
    for ingress in [] if t.static else _demo_ingresses(snapshot, t):
        facts.append(f"Ingress {ingress['metadata'].get('namespace')}/{ingress['metadata']['name']} "
                     f"→ {', '.join(_load_balancer(ingress)) or 'no address'}")
    return Node("ingress IP", f"Service {t.namespace}/{service['metadata']['name']}", tuple(facts[:2]))


def _demo_ingresses(snapshot: Snapshot, t: _Target) -> list[dict[str, Any]]:
    return hostnames.ingresses_for(snapshot.kube.list("networking.k8s.io/v1", "Ingress"), t.demo_fqdn)


def _issued(snapshot: Snapshot, namespace: str, name: str) -> x509.Certificate | None:
    """The leaf cert-manager issued (aksid.facts: the same derivation TLS-003 and the diff use)."""
    return facts.issued_leaf(snapshot, namespace, name).certificate


def _certificate_node(snapshot: Snapshot, t: _Target) -> Node:
    ingresses = _demo_ingresses(snapshot, t)
    covering = hostnames.tls_entry_for(ingresses, t.demo_fqdn)  # its hosts list the demo host, or a wildcard covers it
    found = ((covering[0]["metadata"].get("namespace"), covering[1]["secretName"]) if covering is not None else
             next(((i["metadata"].get("namespace"), tls["secretName"]) for i in ingresses
                   for tls in (i.get("spec") or {}).get("tls") or [] if tls.get("secretName")), None))
    if found is None:
        return Node("certificate", "none", (f"no Ingress has TLS for {t.demo_fqdn}",))
    namespace, name = found
    certificate = snapshot.kube.get(CERT_MANAGER, "Certificate", namespace, name)
    if certificate is None and t.static:
        return Node("certificate", f"Certificate {namespace}/{name}",
                    ("cert-manager creates it from the Ingress: not collected in static mode",), collected=False)
    if certificate is None:
        return Node("certificate", f"Certificate {namespace}/{name}", ("not in the cluster",))
    status = certificate.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    issuer = ((certificate.get("spec") or {}).get("issuerRef") or {}).get("name")
    facts = [f"Ready {ready.get('status', 'unknown')}, issuer {issuer}"]
    try:
        leaf = _issued(snapshot, namespace, name)
    except (EvidenceUnavailable, EvidenceNotCollected):
        leaf = None
    if leaf is not None:
        facts.append(f"serial {leaf.serial_number:x}, expires {leaf.not_valid_after_utc:%Y-%m-%d %H:%M}")
    elif status.get("notAfter"):
        facts.append(f"expires {status['notAfter']} (serial not collected)")
    return Node("certificate", f"Certificate {namespace}/{name}", tuple(facts))


def _served_node(snapshot: Snapshot, t: _Target) -> Node:
    handshake = snapshot.tls.value("handshake")
    chain = parse_chain(handshake.get("chain") or [])
    if not chain:
        return Node("served chain", f"{handshake.get('server_name')}", ("the server sent no certificate",))
    leaf = chain[0]
    return Node("served chain", f"{handshake.get('server_name')} ({handshake.get('protocol')}, {len(chain)} certificates)",
                (f"leaf serial {leaf.serial_number:x}, expires {leaf.not_valid_after_utc:%Y-%m-%d %H:%M}",
                 f"trust root: {top_issuer(chain)}"))


def _padlock_node(snapshot: Snapshot, t: _Target) -> Node:
    page = snapshot.tls.value("page")
    facts = [f"GET / {page.get('status')}" + (", HSTS" if page.get("hsts") else ", no HSTS")]
    try:
        http = snapshot.tls.value("http")
        facts.append(f"http:// answers {http.get('status')}" + (f" → {http['location']}" if http.get("location") else ""))
    except EvidenceUnavailable:
        facts.append("http:// not probed")
    return Node("padlock", f"https://{t.demo_fqdn}", tuple(facts))


def _kubelet_node(snapshot: Snapshot, t: _Target) -> Node:
    """The node pool's identity (the managed cluster's identityProfile.kubeletidentity, as RBAC-003 reads it) and
    the roles it holds."""
    cluster = snapshot.azure.managed_cluster() or {}
    kubelet = (_props(cluster).get("identityprofile") or {}).get("kubeletidentity") or {}
    name = str(kubelet.get("resourceId") or "kubelet identity").rsplit("/", 1)[-1]
    names = _role_names(snapshot)
    held = []
    for assignment in facts.role_assignments(snapshot, str(kubelet.get("objectId") or "")):
        props = _props(assignment)
        guid = str(props.get("roledefinitionid") or "").rsplit("/", 1)[-1].lower()
        held.append(f"{names.get(guid, guid)} at {scope_text(str(props.get('scope') or ''))}")
    return Node("kubelet identity", name, (f"object id {kubelet.get('objectId')}", *(held[:3] or ["holds no role"])))


_READERS: tuple[Callable[[Snapshot, _Target], Node], ...] = (
    _pod_node, _binding_node, _identity_node, _role_node, _zone_node, _record_node, _ingress_node, _certificate_node,
    _served_node, _padlock_node)
# Per branch arrow (aksid.units.BRANCH_ARROWS): its node's reader and the chain's node it is drawn level with.
_BRANCHES: dict[str, tuple[Callable[[Snapshot, _Target], Node], str]] = {
    "kubelet identity → zone": (_kubelet_node, "identity")}
RED_STATES = ("failed", "error", "waived")


def build_chain(snapshot: Snapshot, results: Iterable[CheckResult], title: str = "") -> Chain:
    """The demo host's chain, read from `snapshot`, its arrows judged by `results` (of this target only); a branch
    only when a check judging its arrow is red (a kubelet that may not write the zone is nothing to draw)."""
    results = list(results)
    t = _Target(snapshot.target, snapshot.document.get("mode"))
    nodes = tuple(_guarded(kind, lambda read=read: read(snapshot, t), t.static)
                  for kind, read in zip(NODES, _READERS, strict=True))
    links = tuple(judge(checks, results) for checks in link_checks())
    branches = []
    for name, checks in zip(BRANCH_ARROWS, branch_link_checks(), strict=True):
        link = judge(checks, results)
        if link.state in RED_STATES:
            source, _, joins = name.partition(" → ")
            read, beside = _BRANCHES[name]
            branches.append(Branch(_guarded(source, lambda read=read: read(snapshot, t), t.static), beside, joins, link))
    return Chain(title or t.demo_fqdn, nodes, links, tuple(branches))


# -- the canary (provision mode) -------------------------------------------------------------------

def _step(snapshot: Snapshot, key: str) -> tuple[Any, str | None]:
    entry = snapshot.provision.canary(key)
    if entry.get("status") != "ok":
        return None, f"{entry.get('status')}: {entry.get('reason')}"
    return entry.get("value"), None


def _canary_nodes(snapshot: Snapshot) -> list[Node]:
    section = snapshot.provision.section
    host = str(section.get("canary_host"))
    address, why = _step(snapshot, "address")
    nodes = [Node(CANARY_NODES[0], host, (f"load balancer {address}" if why is None else why,))]
    record, why = _step(snapshot, "azure_record")
    nodes.append(Node(CANARY_NODES[1], f"{host} A", (
        f"holds {', '.join(record.get('addresses') or [])} (TTL {record.get('ttl')})" if why is None else why,)))
    servers, why = _step(snapshot, "servers")
    if why is None:
        answered = [name for name, entry in ((servers or {}).get("value") or {}).items() if entry.get("status") == "ok"]
        nodes.append(Node(CANARY_NODES[2], f"{len(answered)} name servers", (f"all answer {address}",)))
    else:
        nodes.append(Node(CANARY_NODES[2], "name servers", (why,)))
    certificate, why = _step(snapshot, "certificate")
    if why is None:
        meta = certificate.get("metadata") or {}
        issuer = ((certificate.get("spec") or {}).get("issuerRef") or {}).get("name")
        nodes.append(Node(CANARY_NODES[3], f"Certificate {meta.get('namespace')}/{meta.get('name')}",
                          (f"Ready, issuer {issuer}",)))
    else:
        nodes.append(Node(CANARY_NODES[3], "certificate", (why,)))
    served, why = _step(snapshot, "tls")
    chain = parse_chain(((served or {}).get("handshake") or {}).get("value", {}).get("chain") or []) if why is None else []
    nodes.append(Node(CANARY_NODES[4], host, (f"trust root: {top_issuer(chain)}" if chain else why or "no certificate",)))
    teardown = section.get("teardown") or {}
    leftovers = (teardown.get("leftovers") or {}).get("value")
    nodes.append(Node(CANARY_NODES[5], f"run {section.get('run_id')}",
                      ("left nothing" if leftovers == [] else f"left {', '.join(map(str, leftovers or ['(not recorded)']))}",)))
    return nodes


def build_canary_chain(snapshot: Snapshot, results: Iterable[CheckResult], title: str = "") -> Chain | None:
    """The canary's chain, when the snapshot holds provision mode's evidence; None otherwise."""
    if not snapshot.document.get("provision"):
        return None
    results = list(results)
    try:
        nodes = _canary_nodes(snapshot)
    except (EvidenceUnavailable, EvidenceNotCollected) as exc:
        nodes = [Node(kind, "not observed", (str(exc),), collected=False) for kind in CANARY_NODES]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        nodes = [Node(kind, "unreadable", (f"{type(exc).__name__}: {exc}",), collected=False) for kind in CANARY_NODES]
    links = tuple(judge(checks, results) for checks in canary_link_checks())
    return Chain(title or "canary", tuple(nodes), links)


# -- drawing ---------------------------------------------------------------------------------------

# The chain's column (nodes, arrows) and, when a branch is drawn, a column beside it; both scale down with the page
# (the SVG has a viewBox, CSS caps it at 100% of its box), so a narrow window shrinks it rather than scrolling.
WIDTH, BAR_X, BAR_W, LINK_H, LINE_H, PAD = 600, 22, 14, 44, 15, 8
SIDE_GAP, SIDE_W = 24, 360


def _fits(width: int, per_char: float) -> int:
    """The characters of a line that fit a box `width` wide at a font whose average glyph is `per_char` px."""
    return int((width - 2 * PAD - 8) / per_char)


MAX_CHARS, SIDE_CHARS = _fits(WIDTH, 6.9), _fits(SIDE_W, 6.9)  # facts (11.5px); the whole text is in the tooltip

STYLE = """
.chains{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
.chain{margin:0;min-width:0;max-width:100%} .chain figcaption{font-weight:600;margin-bottom:.3rem}
.chain svg{font-family:system-ui,sans-serif;display:block;max-width:100%;height:auto}
.chain .k{font-size:10px;fill:#57606a;letter-spacing:.04em} .chain .n{font-size:13px;font-weight:600;fill:#1b1f24}
.chain .f{font-size:11.5px;fill:#1b1f24} .chain .gone .n,.chain .gone .f{fill:#8c959f}
.chain .s{font-size:12px;font-weight:600} .chain .c{font-size:10.5px;fill:#57606a}
.chain a .s{text-decoration:underline} .legend span{display:inline-block;margin-right:1rem;font-size:12px}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
.chain-note{color:#57606a}
@media print{.chains{display:block} .chain{page-break-inside:avoid}}
"""


def _clip(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """`text` in at most `lines` lines of `width` characters, cut at spaces; the last line clipped."""
    words, found, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            found.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    found.append(line)
    if len(found) > lines:
        found = found[:lines - 1] + [_clip(" ".join(found[lines - 1:]), width)]
    return [_clip(item, width) for item in found if item]


def _node_height(node: Node) -> int:
    return 2 * PAD + 14 + LINE_H * len(node.facts)


def _draw_node(node: Node, y: int, x: int = 0, width: int = WIDTH, chars: int = MAX_CHARS) -> str:
    height = _node_height(node)
    name_chars = int((width - 2 * PAD - 8 - 7.6 * (len(node.kind) + 1)) / 8.2)  # the kind (10px caps), the name (13px bold)
    dash = ' stroke-dasharray="4 3"' if not node.collected else ""
    left = x + PAD + 4
    lines = [f'<text x="{left}" y="{y + PAD + 12}"><tspan class="k">{escape(node.kind.upper())}</tspan> '
             f'<tspan class="n">{escape(_clip(node.name, name_chars))}</tspan></text>']
    for index, fact in enumerate(node.facts):
        lines.append(f'<text class="f" x="{left}" y="{y + PAD + 14 + LINE_H * (index + 1) - 2}">'
                     f'{escape(_clip(fact, chars))}</text>')
    tooltip = escape(f"{node.kind}: {node.name}" + "".join(f"\n{fact}" for fact in node.facts))
    return (f'<g class="node{"" if node.collected else " gone"}" data-kind="{escape(node.kind)}"><title>{tooltip}</title>'
            f'<rect x="{x + 1}" y="{y}" width="{width - 2}" height="{height}" rx="6" '
            f'fill="{"#fff" if node.collected else "#f6f8fa"}" stroke="#d0d7de"{dash}/>' + "".join(lines) + "</g>")


def _link_label(link: Link, named: set[str]) -> tuple[str, str]:
    """(the state line, the detail line) of an arrow. A check is named once per chain: an arrow it already named
    above (RBAC-001 judges identity → role and role → zone; CANARY-001 two canary arrows) says so instead."""
    finding = link.finding
    if finding is not None:
        repeated = finding.id in named
        named.add(finding.id)
        if repeated:
            return STATE_WORDS[link.state], "the same finding as the arrow above"
        more = len({r.id for r in link.results if r.outcome == finding.outcome}) - 1
        head = f"{finding.id} {STATE_WORDS[link.state]}" + (f" (+{more} more)" if more > 0 else "")
        return head, f"{finding.subject}: {finding.message}"
    judged = [check for check in sorted({r.id for r in link.results if r.outcome == "passed"}) if check not in named]
    named.update(r.id for r in link.results if r.outcome == "passed")
    if link.state == "passed":
        return "passed", ", ".join(judged) or "by the same checks as the arrow above"
    reasons = {r.message for r in link.results if r.outcome == "skipped"}
    return "not judged", (next(iter(reasons)) if len(reasons) == 1 else "judged by " + ", ".join(link.checks))


def _bar(x: int, y: int, length: int, colour: str) -> str:
    """A downward arrow: a bar and its head."""
    return (f'<rect class="bar" x="{x}" y="{y}" width="{BAR_W}" height="{length - 8}" fill="{colour}"/>'
            f'<polygon points="{x - 5},{y + length - 8} {x + BAR_W + 5},{y + length - 8} '
            f'{x + BAR_W / 2},{y + length}" fill="{colour}"/>')


def _state_text(link: Link, head: str, x: int, y: int) -> str:
    state = f'<text class="s" x="{x}" y="{y}" fill="{link.colour}">{escape(head)}</text>'
    finding = link.finding
    return f'<a href="#{row_anchor(finding)}">{state}</a>' if finding is not None else state


def _tooltip(link: Link) -> str:
    return escape("\n".join(f"{r.id} {r.outcome}: {r.subject}" for r in link.results) or "no check judged this link")


def _draw_link(link: Link, y: int, source: str, named: set[str]) -> str:
    head, detail = _link_label(link, named)
    text_x = BAR_X + BAR_W + 14
    detail_text = f'<text class="c" x="{text_x}" y="{y + 30}">{escape(_clip(detail))}</text>'
    return (f'<g class="link" data-from="{escape(source)}" data-state="{link.state}" data-checks="{" ".join(link.checks)}">'
            f"<title>{_tooltip(link)}</title>{_bar(BAR_X, y, LINK_H, link.colour)}"
            f"{_state_text(link, head, text_x, y + 15)}{detail_text}</g>")


def _draw_branch(branch: Branch, top: int, join_y: int, named: set[str]) -> str:
    """The branch's node in the side column from `top`, its arrow down that column to `join_y`, then left into the
    chain's node there (its right edge, WIDTH)."""
    x = WIDTH + SIDE_GAP
    node = _draw_node(branch.node, top, x, SIDE_W, SIDE_CHARS)
    start = top + _node_height(branch.node) + 4
    bar_x, colour = x + BAR_X, branch.link.colour
    down = f'<rect class="bar" x="{bar_x}" y="{start}" width="{BAR_W}" height="{join_y - start + BAR_W // 2}" fill="{colour}"/>'
    across = (f'<rect x="{WIDTH + 8}" y="{join_y - BAR_W // 2}" width="{bar_x - WIDTH - 8}" height="{BAR_W}" fill="{colour}"/>'
              f'<polygon points="{WIDTH + 10},{join_y - BAR_W // 2 - 5} {WIDTH + 10},{join_y + BAR_W // 2 + 5} '
              f'{WIDTH + 1},{join_y}" fill="{colour}"/>')
    head, detail = _link_label(branch.link, named)
    text_x = bar_x + BAR_W + 10
    room = max(1, (join_y - start - 40) // 14)  # the detail's lines that fit beside the bar above the turn
    details = "".join(f'<text class="c" x="{text_x}" y="{start + 32 + 14 * index}">{escape(line)}</text>'
                      for index, line in enumerate(_wrap(detail, int((WIDTH + SIDE_GAP + SIDE_W - text_x - PAD) / 5.9), room)))
    arrow = (f'<g class="link branch" data-from="{escape(branch.node.kind)}" data-to="{escape(branch.joins)}" '
             f'data-state="{branch.link.state}" data-checks="{" ".join(branch.link.checks)}"><title>{_tooltip(branch.link)}'
             f"</title>{down}{across}{_state_text(branch.link, head, text_x, start + 16)}{details}</g>")
    return node + arrow


def draw_chain(chain: Chain, fleet: bool = False) -> str:
    """One chain as an inline SVG (in a <figure>): nodes top to bottom, a coloured arrow between each two; a branch
    (another principal reaching a node) in a column beside it."""
    parts, y, tops, named = [], 0, {}, set()
    for index, node in enumerate(chain.nodes):
        tops[node.kind] = y
        parts.append(_draw_node(node, y))
        y += _node_height(node)
        if index < len(chain.links):
            parts.append(_draw_link(chain.links[index], y + 4, node.kind, named))
            y += LINK_H + 4
    for branch in chain.branches:
        parts.append(_draw_branch(branch, tops.get(branch.beside, 0), tops.get(branch.joins, y) + 22, named))
    width = WIDTH + (SIDE_GAP + SIDE_W if chain.branches else 0)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 2}" viewBox="0 0 {width} {y + 2}" '
           f'role="img" aria-label="evidence chain: {escape(chain.title)}">' + "".join(parts) + "</svg>")
    title = escape(chain.title)
    return f'<figure class="chain" data-chain="{title}"><figcaption>{title}</figcaption>{svg}</figure>'


# -- the report's section --------------------------------------------------------------------------

Sources = Mapping[str | None, "Snapshot | str | None"]


def _normalise(snapshots: Snapshot | Sources | None) -> dict[str | None, Snapshot | str | None]:
    if snapshots is None:
        return {}
    if isinstance(snapshots, Snapshot):
        return {None: snapshots}
    return dict(snapshots)


def chains_for(results: list[CheckResult], snapshots: Snapshot | Sources | None) -> tuple[list[Chain], list[str]]:
    """The chains to draw (each target's, then its canary's) and a note per target whose snapshot is missing."""
    fleet = is_fleet(results)
    chains, notes = [], []
    for name, snapshot in _normalise(snapshots).items():
        mine = [r for r in results if r.target == name] if fleet else results
        if not isinstance(snapshot, Snapshot):
            notes.append(f"{name or 'this run'}: no chain drawn, {snapshot or 'no snapshot was recorded'}")
            continue
        label = f"{name}: " if name and len(_normalise(snapshots)) > 1 else ""
        t = _Target(snapshot.target)
        chains.append(build_chain(snapshot, mine, f"{label}{t.demo_fqdn}"))
        canary = build_canary_chain(snapshot, mine, f"{label}canary")
        if canary is not None:
            chains.append(canary)
    return chains, notes


def render_chains(results: list[CheckResult], snapshots: Snapshot | Sources | None) -> str:
    """The report's opening section; empty when the writer was given no snapshot."""
    if snapshots is None:
        return ""
    chains, notes = chains_for(results, snapshots)
    fleet = is_fleet(results)
    legend = "".join(f'<span><i style="background:{COLOURS[s]}"></i>{STATE_WORDS[s]}</span>' for s in COLOURS)
    parts = ['<section id="chain"><h2>Evidence chain</h2>',
             "<p>Each arrow is coloured by the checks that judge that link; a red arrow names its check and links "
             "to its finding.</p>", f'<p class="legend">{legend}</p>',
             '<div class="chains">', *(draw_chain(chain, fleet) for chain in chains), "</div>",
             *(f'<p class="chain-note">{escape(note)}</p>' for note in notes), "</section>"]
    return "\n".join(parts)

