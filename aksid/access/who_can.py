"""`aksid who-can [IDENTITY]`: every principal that can act as an identity, re-point it or widen its rights, each with
its shortest path and every edge's evidence (the snapshot entry and field it is read from), as text or JSON.

It reads a saved snapshot (`--snapshot`, default reports/snapshot.json): no network, nothing written. IDENTITY is a
user-assigned identity of the snapshot by client id, name or resource id; by default the DNS identity
(IDENTITY_NAME as the run that saved the snapshot knew it).

- Azure side (aksid/access/azure.py): the role assignments at the DNS identity's scope and the zone's and above, as
  collected with `atScope()`. For another identity, only those of them that also apply to it are known (its resource
  group's, the subscription's): the snapshot does not hold assignments on that identity itself, and the answer says so.
- Kubernetes side (aksid/access/paths.py, aksid/access/rbac.py): the subjects RBAC lets reach the identity's
  pod-identity bindings or federated ServiceAccounts.

How to read a path: `principal ─edge→ node ─edge→ … → identity`, one line per edge with its evidence
(`arm accessAssignments <id>` · properties.scope). What it cannot see: Entra ID group membership (a group is one
principal), PIM-eligible assignments not activated, deny assignments, conditions (shown, not evaluated).
"""

from __future__ import annotations

import json
import sys
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from aksid.access.azure import AzurePath, UnknownRole, azure_paths, control_plane_principals, shortest
from aksid.access.rbac import RBAC_API, Rbac, Subject
from aksid.arm_ids import contains, same_id
from aksid.config import Target
from aksid.evidence import kube_source
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot
from aksid.snapshot_target import target_from_snapshot
from aksid.userfiles import UserFileError

# Kubernetes path kinds, most direct first (a path through another subject's rights comes last).
_KUBE_ORDER = ("token", "service-account", "pod-identity", "exec", "identity-objects", "host-network", "escalate",
               "impersonate")
_ALSO_SHOWN = 5  # further paths of one principal the text shows (JSON lists them all)


class WhoCanError(ValueError):
    """A problem the user can fix, in one sentence."""


# -- who ACCESS-001 allows: one copy, for the check (suites/test_access.py), `who_can(judge_kube=True)` and
# report.html's picture (aksid/reporting/access_picture.py) -------------------------------------------------------

RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
# Kubernetes' own control-plane principals (Kubernetes docs, "Using RBAC Authorization", core component roles):
# the controller manager, the scheduler, kube-proxy and the kubelets (users system:node:<node>, group system:nodes).
CONTROL_PLANE_USERS = ("system:kube-controller-manager", "system:kube-scheduler", "system:kube-proxy")
CONTROL_PLANE_GROUPS = ("system:masters", "system:nodes", "system:serviceaccounts:kube-system")
# Namespaces whose ServiceAccounts are the platform's own: kube-system (Kubernetes' controllers, the AKS add-ons,
# NMI, the add-on's workload identity webhook) and the self-installed webhook's (azure-workload-identity docs).
PLATFORM_NAMESPACES = ("kube-system", "azure-workload-identity-system")
# aksid's own provisioner (deploy/rbac-provision.yaml binds aksid-provisioner to it).
AKSID_SERVICE_ACCOUNT = ("aksid", "aksid")


def rbac_of(snapshot: Snapshot) -> Rbac:
    objects: list[dict[str, Any]] = []
    for kind in RBAC_KINDS:
        objects += snapshot.kube.list(RBAC_API, kind)
    return Rbac(objects)


