"""MIG-002: no identity pod identity put on a node pool's scale set stays reachable through IMDS by every pod.

What Azure does (the facts this follows):
- aad-pod-identity docs ("Pod Identity in Managed Mode", "Standard to Managed Mode"): the identities pods use are
  assigned to the underlying VMSS (by MIC in standard mode, by the AKS add-on or by hand in managed mode); NMI
  intercepts every pod's IMDS request (iptables DNAT of 169.254.169.254:80) and hands out only the pod's own.
- Azure IMDS: a VM hands out a token for any user-assigned identity of its scale set to whoever asks with its
  `client_id` (or `mi_res_id`); it knows nothing of pods. So once NMI is gone (after a migration to workload
  identity) or not intercepting (not ready, not scheduled on a node), every pod of those nodes can take every
  identity of the scale set.
- AKS docs ("Block pod access to the IMDS endpoint", preview): `networkProfile.podLinkLocalAccess: None` on the
  managed cluster (or `podLinkLocalAccess: None` on an agent pool) keeps non-hostNetwork pods from IMDS altogether.
- AKS assigns the kubelet identity (`identityProfile.kubeletidentity`) to every node pool's scale set, and the
  identities of some add-ons (`addonProfiles.<name>.identity`): they are meant to be there, so they are listed with
  their rights as information, never as findings (RBAC-003 judges what the kubelet identity may do).

Static mode judges what the files put on a node pool's VMs: a scale set they declare (`azurerm_*virtual_machine_
scale_set` `identity_ids`, `Microsoft.Compute/virtualMachineScaleSets` `identity.userAssignedIdentities`) and the
cluster's kubelet identity when they name it (`kubelet_identity`, `identityProfile.kubeletidentity`). A pod
identity's identity made the kubelet identity is a finding whatever NMI does: AKS keeps the kubelet identity on every
pool's scale set for the cluster's life (it cannot be removed at cutover), and NMI never intercepts hostNetwork pods.
On a declared scale set it is a finding where the files turn pod identity off (nothing intercepts IMDS there);
while they keep it on, whether NMI is ready on every node is a live question, so that subject is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aksid import facts
from aksid.arm_ids import role_guid, role_name, same_id
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence, path_text
from aksid.migration import files_turn_pod_identity_off, pod_identity_served
from aksid.nodes import is_pod_ready
from aksid.pod_identity_components import is_nmi
from aksid.snapshot import EvidenceNotCollected, Snapshot, placeholder

POD_IDENTITY_GROUP = "aadpodidentity.k8s.io/v1"
WI_CLIENT_ID = "azure.workload.identity/client-id"
RESTRICTED = "none"  # podLinkLocalAccess: "IMDS" (the default) or "None" (pods with hostNetwork=false get no IMDS)


@dataclass
class Assigned:
    """One user-assigned identity of a scale set, and why it is there."""

    resource_id: str
    client_id: str
    principal_id: str
    role: str  # "pod identity: ..." (judged), "kubelet", "add-on <name>" or "other" (information)

    @property
    def name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def judged(self) -> bool:
        return self.role.startswith("pod identity")


@dataclass
class ScaleSet:
    resource: dict[str, Any]
    node_group: str
    pool: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    assigned: list[Assigned] = field(default_factory=list)


def _cluster_props(snapshot: Snapshot) -> dict[str, Any]:
    return (snapshot.azure.managed_cluster() or {}).get("properties") or {}


def _pool_of(scale_set: dict[str, Any]) -> str:
    """The agent pool a scale set backs: AKS tags it `aks-managed-poolName`; its name is `aks-<pool>-<n>-vmss`."""
    tagged = (scale_set.get("tags") or {}).get("aks-managed-poolName")
    if tagged:
        return str(tagged)
    parts = str(scale_set.get("name", "")).split("-")
    return parts[1] if len(parts) >= 4 and parts[0] == "aks" else str(scale_set.get("name", ""))


def _scale_set_of(node: dict[str, Any]) -> str | None:
    """The scale set a node is an instance of, from its providerID (`azure:///.../virtualMachineScaleSets/<name>/
    virtualMachines/<n>`)."""
    provider_id = str((node.get("spec") or {}).get("providerID") or "")
    marker = "/virtualmachinescalesets/"
    if marker not in provider_id.lower():
        return None
    return provider_id[provider_id.lower().index(marker) + len(marker):].split("/", 1)[0].lower()


def _pod_identity_ids(snapshot: Snapshot, target: Target) -> tuple[dict[str, str], dict[str, str]]:
    """({identity id (lowercase): why}, {client id (lowercase): why}) of the identities pod identity uses or used: the
    DNS identity, the pod identity profile's, the AzureIdentities', and the client ids workload identity's
    ServiceAccounts name (the migration guide keeps the same identity, so a migrated one was pod identity's)."""
    by_id: dict[str, str] = {}
    by_client: dict[str, str] = {}
    dns = snapshot.azure.identity_named(target.identity_name)
    if dns is not None:
        by_id[str(dns["id"]).lower()] = "pod identity: the DNS identity"
    for entry in (_cluster_props(snapshot).get("podIdentityProfile") or {}).get("userAssignedIdentities") or []:
        identity = entry.get("identity") or {}
        why = f"pod identity: podIdentityProfile {entry.get('namespace')}/{entry.get('name')}"
        if identity.get("resourceId"):
            by_id.setdefault(str(identity["resourceId"]).lower(), why)
        if identity.get("clientId"):
            by_client.setdefault(str(identity["clientId"]).lower(), why)
    for azure_identity in snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentity"):
        spec = azure_identity.get("spec") or {}
        meta = azure_identity["metadata"]
        why = f"pod identity: AzureIdentity {meta.get('namespace')}/{meta['name']}"
        if spec.get("resourceID"):
            by_id.setdefault(str(spec["resourceID"]).lower(), why)
        if spec.get("clientID"):
            by_client.setdefault(str(spec["clientID"]).lower(), why)
    for account in snapshot.kube.service_accounts():
        client_id = ((account["metadata"].get("annotations") or {}).get(WI_CLIENT_ID) or "").strip().lower()
        if client_id:
            meta = account["metadata"]
            by_client.setdefault(client_id, f"pod identity (migrated): ServiceAccount {meta['namespace']}/"
                                            f"{meta['name']} uses it through workload identity")
    return {normalised(k): v for k, v in by_id.items()}, by_client


def normalised(resource_id: str) -> str:
    return "/".join(part for part in resource_id.lower().split("/") if part)


def _role_of(resource_id: str, client_id: str, snapshot: Snapshot, target: Target, pod_ids: dict[str, str],
             pod_clients: dict[str, str]) -> str:
    props = _cluster_props(snapshot)
    kubelet = (props.get("identityProfile") or {}).get("kubeletidentity") or {}
    if same_id(kubelet.get("resourceId"), resource_id):
        return "kubelet"
    for addon, profile in (props.get("addonProfiles") or {}).items():
        if (profile or {}).get("enabled") and same_id(((profile.get("identity") or {}).get("resourceId")), resource_id):
            return f"add-on {addon}"
    if resource_id.rstrip("/").rsplit("/", 1)[-1].lower() == target.identity_name.lower():
        return "pod identity: the DNS identity"  # by its name, should the identity itself not be readable
    return pod_ids.get(normalised(resource_id)) or pod_clients.get(client_id.lower()) or "other"


def scale_sets(snapshot: Snapshot, target: Target) -> dict[str, ScaleSet] | dict[str, DeclaredOnNodes]:
    """One subject per node pool scale set of the node resource group (static mode: what the files put there)."""
    if snapshot.document.get("mode") == "static":
        return declared_on_nodes(snapshot, target)
    found = snapshot.azure.scale_sets()
    if not found:
        raise NotApplicable(f"no virtual machine scale set in the node resource group of {target.cluster_name}")
    node_group = str(_cluster_props(snapshot).get("nodeResourceGroup") or "")
    pod_ids, pod_clients = _pod_identity_ids(snapshot, target)
    nodes_by_set: dict[str, list[dict[str, Any]]] = {}
    for node in snapshot.kube.nodes():
        name = _scale_set_of(node)
        if name:
            nodes_by_set.setdefault(name, []).append(node)
    subjects = {}
    for resource in found:
        name = str(resource.get("name", ""))
        subject = ScaleSet(resource, node_group, _pool_of(resource), nodes_by_set.get(name.lower(), []))
        for resource_id, ids in ((resource.get("identity") or {}).get("userAssignedIdentities") or {}).items():
            client_id, principal_id = str((ids or {}).get("clientId") or ""), str((ids or {}).get("principalId") or "")
            subject.assigned.append(Assigned(resource_id, client_id, principal_id,
                                             _role_of(resource_id, client_id, snapshot, target, pod_ids, pod_clients)))
        subjects[f"scaleset/{name}"] = subject
    return subjects


# -- static mode: what the files put on a node pool's VMs ------------------------------------------------------------

@dataclass
class DeclaredOnNodes:
    """(static mode) Identities the files put where IMDS hands them out: on a scale set they declare, or as the
    cluster's kubelet identity (AKS assigns it to the scale set of every node pool)."""

    what: str  # "scale set" or "kubelet identity"
    entry: str  # the snapshot entry holding the resource: scaleSets or managedCluster
    resource: dict[str, Any]
    field: str  # where the resource names the identities
    pool: str | None  # the pool a scale set backs (None: every pool of the cluster)
    assigned: list[Assigned] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.resource.get("name"))


