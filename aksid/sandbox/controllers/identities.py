"""Who may act as which identity, read from the stores as aad-pod-identity (managed mode) and ARM decide it."""

from __future__ import annotations

from typing import Any

from aksid.arm_ids import can_write_dns, contains, role_guid, same_id
from aksid.sandbox.controllers.world import World

GROUP = "aadpodidentity.k8s.io"
SELECTOR_LABEL = "aadpodidbinding"


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


def on_node_pool(world: World, resource_id: str) -> bool:
    """Whether the add-on assigned the identity to the node pool (any pod identity of the profile names it)."""
    return any(same_id(identity.get("id"), resource_id) for identity in node_pool_identities(world))


def bound_identity(world: World, pod: dict[str, Any]) -> dict[str, Any] | None:
    """The identity this pod can get through NMI: matched, and on the node pool (else IMDS knows no such identity)."""
    resource_id = matched_identity_id(world, pod)
    if resource_id is None or not on_node_pool(world, resource_id):
        return None
    return identity_resource(world, resource_id)


def node_pool_identities(world: World) -> list[dict[str, Any]]:
    """What IMDS on a node hands out without NMI: every identity the add-on assigned to the scale set."""
    cluster = managed_cluster(world) or {}
    profile = (cluster.get("properties") or {}).get("podIdentityProfile") or {}
    found = []
    for entry in profile.get("userAssignedIdentities") or []:
        if entry.get("provisioningState") not in ("Assigned", "Succeeded"):
            continue
        resource = identity_resource(world, (entry.get("identity") or {}).get("resourceId") or "")
        if resource is not None and resource not in found:
            found.append(resource)
    return found


def workload_identity(world: World, namespace: str, deployment: str) -> dict[str, Any] | None:
    """The identity the pods of a Deployment act as (through their selector label)."""
    found = world.kube.get("apps", "Deployment", namespace, deployment)
    if found is None:
        return None
    template = {"metadata": {"namespace": namespace,
                             "labels": ((found["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}}}
    return bound_identity(world, template)


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
