"""The azure-workload-identity mutating webhook, as admission of pods created through the API.

A pod labelled `azure.workload.identity/use: "true"` (the webhook's objectSelector) is mutated when the cluster
runs the webhook: a MutatingWebhookConfiguration with webhook `mutation.azure-workload-identity.io` whose
Service's namespace has a ready `azure-wi-webhook-controller-manager`. Each container gets AZURE_CLIENT_ID (the
ServiceAccount's client-id annotation), AZURE_TENANT_ID (its tenant-id annotation, else the webhook's tenant),
AZURE_FEDERATED_TOKEN_FILE and AZURE_AUTHORITY_HOST, each only when non-empty and not set already, and the
projected ServiceAccount token volume (audience api://AzureADTokenExchange, 3600 s) mounted. Names and paths are
those of webhook releases up to v1.5 (what the AKS add-on runs): volume `azure-identity-token` at
/var/run/secrets/azure/tokens; v1.6 mounts a per-pod `azure-workload-identity-reserved-<hash>` at
/var/run/secrets/azure/wi/token instead, which readers of AZURE_FEDERATED_TOKEN_FILE do not notice.
"""

from __future__ import annotations

import copy
from typing import Any

from aksid.sandbox.controllers.identities import (
    WI_AUDIENCE,
    WI_CLIENT_ID_ANNOTATION,
    WI_USE_LABEL,
    managed_cluster,
    service_account,
)
from aksid.sandbox.controllers.world import World

WEBHOOK_NAME = "mutation.azure-workload-identity.io"
WEBHOOK_DEPLOYMENT = "azure-wi-webhook-controller-manager"
TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
AUTHORITY_HOST = "https://login.microsoftonline.com/"
VOLUME = "azure-identity-token"
MOUNT_PATH = "/var/run/secrets/azure/tokens"
TOKEN_EXPIRATION = 3600


class AdmissionDenied(Exception):
    """The webhook refused the pod (admission.Errored): the message is what the API server relays."""


class AdmissionUnavailable(Exception):
    """The webhook is registered with failurePolicy Fail and nothing answers it: the API server's 500 InternalError
    (the ReplicaSet controller then records FailedCreate with this message)."""


def admit(world: World, pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as the API server stores it after the webhook (unchanged when the webhook does not apply)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if pod.get("kind") != "Pod" or str(labels.get(WI_USE_LABEL, "")).lower() != "true":
        return pod
    tenant = _running_webhook_tenant(world)
    if tenant is None:
        refusing = _unreachable_failing_webhook(world)
        if refusing is not None:  # registered with failurePolicy Fail, but nothing answers: the API server refuses
            raise AdmissionUnavailable(
                f'Internal error occurred: failed calling webhook "{WEBHOOK_NAME}": failed to call webhook: Post '
                f'"https://{refusing}:443/mutate-v1-pod?timeout=10s": no endpoints available for service '
                f'"{refusing}"')
        return pod  # no webhook answers (none registered, or failurePolicy Ignore): the pod is stored as sent
    namespace = pod["metadata"].get("namespace") or "default"
    spec = pod.get("spec") or {}
    account_name = spec.get("serviceAccountName") or "default"
    account = service_account(world, namespace, account_name)
    if account is None:
        raise AdmissionDenied(f'admission webhook "{WEBHOOK_NAME}" denied the request: serviceaccounts '
                              f'"{account_name}" not found')
    annotations = (account.get("metadata") or {}).get("annotations") or {}
    values = {"AZURE_CLIENT_ID": annotations.get(WI_CLIENT_ID_ANNOTATION) or "",
              "AZURE_TENANT_ID": annotations.get(TENANT_ID_ANNOTATION) or tenant,
              "AZURE_FEDERATED_TOKEN_FILE": f"{MOUNT_PATH}/{VOLUME}",
              "AZURE_AUTHORITY_HOST": AUTHORITY_HOST}
    mutated = copy.deepcopy(pod)
    for container in [*(mutated["spec"].get("initContainers") or []), *(mutated["spec"].get("containers") or [])]:
        present = {env.get("name") for env in container.get("env") or []}
        container["env"] = [*(container.get("env") or []),
                            *({"name": k, "value": v} for k, v in values.items() if v and k not in present)]
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != VOLUME]
        container["volumeMounts"] = [*mounts, {"name": VOLUME, "mountPath": MOUNT_PATH, "readOnly": True}]
    volumes = [v for v in mutated["spec"].get("volumes") or [] if v.get("name") != VOLUME]
    mutated["spec"]["volumes"] = [*volumes, {"name": VOLUME, "projected": {"sources": [{"serviceAccountToken": {
        "path": VOLUME, "expirationSeconds": TOKEN_EXPIRATION, "audience": WI_AUDIENCE}}]}}]
    return mutated


def _unreachable_failing_webhook(world: World) -> str | None:
    """The Service (`name.namespace.svc`) of a registered workload identity webhook whose failurePolicy is Fail (the
    default of admissionregistration/v1, and of the add-on's and the chart's configuration) and that has no ready
    replica: pods it selects are refused until it runs again."""
    for configuration in world.kube.list_kind("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
        for webhook in configuration.get("webhooks") or []:
            service = (webhook.get("clientConfig") or {}).get("service") or {}
            if webhook.get("name") != WEBHOOK_NAME or not service.get("namespace"):
                continue
            if str(webhook.get("failurePolicy") or "Fail") != "Fail":
                continue
            return f"{service.get('name')}.{service['namespace']}.svc"
    return None


def _running_webhook_tenant(world: World) -> str | None:
    """The tenant the running webhook is configured with, or None when no ready webhook is sent the pods."""
    for configuration in world.kube.list_kind("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
        for webhook in configuration.get("webhooks") or []:
            service = (webhook.get("clientConfig") or {}).get("service") or {}
            if webhook.get("name") != WEBHOOK_NAME or not service.get("namespace"):
                continue
            deployment = world.kube.get("apps", "Deployment", service["namespace"], WEBHOOK_DEPLOYMENT)
            if deployment is None or not ((deployment.get("status") or {}).get("readyReplicas") or 0):
                continue
            env = {e.get("name"): e.get("value") for c in deployment["spec"]["template"]["spec"].get("containers") or []
                   for e in c.get("env") or []}
            cluster_tenant = ((managed_cluster(world) or {}).get("identity") or {}).get("tenantId")
            return str(env.get("AZURE_TENANT_ID") or cluster_tenant or "")
    return None