def allowed_subjects(snapshot: Snapshot, target: Target) -> tuple[dict[Subject, str], list[str]]:
    """The subjects allowed by default and by access_allowed, each with why (the report and who-can say it); and the
    reasons, for the message."""
    allowed: dict[Subject, str] = {}

    def allow(subject: Subject, why: str) -> None:
        allowed.setdefault(subject, why)  # the first reason found is the most specific one

    for namespace, name in target.allowed_bindings():
        for deployment in snapshot.kube.deployments(namespace):
            if deployment["metadata"]["name"] == name:
                spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
                allow(Subject("ServiceAccount", spec.get("serviceAccountName") or "default", namespace),
                      f"the ServiceAccount of the allowed workload {namespace}/{name} (bind_allowed)")
    for namespace, account in target.allowed_service_accounts():
        allow(Subject("ServiceAccount", account, namespace), "an allowed ServiceAccount (wi_allowed)")
    allow(Subject("ServiceAccount", AKSID_SERVICE_ACCOUNT[1], AKSID_SERVICE_ACCOUNT[0]), "aksid's own provisioner")
    for user in CONTROL_PLANE_USERS:
        allow(Subject("User", user), "the control plane")
    reasons = {"system:masters": "system:masters (kube-apiserver grants it everything before RBAC)",
               "system:nodes": "the nodes' group", "system:serviceaccounts:kube-system": "kube-system's controllers"}
    for group in CONTROL_PLANE_GROUPS:
        allow(Subject("Group", group), reasons.get(group, "the control plane"))
    rbac = rbac_of(snapshot)
    for binding in rbac.bindings:  # subjects bound to cluster-admin across the cluster
        ref = binding.get("roleRef") or {}
        if binding.get("kind") == "ClusterRoleBinding" and ref.get("kind") == "ClusterRole" \
                and ref.get("name") == "cluster-admin":
            name = (binding.get("metadata") or {}).get("name")
            for subject in rbac.binding_subjects(binding):
                allow(subject, f"bound to cluster-admin (ClusterRoleBinding {name})")
    extra = target.allowed_access()
    for user in extra.get("User", ()):
        allow(Subject("User", user), "named in access_allowed")
    for group in extra.get("Group", ()):
        allow(Subject("Group", group), "named in access_allowed")
    for item in extra.get("ServiceAccount", ()):
        namespace, _, name = item.partition("/")
        allow(Subject("ServiceAccount", name, namespace), "named in access_allowed")
    return allowed, []


def kube_allowance(subject: Subject, allowed: Mapping[Subject, str]) -> str | None:
    """Why ACCESS-001 allows the subject (`allowed` from allowed_subjects), or None when it does not."""
    if subject in allowed:
        return allowed[subject]
    if subject.kind == "ServiceAccount" and subject.namespace in PLATFORM_NAMESPACES:
        return f"a ServiceAccount of {subject.namespace} (the platform's own)"
    if subject.kind == "User" and subject.name.startswith("system:node:"):
        return "a node's kubelet"
    return None


def is_allowed(subject: Subject, allowed: Mapping[Subject, str]) -> bool:
    return kube_allowance(subject, allowed) is not None


def find_identity(snapshot: Snapshot, wanted: str | None, default_name: str) -> dict[str, Any]:
    identities = snapshot.azure.identities()
    key = (wanted or default_name).strip()
    for identity in identities:
        props = identity.get("properties") or {}
        if (str(identity.get("name", "")).lower() == key.lower() or str(props.get("clientId", "")).lower() == key.lower()
                or same_id(str(identity.get("id", "")), key)):
            return identity
    held = ", ".join(sorted(str(i.get("name")) for i in identities)) or "none"
    raise WhoCanError(f"no user-assigned identity in the snapshot has the client id, name or resource id {key!r} "
                      f"(it holds: {held})")


def azure_side(snapshot: Snapshot, identity: Mapping[str, Any], is_dns: bool) -> dict[str, Any]:
    target = target_from_snapshot(snapshot)
    try:
        assignments = snapshot.azure.access_assignments()
        definitions = snapshot.azure.role_definitions()
    except (EvidenceUnavailable, EvidenceNotCollected) as exc:
        return {"principals": [], "unavailable": str(exc)}
    note = None
    if not is_dns:
        # only the assignments read for the DNS identity that also apply to this one (resource group and above)
        assignments = [a for a in assignments if contains(str((a.get("properties") or {}).get("scope") or ""),
                                                          str(identity.get("id", "")))]
        note = (f"role assignments on {identity.get('name')} itself are not in the snapshot (it holds those at the "
                "DNS identity, the zone and above); the paths below are those that apply to it from above")
    try:
        paths = azure_paths(assignments, definitions, identity, target.zone_id if is_dns else "",
                            subscription_id=target.subscription_id,
                            control_plane=control_plane_principals(snapshot.azure.managed_cluster()),
                            allowed_ids=target.allowed_access()["azure"])
    except UnknownRole as exc:
        return {"principals": [], "unavailable": str(exc)}
    by_principal: dict[str, list[AzurePath]] = {}
    for path in paths:
        by_principal.setdefault(path.principal, []).append(path)
    principals = []
    for principal, best in shortest(paths).items():
        principals.append({
            "side": "azure", "principal": principal, "type": best.principal_type,
            "allowed": best.allowed if all(p.allowed for p in by_principal[principal]) else None,
            "can": sorted({p.capability.meaning for p in by_principal[principal]}),
            "path": best.edges(),
            "also": [f"{p.capability.meaning}: {p.role} at {p.scope}" for p in by_principal[principal] if p != best],
        })
    return {"principals": principals, **({"note": note} if note else {})}


_GRAPHS: weakref.WeakKeyDictionary[Snapshot, dict[tuple[str, tuple[str, ...]], Any]] = weakref.WeakKeyDictionary()


