"""Who may act as which identity, read from the stores as aad-pod-identity (managed mode), Entra ID's token exchange
(workload identity's federated credentials) and ARM decide it."""

from __future__ import annotations

from typing import Any

from aksid.arm_ids import can_write_dns, contains, role_guid, same_id
from aksid.sandbox.controllers.world import World

GROUP = "aadpodidentity.k8s.io"
SELECTOR_LABEL = "aadpodidbinding"
FEDERATED_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
WI_USE_LABEL = "azure.workload.identity/use"
WI_CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
WI_AUDIENCE = "api://AzureADTokenExchange"
# kube-apiserver's --service-account-issuer on AKS when the OIDC issuer is off: Entra cannot fetch its keys.
IN_CLUSTER_ISSUER = "https://kubernetes.default.svc.cluster.local"


def arm_of_type(world: World, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in world.arm.resources() if str(r.get("type", "")).lower() == resource_type.lower()]


def managed_cluster(world: World) -> dict[str, Any] | None:
    found = arm_of_type(world, "Microsoft.ContainerService/managedClusters")
    return found[0] if found else None


def identity_resource(world: World, resource_id: str) -> dict[str, Any] | None:
    return next((r for r in arm_of_type(world, "Microsoft.ManagedIdentity/userAssignedIdentities")
                 if same_id(r.get("id"), resource_id)), None)


def matched_identity_id(world: World, pod: dict[str, Any]) -> str | None:
    """The resourceID NMI matches for this pod in managed mode: selector label → binding → AzureIdentity, all in
    the pod's namespace; None when nothing matches."""
    namespace = pod["metadata"].get("namespace")
    selector = (pod["metadata"].get("labels") or {}).get(SELECTOR_LABEL)
    if not selector:
        return None
    for binding in world.kube.list_kind(GROUP, "AzureIdentityBinding", namespace):
        if (binding.get("spec") or {}).get("selector") != selector:
            continue
        azure_identity = world.kube.get(GROUP, "AzureIdentity", namespace, (binding.get("spec") or {}).get("azureIdentity"))
        resource_id = ((azure_identity or {}).get("spec") or {}).get("resourceID")
        if resource_id:
            return str(resource_id)
    return None


SCALE_SET_TYPE = "Microsoft.Compute/virtualMachineScaleSets"


def on_node_pool(world: World, resource_id: str, node: str | None = None) -> bool:
    """Whether the identity is assigned to the node's scale set (to any node pool's when the node is not known)."""
    return any(same_id(identity.get("id"), resource_id) for identity in node_pool_identities(world, node))


def bound_identity(world: World, pod: dict[str, Any]) -> dict[str, Any] | None:
    """The identity this pod can get through NMI: matched, and on its node's scale set (else IMDS knows no such
    identity)."""
    resource_id = matched_identity_id(world, pod)
    if resource_id is None or not on_node_pool(world, resource_id, (pod.get("spec") or {}).get("nodeName")):
        return None
    return identity_resource(world, resource_id)


def node_scale_set(world: World, node: str | None) -> dict[str, Any] | None:
    """The scale set a node is an instance of, by its providerID (`azure:///subscriptions/.../virtualMachineScaleSets/
    <name>/virtualMachines/<n>`), as the cloud provider names it."""
    found = world.kube.get("", "Node", None, node) if node else None
    provider_id = str(((found or {}).get("spec") or {}).get("providerID") or "")
    marker = "/virtualmachinescalesets/"
    if marker not in provider_id.lower():
        return None
    start = provider_id.lower().index(marker) + len(marker)
    name = provider_id[start:].split("/", 1)[0]
    return next((s for s in arm_of_type(world, SCALE_SET_TYPE) if str(s.get("name", "")).lower() == name.lower()), None)


def scale_set_identities(world: World, scale_set: dict[str, Any]) -> list[dict[str, Any]]:
    """The user-assigned identities of a scale set (`identity.userAssignedIdentities`), as stored identities where the
    store holds them, else as IMDS knows them (the id with its client and principal ids)."""
    cluster = managed_cluster(world) or {}
    tenant = (cluster.get("identity") or {}).get("tenantId")
    found = []
    for resource_id, ids in ((scale_set.get("identity") or {}).get("userAssignedIdentities") or {}).items():
        found.append(identity_resource(world, resource_id) or {
            "id": resource_id, "name": resource_id.rsplit("/", 1)[-1],
            "properties": {"clientId": (ids or {}).get("clientId"), "principalId": (ids or {}).get("principalId"),
                           "tenantId": tenant}})
    return found


def imds_restricted(world: World, node: str | None) -> bool:
    """AKS's IMDS restriction (preview): `networkProfile.podLinkLocalAccess: None` on the cluster, or on the node's
    agent pool, keeps every pod with hostNetwork=false from 169.254.169.254 (the default, "IMDS", lets them reach it)."""
    props = (managed_cluster(world) or {}).get("properties") or {}
    if str((props.get("networkProfile") or {}).get("podLinkLocalAccess") or "").lower() == "none":
        return True
    found = world.kube.get("", "Node", None, node) if node else None
    labels = ((found or {}).get("metadata") or {}).get("labels") or {}
    pool = labels.get("kubernetes.azure.com/agentpool") or labels.get("agentpool")
    return any(str(p.get("name", "")).lower() == str(pool).lower()
               and str(p.get("podLinkLocalAccess") or "").lower() == "none" for p in props.get("agentPoolProfiles") or [])