def _pod_identity_role(resource_id: str, client_id: str, target: Target, pod_ids: dict[str, str],
                       pod_clients: dict[str, str]) -> str | None:
    if resource_id.rstrip("/").rsplit("/", 1)[-1].lower() == target.identity_name.lower():
        return "pod identity: the DNS identity"
    return pod_ids.get(normalised(resource_id)) or pod_clients.get(client_id.lower())


def declared_on_nodes(snapshot: Snapshot, target: Target) -> dict[str, DeclaredOnNodes]:
    """(static mode) One subject per scale set the files declare, and one for the cluster's kubelet identity when the
    files name it (a user-assigned identity; the one AKS makes at deployment is RBAC-003's to judge). Without the
    cluster in the files nothing can be judged: whether pod identity is on is the cluster's."""
    pod_ids, pod_clients = _pod_identity_ids(snapshot, target)  # reads the cluster: skipped when it is not declared
    subjects: dict[str, DeclaredOnNodes] = {}
    reasons = []
    try:
        declared = snapshot.azure.scale_sets()
    except EvidenceNotCollected as exc:
        declared = []
        reasons.append(str(exc))
    for resource in declared:
        subject = DeclaredOnNodes("scale set", "scaleSets", resource, "identity.userAssignedIdentities",
                                  _pool_of(resource))
        for resource_id, ids in ((resource.get("identity") or {}).get("userAssignedIdentities") or {}).items():
            client_id, principal_id = str((ids or {}).get("clientId") or ""), str((ids or {}).get("principalId") or "")
            subject.assigned.append(Assigned(resource_id, client_id, principal_id,
                                             _role_of(resource_id, client_id, snapshot, target, pod_ids, pod_clients)))
        subjects[f"scaleset/{subject.name}"] = subject
    cluster = snapshot.azure.managed_cluster() or {}
    kubelet = ((cluster.get("properties") or {}).get("identityProfile") or {}).get("kubeletidentity") or {}
    resource_id = kubelet.get("resourceId")
    if isinstance(resource_id, str) and resource_id and not placeholder(resource_id):
        identity = next((i for i in snapshot.azure.identities() if same_id(i.get("id"), resource_id)), None)
        ids = (identity or {}).get("properties") or kubelet
        client_id = str(ids.get("clientId") or "")
        principal_id = str(ids.get("principalId") or ids.get("objectId") or "")
        role = _pod_identity_role(resource_id, client_id, target, pod_ids, pod_clients) or "kubelet"
        subject = DeclaredOnNodes("kubelet identity", "managedCluster", cluster,
                                  "properties.identityProfile.kubeletidentity.resourceId", None,
                                  [Assigned(resource_id, client_id, principal_id, role)])
        subjects[f"kubelet/{subject.name}"] = subject
    else:
        reasons.append(f"the kubelet identity of cluster {cluster.get('name')} is the one AKS makes at deployment "
                       "(the files name none)")
    if not subjects:
        raise NotApplicable(f"the files put no identity on a node pool's VMs: {'; '.join(reasons)}; what AKS assigns to "
                            "the scale sets it makes needs a live environment")
    return subjects