def kube_graph(snapshot: Snapshot, identity: Mapping[str, Any], trusted_issuers: Iterable[str] = ()) -> Any:
    """The kube side of an identity's access graph (aksid/access/paths.py): where it is handed out (its pod-identity
    bindings, the ServiceAccounts its federated credentials trust from the cluster's issuer or a trusted one) and who
    can get there. Built once per snapshot and identity: ACCESS-001 and report.html's picture share it (at 20,000 pods
    the search is most of either). Raises EvidenceUnavailable/EvidenceNotCollected when RBAC was not read."""
    from aksid.access.paths import Graph, identity_targets
    from aksid.identity_models import POD_IDENTITY, POD_IDENTITY_GROUP

    cluster = snapshot.azure.managed_cluster() or {}
    issuer = ((cluster.get("properties") or {}).get("oidcIssuerProfile") or {}).get("issuerURL")
    issuers = tuple(i for i in [issuer, *trusted_issuers] if i)
    cache = _GRAPHS.setdefault(snapshot, {})
    key = (str(identity.get("id", "")).lower(), issuers)
    if key not in cache:
        azure_identities: list[dict[str, Any]] = []
        bindings: list[dict[str, Any]] = []
        if snapshot.kube.served(POD_IDENTITY_GROUP, "AzureIdentityBinding"):
            azure_identities = snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentity")
            bindings = snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentityBinding")
        try:
            credentials = snapshot.azure.federated_credentials(str(identity.get("id", "")))
        except EvidenceUnavailable:
            credentials = []
        targets = identity_targets(identity, azure_identities, bindings, credentials, list(issuers))
        # pod identity assigns the identity to the node pool (managed mode: the add-on, standard mode: MIC): a pod on
        # the host network reaches it through IMDS; workload identity alone assigns nothing to the nodes
        cache[key] = Graph(rbac_of(snapshot), snapshot.kube.list("v1", "Namespace"), snapshot.kube.pods(), targets,
                           any(t.model == POD_IDENTITY for t in targets))
    return cache[key]


def most_direct_first(paths: Iterable[Any]) -> list[Any]:
    """Paths in the order a reader needs them: the most direct kind first (a token before a chain), then by text."""
    return sorted(paths, key=lambda p: (_KUBE_ORDER.index(p.kind) if p.kind in _KUBE_ORDER else len(_KUBE_ORDER), p.key))


def kube_side(snapshot: Snapshot, identity: Mapping[str, Any], judge: bool = False) -> dict[str, Any]:
    """The kube side, through the access graph of aksid/access/paths.py; with `judge`, each principal's `allowed` is
    ACCESS-001's verdict (kube_allowance: why it is allowed, or None), else None ("see ACCESS-001")."""
    target = target_from_snapshot(snapshot)
    try:
        graph = kube_graph(snapshot, identity, target.trusted_issuers())
        targets = graph.targets
        paths = graph.paths()
        allowed = allowed_subjects(snapshot, target)[0] if judge else None
    except (EvidenceUnavailable, EvidenceNotCollected) as exc:
        return {"principals": [], "unavailable": str(exc)}
    best: dict[str, Any] = {}
    everything: dict[str, list[Any]] = {}
    for path in most_direct_first(paths):
        best.setdefault(str(path.subject), path)
        everything.setdefault(str(path.subject), []).append(path)
    principals = []
    for subject, path in sorted(best.items()):
        edges = _chain_edges(path)
        final = path.final or path
        edges.append({"from": final.action, "to": final.via, "edge": "gives", "evidence": final.kind, "fields": ""})
        edges.append({"from": final.via, "to": f"identity {identity.get('name')}", "edge": "hands out",
                      "evidence": f"arm identities {identity.get('id')}", "fields": "properties.clientId"})
        verdict = kube_allowance(path.subject, allowed) if allowed is not None else None
        principals.append({"side": "kubernetes", "principal": subject, "type": path.subject.kind, "allowed": verdict,
                           "can": sorted({p.action for p in everything[subject]}), "path": edges,
                           "also": [p.text() for p in everything[subject] if p is not path]})
    return {"principals": principals, "targets": [str(t) for t in targets], "judged": allowed is not None}


def _grant_edges(who: str, grant: Any, action: str) -> list[dict[str, Any]]:
    """who ─bound by B→ role ─rule R→ the request, each with the object it is read from."""
    if grant is None:
        return []
    return [{"from": who, "to": grant.role, "edge": f"bound by {grant.binding}",
             "evidence": kube_source(grant.binding_obj), "fields": "subjects, roleRef"},
            {"from": grant.role, "to": action, "edge": f"rule {grant.rule.text()}",
             "evidence": f"kube {RBAC_API}/{grant.role}", "fields": "rules"}]