def node_pool_identities(world: World, node: str | None = None) -> list[dict[str, Any]]:
    """What IMDS on a node hands out without NMI: every identity assigned to the node's scale set (Azure IMDS: a VM
    gets tokens for the user-assigned identities of its scale set, by client id). With no node named, those of every
    scale set. The kubelet identity comes last (the order the add-on's assignments and a leaky NMI's answer follow).

    A node whose scale set the ARM store does not hold (a scenario without one) falls back to what AKS would have
    assigned: every pod identity of podIdentityProfile, then the kubelet identity, which AKS assigns to every node
    pool's scale set (a cluster with a managed kubelet identity always has at least that one, so a request without a
    client id meets IMDS's "Multiple user assigned identities" as soon as the add-on assigned one more)."""
    cluster = managed_cluster(world) or {}
    kubelet_id = ((((cluster.get("properties") or {}).get("identityProfile") or {}).get("kubeletidentity") or {})
                  .get("resourceId") or "")
    scale_sets = arm_of_type(world, SCALE_SET_TYPE)
    own = node_scale_set(world, node)
    if own is not None or (scale_sets and not node):
        chosen = [own] if own is not None else scale_sets
        assigned: list[dict[str, Any]] = []
        for scale_set in chosen:
            for identity in scale_set_identities(world, scale_set):
                if not any(same_id(identity.get("id"), a.get("id")) for a in assigned):
                    assigned.append(identity)
        return sorted(assigned, key=lambda i: same_id(i.get("id"), kubelet_id))
    profile = (cluster.get("properties") or {}).get("podIdentityProfile") or {}
    found = []
    for entry in profile.get("userAssignedIdentities") or []:
        if entry.get("provisioningState") not in ("Assigned", "Succeeded"):
            continue
        resource = identity_resource(world, (entry.get("identity") or {}).get("resourceId") or "")
        if resource is not None and resource not in found:
            found.append(resource)
    kubelet = (((cluster.get("properties") or {}).get("identityProfile") or {}).get("kubeletidentity") or {})
    resource = identity_resource(world, kubelet.get("resourceId") or "")
    if resource is not None and resource not in found:
        found.append(resource)
    return found


def workload_identity(world: World, namespace: str, deployment: str) -> dict[str, Any] | None:
    """The identity the pods of a Deployment act as: through their selector label (pod identity), else through
    their ServiceAccount's client-id annotation and a federated credential that trusts it (workload identity)."""
    found = world.kube.get("apps", "Deployment", namespace, deployment)
    if found is None:
        return None
    pod_template = found["spec"].get("template") or {}
    labels = (pod_template.get("metadata") or {}).get("labels") or {}
    identity = bound_identity(world, {"metadata": {"namespace": namespace, "labels": labels}})
    if identity is not None or str(labels.get(WI_USE_LABEL, "")).lower() != "true":
        return identity
    spec = pod_template.get("spec") or {}
    account_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    account = service_account(world, namespace, account_name) or {}
    client_id = ((account.get("metadata") or {}).get("annotations") or {}).get(WI_CLIENT_ID_ANNOTATION)
    identity = identity_by_client_id(world, client_id)
    subject = f"system:serviceaccount:{namespace}:{account_name}"
    trusted = identity is not None and trusting_credential(
        world, identity, service_account_issuer(world), subject, [WI_AUDIENCE]) is not None
    return identity if trusted else None


def service_account(world: World, namespace: str, name: str) -> dict[str, Any] | None:
    """A ServiceAccount; `default` exists in every namespace (the ServiceAccount controller makes it), so a scenario
    that does not list it still has it."""
    found = world.kube.get("", "ServiceAccount", namespace, name)
    if found is None and name == "default":
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}
    return found


def service_account_issuer(world: World) -> str:
    """The `iss` of the cluster's ServiceAccount tokens: the OIDC issuer URL when it is enabled (AKS)."""
    oidc = ((managed_cluster(world) or {}).get("properties") or {}).get("oidcIssuerProfile") or {}
    return str(oidc["issuerURL"]) if oidc.get("enabled") and oidc.get("issuerURL") else IN_CLUSTER_ISSUER


def identity_by_client_id(world: World, client_id: str | None) -> dict[str, Any] | None:
    if not client_id:
        return None
    return next((r for r in arm_of_type(world, "Microsoft.ManagedIdentity/userAssignedIdentities")
                 if str((r.get("properties") or {}).get("clientId", "")).lower() == client_id.lower()), None)


def federated_credentials(world: World, identity: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = f"{identity.get('id', '')}/federatedIdentityCredentials/".lower()
    return [c for c in arm_of_type(world, FEDERATED_TYPE) if str(c.get("id", "")).lower().startswith(prefix)]


def trusting_credential(world: World, identity: dict[str, Any], issuer: str, subject: str,
                        audiences: list[str]) -> dict[str, Any] | None:
    """The federated credential Entra ID matches to an assertion: issuer and subject equal as strings (a trailing
    slash counts), and one of the assertion's audiences among the credential's."""
    for credential in federated_credentials(world, identity):
        props = credential.get("properties") or {}
        if props.get("issuer") == issuer and props.get("subject") == subject and set(
                props.get("audiences") or []) & set(audiences):
            return credential
    return None


def can_write_zone(world: World, identity: dict[str, Any] | None, zone_id: str) -> bool:
    """Whether the identity's principal holds, at the zone or above it, a role that writes record sets."""
    if identity is None:
        return False
    principal = (identity.get("properties") or {}).get("principalId")
    definitions = {role_guid(d.get("id", "")): d for d in arm_of_type(world, "Microsoft.Authorization/roleDefinitions")}
    for assignment in arm_of_type(world, "Microsoft.Authorization/roleAssignments"):
        props = assignment.get("properties") or {}
        if props.get("principalId") != principal or not contains(props.get("scope") or "", zone_id):
            continue
        guid = role_guid(props.get("roleDefinitionId") or "")
        if can_write_dns(guid, definitions.get(guid)):
            return True
    return False