def _where(snapshot: Snapshot, resource: dict[str, Any]) -> str:
    """`plan.json:12, azurerm_kubernetes_cluster.aks`: where the files declare a resource."""
    place = (snapshot.document.get("sources") or {}).get(str(resource.get("id", "")).lower()) or {}
    at = f"{place['file']}:{place.get('line')}" if place.get("file") else ""
    return ", ".join(part for part in (at, place.get("address")) if part) or str(resource.get("id"))


def _restricted_everywhere(snapshot: Snapshot, pool: str | None) -> str | None:
    """AKS's IMDS restriction for a pool, or (pool None: the kubelet identity is on every pool) for all of them."""
    if pool is not None:
        return _imds_restricted(snapshot, pool)
    found = _imds_restricted(snapshot, "")
    pools = [p for p in _cluster_props(snapshot).get("agentPoolProfiles") or [] if isinstance(p, dict)]
    if found is None and pools and all(_imds_restricted(snapshot, str(p.get("name", ""))) for p in pools):
        found = "properties.agentPoolProfiles[*].podLinkLocalAccess"
    return found


def _judge_declared(subject: DeclaredOnNodes, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    resource, where = subject.resource, _where(snapshot, subject.resource)
    for assigned in subject.assigned:
        held, rights = _rights(snapshot, assigned.principal_id)
        field_path = subject.field if subject.what == "kubelet identity" else path_text(
            "identity", "userAssignedIdentities", assigned.resource_id)
        evidence.arm(subject.entry, resource, field_path,
                     note=f"{assigned.name}: {assigned.role}" + ("" if assigned.judged else f" (information): {rights}"))
        for assignment in held:
            evidence.arm("roleAssignments", assignment, "properties.roleDefinitionId", "properties.scope",
                         note=f"a right of {assigned.name}")
    judged = [a for a in subject.assigned if a.judged]
    if not judged:
        return  # only identities pod identity never used: listed above
    cluster = snapshot.azure.managed_cluster() or {}
    restricted = _restricted_everywhere(snapshot, subject.pool)
    if restricted is not None:
        evidence.arm("managedCluster", cluster, restricted,
                     note="AKS's IMDS restriction: pods without hostNetwork get no IMDS")
        return
    findings = "; ".join(f"identity {a.name} ({a.role.split(': ', 1)[-1]}; it holds {_rights(snapshot, a.principal_id)[1]})"
                         for a in judged)
    if subject.what == "kubelet identity":
        evidence.fix(f"give cluster {subject.name} a kubelet identity of its own ({where}: kubelet_identity / "
                     "identityProfile.kubeletidentity) and keep the pod identity's identity for its workloads")
        raise AssertionError(
            f"the plan or template makes the kubelet identity of cluster {subject.name} ({where}) {findings}: AKS "
            "assigns the kubelet identity to the scale set of every node pool for the cluster's life, so it cannot be "
            "removed at cutover, and every pod NMI does not intercept (hostNetwork pods always, every pod once pod "
            "identity is gone) gets its tokens from IMDS by asking with client_id=<its client id>")
    served, because = pod_identity_served(snapshot)
    evidence.arm("managedCluster", cluster, "properties.podIdentityProfile.enabled", note=because)
    off = files_turn_pod_identity_off(snapshot)
    if off is None:
        state = f"the files keep pod identity on ({because})" if served else because
        raise EvidenceNotCollected(
            f"scale set {subject.name} ({where}) carries {findings}; {state}: whether NMI intercepts IMDS on every "
            "node of that pool needs a live environment")
    evidence.fix("; ".join(f"remove {a.resource_id} from the identities of scale set {subject.name} ({where})"
                           for a in judged))
    raise AssertionError(
        f"scale set {subject.name} ({where}) carries {findings}; the plan or template turns pod identity off ({off}), "
        "so nothing intercepts IMDS on its VMs: any pod there gets those tokens by asking IMDS with "
        "client_id=<its client id>")


def _imds_restricted(snapshot: Snapshot, pool: str) -> str | None:
    """Where AKS's IMDS restriction (preview) is on for this pool: the cluster's or the agent pool's setting."""
    props = _cluster_props(snapshot)
    if str((props.get("networkProfile") or {}).get("podLinkLocalAccess") or "").lower() == RESTRICTED:
        return "properties.networkProfile.podLinkLocalAccess"
    for index, profile in enumerate(props.get("agentPoolProfiles") or []):
        if str(profile.get("name", "")).lower() == pool.lower() and \
                str(profile.get("podLinkLocalAccess") or "").lower() == RESTRICTED:
            return f"properties.agentPoolProfiles[{index}].podLinkLocalAccess"
    return None


def _nmi_ready_nodes(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """node name → a Ready NMI pod on it: the nodes where NMI intercepts IMDS."""
    return {pod["spec"]["nodeName"]: pod for pod in snapshot.kube.pods()
            if is_nmi(pod) and is_pod_ready(pod) and (pod.get("spec") or {}).get("nodeName")}


def _rights(snapshot: Snapshot, principal_id: str) -> tuple[list[dict[str, Any]], str]:
    held = facts.role_assignments(snapshot, principal_id) if principal_id else []
    definitions = snapshot.azure.role_definitions()
    text = "; ".join(f"{role_name(role_guid(a['properties']['roleDefinitionId']), definitions)} on "
                     f"{a['properties']['scope']}" for a in held)
    return held, text or "no role assignment aksid read"


def _names(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


@check(
    "MIG-002", "no identity pod identity put on a node pool's scale set stays there unless NMI intercepts IMDS on "
    "every node of that pool (or AKS's IMDS restriction is on)", "critical",
    remediation="Remove the identity from the scale set (`az vmss identity remove --resource-group <node resource "
                "group> --name <scale set> --identities <identity id>`) once no workload takes it through pod "
                "identity (workloads on workload identity do not need it there); until then keep NMI ready on every "
                "node of the pool. IMDS hands a scale set's identities to any pod that names their client id.",
    subjects=scale_sets,
    reads=("azure:scaleSets", "azure:managedCluster", "azure:identities", "azure:roleAssignments",
           "azure:roleDefinitions", "kube:Node", "kube:Pod", "kube:AzureIdentity", "kube:ServiceAccount"),
    groups=("azure:scaleSets",),
)
def test_no_pod_identity_left_reachable_on_scale_set(subject: ScaleSet | DeclaredOnNodes, snapshot: Snapshot,
                                                     target: Target, evidence: Evidence) -> None:
    if isinstance(subject, DeclaredOnNodes):
        _judge_declared(subject, snapshot, target, evidence)
        return
    resource, name = subject.resource, str(subject.resource.get("name"))
    evidence.arm("scaleSets", resource, "name", "identity.type")
    definitions = snapshot.azure.role_definitions()
    for assigned in subject.assigned:
        field_path = path_text("identity", "userAssignedIdentities", assigned.resource_id)
        held, rights = _rights(snapshot, assigned.principal_id)
        evidence.arm("scaleSets", resource, field_path,
                     note=f"{assigned.name}: {assigned.role}" + ("" if assigned.judged else f" (information): {rights}"))
        for assignment in held:
            definition = next((d for d in definitions
                               if role_guid(d.get("id", "")) == role_guid(assignment["properties"]["roleDefinitionId"])),
                              None)
            evidence.arm("roleAssignments", assignment, "properties.roleDefinitionId", "properties.scope",
                         note=f"a right of {assigned.name}" + (f" ({definition['properties']['roleName']})"
                                                                if definition else ""))
    judged = [a for a in subject.assigned if a.judged]
    if not judged:
        return  # only the kubelet's, the add-ons' or identities pod identity never used: listed above
    restricted = _imds_restricted(snapshot, subject.pool)
    if restricted is not None:
        evidence.arm("managedCluster", snapshot.azure.managed_cluster() or {}, restricted,
                     note="AKS's IMDS restriction: pods without hostNetwork get no IMDS")
        return
    ready = _nmi_ready_nodes(snapshot)
    uncovered = []
    for node in subject.nodes:
        node_name = node["metadata"]["name"]
        if node_name in ready:
            evidence.kube(node, "spec.providerID", note=f"a node of scale set {name}")
            evidence.kube(ready[node_name], "spec.nodeName", note="NMI intercepts IMDS on this node")
            evidence.kube_condition(ready[node_name], "Ready")
        else:
            uncovered.append(node_name)
            evidence.kube(node, "spec.providerID",
                          note=f"a node of scale set {name} with no Ready NMI pod: IMDS answers its pods")
    if not uncovered:
        return
    group = subject.node_group or "<node resource group>"
    evidence.fix("; ".join(f"az vmss identity remove --resource-group {group} --name {name} --identities "
                           f"{a.resource_id}" for a in judged))
    findings = []
    for assigned in judged:
        _held, rights = _rights(snapshot, assigned.principal_id)
        findings.append(f"identity {assigned.name} (client id {assigned.client_id}; {assigned.role.split(': ', 1)[-1]}), "
                        f"which holds {rights}")
    raise AssertionError(
        f"scale set {name} (pool {subject.pool}) carries {'; '.join(findings)}; NMI does not intercept IMDS on "
        f"{len(uncovered)} of its {len(subject.nodes)} node(s) ({_names(uncovered)}), so any pod there gets those "
        f"tokens by asking IMDS with client_id=<its client id>")