def _chain_edges(path: Any) -> list[dict[str, Any]]:
    """Every hop of a chain (the binding and rule that allow it, whom it makes the caller act as), then the last
    principal's own grant; a direct path is its grant alone."""
    from aksid.access.paths import holder_text

    edges: list[dict[str, Any]] = []
    who = str(path.subject)
    for hop in path.chain:
        if hop.kind == "member":
            edges.append({"from": who, "to": holder_text(hop.to), "edge": "is in", "evidence": "the group's bindings",
                          "fields": "subjects"})
        else:
            edges += _grant_edges(who, hop.grant, hop.action)
            edges.append({"from": hop.action, "to": holder_text(hop.to),
                          "edge": "so acts as" + (" (impersonated)" if hop.impersonated else ""), "evidence": hop.kind,
                          "fields": ""})
        who = holder_text(hop.to)
    final = path.final or path
    return edges + _grant_edges(who, final.grant, final.action)


def who_can(snapshot: Snapshot, wanted: str | None = None, *, judge_kube: bool = False) -> dict[str, Any]:
    """The answer (render_text prints it, JSON as is). The Azure side's `allowed` is ACCESS-002's verdict
    (azure_paths'); the Kubernetes side's is ACCESS-001's only with `judge_kube` (kube_side)."""
    target = target_from_snapshot(snapshot)
    try:
        identity = find_identity(snapshot, wanted, target.identity_name)
    except (EvidenceUnavailable, EvidenceNotCollected) as exc:
        raise WhoCanError(f"the snapshot holds no identities to answer for: {exc}") from exc
    is_dns = str(identity.get("name", "")).lower() == target.identity_name.lower()
    return {
        "identity": {"name": identity.get("name"), "id": identity.get("id"),
                     "clientId": (identity.get("properties") or {}).get("clientId"), "dns_identity": is_dns},
        "azure": azure_side(snapshot, identity, is_dns),
        # ACCESS-001's verdict is about the DNS identity (its allowed workloads); another identity's is not judged
        "kubernetes": kube_side(snapshot, identity, judge_kube and is_dns),
        "cannot_see": ["Entra ID group membership (a group is one principal)", "PIM-eligible assignments not activated",
                       "deny assignments", "role assignment conditions (shown, not evaluated)"],
    }


def render_text(answer: Mapping[str, Any], out: TextIO) -> None:
    ident = answer["identity"]
    out.write(f"Who can act as, re-point or widen identity {ident['name']} (client {ident['clientId']})\n"
              f"  {ident['id']}\n")
    for side, title in (("azure", "Azure principals (role assignments at the identity, the zone and above)"),
                        ("kubernetes", "Kubernetes principals (RBAC, Pod Security, bindings, ServiceAccounts)")):
        part = answer[side]
        out.write(f"\n{title}: {len(part['principals'])}\n")
        if part.get("unavailable"):
            out.write(f"  not answered: {part['unavailable']}\n")
        if part.get("note"):
            out.write(f"  note: {part['note']}\n")
        for entry in part["principals"]:
            status = f"allowed: {entry['allowed']}" if entry["allowed"] else (
                "NOT allowed by default or access_allowed" if side == "azure" or part.get("judged") else
                "not judged: ACCESS-001 judges the DNS identity's")
            who = entry["principal"] if side == "kubernetes" else f"{entry['type']} {entry['principal']}"
            out.write(f"\n  {who}  [{status}]\n")
            out.write(f"    can: {'; '.join(entry['can'])}\n")
            out.write("    shortest path:\n")
            for edge in entry["path"]:
                fields = f" · {edge['fields']}" if edge.get("fields") else ""
                out.write(f"      {edge['from']} ─{edge['edge']}→ {edge['to']}\n"
                          f"          evidence: {edge['evidence']}{fields}\n")
                if edge.get("condition"):
                    out.write(f"          condition (not evaluated): {edge['condition']}\n")
            for other in entry["also"][:_ALSO_SHOWN]:
                out.write(f"    also: {other}\n")
            if len(entry["also"]) > _ALSO_SHOWN:
                out.write(f"    also: {len(entry['also']) - _ALSO_SHOWN} more paths (--format json lists them all)\n")
    out.write(f"\nNot visible in a snapshot: {'; '.join(answer['cannot_see'])}.\n")


def who_can_command(snapshot_path: Path, identity: str | None, form: str, out: TextIO = sys.stdout) -> int:
    try:
        snapshot = Snapshot.load(snapshot_path)
        answer = who_can(snapshot, identity, judge_kube=True)
    except (UserFileError, WhoCanError) as exc:
        print(f"aksid who-can: {exc}", file=sys.stderr)
        return 2
    if form == "json":
        json.dump(answer, out, indent=2)
        out.write("\n")
    else:
        render_text(answer, out)
    return 0

