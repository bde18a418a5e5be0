"""NMI as the AKS add-on runs it (managed mode), answering one pod's token request.

A pod's traffic to 169.254.169.254 reaches NMI when NMI runs on its node and nothing lets it bypass
the redirect (hostNetwork, an AzurePodIdentityException of its namespace); NMI then hands out the
identity bound to the pod, or refuses (404). A pod that bypasses NMI reaches IMDS itself, which hands
out the node pool's identities. The knob `nmi: {leaky: true}` stands for a broken NMI that answers
every pod with the node pool's identity.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aksid.sandbox.controllers.identities import (
    GROUP,
    bound_identity,
    identity_resource,
    imds_restricted,
    managed_cluster,
    matched_identity_id,
    node_pool_identities,
)
from aksid.sandbox.controllers.world import World
from aksid.workloads import selector_matches

ARM_RESOURCE = "https://management.azure.com/"


IMDS_SERVER = "IMDS/150.870.65.1854"  # the Server header IMDS answers with; NMI (a Go server) sends none


def answer(world: World, pod: dict[str, Any], metadata_header: str | None,
           client_id: str | None = None) -> tuple[int, dict[str, Any] | str, str]:
    """(HTTP status, JSON body or error text, who answered: "nmi", "imds" or "blocked": nobody, AKS's IMDS
    restriction drops the request) for `GET
    /metadata/identity/oauth2/token[&client_id=...]` from this pod."""
    if metadata_header != "true":
        return 400, "Required metadata header not specified", "nmi"
    if (world.knobs.get("nmi") or {}).get("leaky"):
        pool = node_pool_identities(world, (pod.get("spec") or {}).get("nodeName"))
        return (200, _token(world, pool[0]), "nmi") if pool else (404, "no identity", "nmi")
    if _bypasses_nmi(world, pod):
        if imds_restricted(world, (pod.get("spec") or {}).get("nodeName")) and not (pod.get("spec") or {}).get(
                "hostNetwork"):
            return 0, "", "blocked"  # the node drops the pod's packets: no answer at all
        return (*_imds(world, client_id, (pod.get("spec") or {}).get("nodeName")), "imds")
    namespace, name = pod["metadata"].get("namespace"), pod["metadata"]["name"]
    resource_id = matched_identity_id(world, pod)
    if resource_id is None:
        return 404, f"no azure identity found for request clientID {client_id or ''} (pod {namespace}/{name})", "nmi"
    matched = identity_resource(world, resource_id) or {}
    if client_id and str((matched.get("properties") or {}).get("clientId", "")).lower() != client_id.lower():
        return 403, (f"clientID in request: {client_id}, pod {namespace}/{name} has no matching identity "
                     "(managed mode only hands out the pod's own)"), "nmi"
    identity = bound_identity(world, pod)
    if identity is None:  # matched in the cluster, but the add-on did not assign it to the node pool
        return 403, (f"failed to get service principal token for pod:{namespace}/{name}, error: adal: Refresh request "
                     "failed. Status Code = '400'. Response body: {\"error\":\"invalid_request\","
                     "\"error_description\":\"Identity not found\"}"), "nmi"
    return 200, _token(world, identity), "nmi"


def _imds(world: World, client_id: str | None, node: str | None = None) -> tuple[int, dict[str, Any]]:
    """IMDS itself: the identities assigned to the node's scale set, by client id, or the only one. Any pod that
    reaches it gets them (NMI absent, not ready, bypassed): a scale set's identity answers every pod of its nodes."""
    pool = node_pool_identities(world, node)
    if client_id:
        wanted = next((i for i in pool if str((i.get("properties") or {}).get("clientId", "")).lower()
                       == client_id.lower()), None)
        if wanted is None:
            return 400, {"error": "invalid_request", "error_description": "Identity not found"}
        return 200, _token(world, wanted)
    if len(pool) == 1:
        return 200, _token(world, pool[0])
    if not pool:
        return 400, {"error": "invalid_request", "error_description": "Identity not found"}
    return 400, {"error": "invalid_request", "error_description": "Multiple user assigned identities exist, please "
                                                                  "specify the clientId / resourceId of the identity "
                                                                  "in the token request"}


def _bypasses_nmi(world: World, pod: dict[str, Any]) -> bool:
    if (pod.get("spec") or {}).get("hostNetwork"):
        return True
    namespace = pod["metadata"].get("namespace")
    labels = pod["metadata"].get("labels") or {}
    for exception in world.kube.list_kind(GROUP, "AzurePodIdentityException", namespace):
        pod_labels = (exception.get("spec") or {}).get("podLabels") or {}
        if pod_labels and selector_matches({"matchLabels": pod_labels}, labels):
            return True
    return not _nmi_ready_on(world, (pod.get("spec") or {}).get("nodeName"))


def _nmi_ready_on(world: World, node: str | None) -> bool:
    nmi = [pod for pod in world.kube.list_kind("", "Pod", "kube-system")
           if ((pod["metadata"].get("labels") or {}).get("component") == "nmi"
               or (pod["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "nmi")
           and (pod.get("spec") or {}).get("nodeName") == node]
    return any(any(c.get("type") == "Ready" and c.get("status") == "True" for c in (p.get("status") or {}).get(
        "conditions") or []) for p in nmi)


def _token(world: World, identity: dict[str, Any]) -> dict[str, Any]:
    """What IMDS returns: a JWT whose payload names the identity (the signature is a placeholder: never checked)."""
    props = identity.get("properties") or {}
    now = int(time.time())
    cluster = managed_cluster(world) or {}
    claims = {"aud": ARM_RESOURCE, "iss": f"https://sts.windows.net/{props.get('tenantId')}/", "iat": now, "nbf": now,
              "exp": now + 86400, "oid": props.get("principalId"), "appid": props.get("clientId"),
              "tid": props.get("tenantId"), "xms_mirid": identity.get("id"), "idtyp": "app",
              "xms_az_rid": cluster.get("id")}
    token = ".".join(_b64(part) for part in ({"typ": "JWT", "alg": "RS256"}, claims)) + ".c2FuZGJveA"
    return {"access_token": token, "client_id": props.get("clientId"), "expires_in": "86399",
            "expires_on": str(now + 86400), "ext_expires_in": "86399", "not_before": str(now),
            "resource": ARM_RESOURCE, "token_type": "Bearer"}


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
