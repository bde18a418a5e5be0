"""Which identity model gives each workload its Azure identity: pod identity, workload identity, both or none.

Pod identity is in use when the AKS add-on is enabled or AzureIdentityBindings exist; workload identity when
the cluster has it enabled or a ServiceAccount carries a client-id annotation. A check of a model that is not
in use is skipped with that reason (a cluster on workload identity only is not red on NMI-001).
Read from the evidence only, as the checks are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aksid.check_info import IDENTITY_MODELS
from aksid.pod_identity_components import component
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot

POD_IDENTITY, WORKLOAD_IDENTITY = IDENTITY_MODELS
MODELS = IDENTITY_MODELS

POD_IDENTITY_GROUP = "aadpodidentity.k8s.io/v1"
POD_IDENTITY_LABEL = "aadpodidbinding"
# The azure-workload-identity webhook's names (pkg/webhook/consts.go).
WI_USE_LABEL = "azure.workload.identity/use"
WI_CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
WI_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class Presence:
    """Whether a model is in use: True, False, or None when the evidence to tell could not be read."""

    model: str
    present: bool | None
    because: str


@dataclass(frozen=True)
class Binding:
    """One way a workload reaches an identity."""

    model: str
    client_id: str | None
    via: str
    identity: str | None = None  # the Azure identity's name, when the client id is one Azure listed


@dataclass
class WorkloadModels:
    kind: str
    namespace: str
    name: str
    service_account: str
    bindings: list[Binding] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"

    @property
    def models(self) -> set[str]:
        return {binding.model for binding in self.bindings}

    @property
    def model(self) -> str:
        return describe(self.models)


def describe(models: set[str]) -> str:
    """`pod-identity`, `workload-identity`, `both` or `none`."""
    if len(models) > 1:
        return "both"
    return next(iter(models), "none")


def _read(reader: Callable[[], Any]) -> tuple[Any, str | None]:
    """(value, None), or (None, why it could not be read)."""
    try:
        return reader(), None
    except (EvidenceUnavailable, EvidenceNotCollected) as exc:
        return None, str(exc)


def _cluster_properties(snapshot: Snapshot) -> tuple[dict[str, Any] | None, str | None]:
    cluster, problem = _read(snapshot.azure.managed_cluster)
    if problem is not None:
        return None, problem
    return (cluster or {}).get("properties") or {}, None


def pod_identity_presence(snapshot: Snapshot) -> Presence:
    props, arm_problem = _cluster_properties(snapshot)
    enabled = bool(((props or {}).get("podIdentityProfile") or {}).get("enabled"))
    if enabled:
        return Presence(POD_IDENTITY, True, "the AKS pod-identity add-on is enabled (podIdentityProfile.enabled)")
    bindings, kube_problem = _read(lambda: snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentityBinding"))
    if bindings:
        return Presence(POD_IDENTITY, True, f"{len(bindings)} AzureIdentityBinding object(s) exist")
    installed = _self_installed(snapshot)
    if installed:  # aad-pod-identity from its own manifests or chart: its NMI/MIC make pod identity live
        return Presence(POD_IDENTITY, True, f"aad-pod-identity is installed ({', '.join(installed)})")
    if arm_problem is not None and kube_problem is not None:
        return Presence(POD_IDENTITY, None, f"cannot tell whether pod identity is in use: {arm_problem}; {kube_problem}")
    return Presence(POD_IDENTITY, False, "no pod identity in use: the pod-identity add-on is not enabled and no "
                                         "AzureIdentityBinding exists")


def _self_installed(snapshot: Snapshot) -> list[str]:
    """aad-pod-identity's own NMI DaemonSets and MIC Deployments, recognised by what they run."""
    found = []
    for reader in (snapshot.kube.daemonsets, snapshot.kube.deployments):
        workloads, _problem = _read(reader)
        for workload in workloads or []:
            part = component(workload)
            if part is not None:
                meta = workload.get("metadata") or {}
                found.append(f"{part.upper()} {workload.get('kind', '').lower()} {meta.get('namespace')}/{meta.get('name')}")
    return found


def workload_identity_presence(snapshot: Snapshot) -> Presence:
    props, arm_problem = _cluster_properties(snapshot)
    enabled = bool((((props or {}).get("securityProfile") or {}).get("workloadIdentity") or {}).get("enabled"))
    if enabled:
        return Presence(WORKLOAD_IDENTITY, True, "the cluster has workload identity enabled "
                                                 "(securityProfile.workloadIdentity.enabled)")
    accounts, kube_problem = _read(snapshot.kube.service_accounts)
    annotated = [sa for sa in accounts or [] if _client_id_of(sa)]
    if annotated:
        return Presence(WORKLOAD_IDENTITY, True,
                        f"{len(annotated)} ServiceAccount(s) carry the annotation {WI_CLIENT_ID_ANNOTATION}")
    if arm_problem is not None and kube_problem is not None:
        return Presence(WORKLOAD_IDENTITY, None,
                        f"cannot tell whether workload identity is in use: {arm_problem}; {kube_problem}")
    return Presence(WORKLOAD_IDENTITY, False, "no workload identity in use: the cluster does not have it enabled and "
                                              f"no ServiceAccount carries {WI_CLIENT_ID_ANNOTATION}")


def presence(snapshot: Snapshot, model: str) -> Presence:
    if model == POD_IDENTITY:
        return pod_identity_presence(snapshot)
    if model == WORKLOAD_IDENTITY:
        return workload_identity_presence(snapshot)
    raise ValueError(f"unknown identity model {model!r}; models are {', '.join(MODELS)}")


def skip_reason(snapshot: Snapshot, model: str | None) -> str | None:
    """Why a check of `model` does not apply here, or None when it does (or when it cannot be told: then it runs)."""
    if model is None:
        return None
    found = presence(snapshot, model)
    return found.because if found.present is False else None


def _client_id_of(service_account: dict[str, Any]) -> str | None:
    value = ((service_account.get("metadata") or {}).get("annotations") or {}).get(WI_CLIENT_ID_ANNOTATION)
    return str(value).strip() or None if value is not None else None


def uses_workload_identity(pod_labels: dict[str, str] | None) -> bool:
    """The webhook mutates only pods labelled azure.workload.identity/use: "true" (its objectSelector)."""
    return str((pod_labels or {}).get(WI_USE_LABEL, "")).lower() == "true"


def injected_client_id(pod_spec: dict[str, Any]) -> str | None:
    """An AZURE_CLIENT_ID set on a container (the webhook's injection, or written by hand)."""
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        for env in container.get("env") or []:
            if env.get("name") == "AZURE_CLIENT_ID" and env.get("value"):
                return str(env["value"])
    return None


def service_account_name(pod_spec: dict[str, Any]) -> str:
    return pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"


def _template(workload: dict[str, Any]) -> dict[str, Any]:
    return ((workload.get("spec") or {}).get("template")) or {}


def workload_models(snapshot: Snapshot) -> list[WorkloadModels]:
    """Every Deployment and DaemonSet with the identities its pod template reaches, and through which model.

    Pod identity: the template's aadpodidbinding label matches an AzureIdentityBinding of its namespace, whose
    AzureIdentity names the client id. Workload identity: the template is labelled azure.workload.identity/use
    and its ServiceAccount carries the client-id annotation (or a container sets AZURE_CLIENT_ID itself).
    """
    names = _identity_names(snapshot)
    accounts = {(sa["metadata"].get("namespace"), sa["metadata"]["name"]): sa
                for sa in _read(snapshot.kube.service_accounts)[0] or []}
    bindings = _read(lambda: snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentityBinding"))[0] or []
    identities = {(i["metadata"].get("namespace"), i["metadata"]["name"]): i
                  for i in _read(lambda: snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentity"))[0] or []}
    found = []
    for kind, reader in (("Deployment", snapshot.kube.deployments), ("DaemonSet", snapshot.kube.daemonsets)):
        for workload in _read(reader)[0] or []:
            template = _template(workload)
            labels = (template.get("metadata") or {}).get("labels") or {}
            spec = template.get("spec") or {}
            namespace = workload["metadata"].get("namespace") or "default"
            entry = WorkloadModels(kind, namespace, workload["metadata"]["name"], service_account_name(spec))
            selector = labels.get(POD_IDENTITY_LABEL)
            for binding in bindings:
                if binding["metadata"].get("namespace") != namespace or (binding.get("spec") or {}).get(
                        "selector") != selector or selector is None:
                    continue
                azure_identity = identities.get((namespace, (binding.get("spec") or {}).get("azureIdentity")))
                client_id = ((azure_identity or {}).get("spec") or {}).get("clientID")
                entry.bindings.append(Binding(
                    POD_IDENTITY, client_id, f"AzureIdentityBinding {namespace}/{binding['metadata']['name']} "
                    f"(selector {selector})", names.get(str(client_id).lower())))
            if uses_workload_identity(labels):
                account = accounts.get((namespace, entry.service_account))
                client_id = _client_id_of(account) if account else None
                via = f"ServiceAccount {namespace}/{entry.service_account} annotation {WI_CLIENT_ID_ANNOTATION}"
                if client_id is None and (client_id := injected_client_id(spec)) is not None:
                    via = f"AZURE_CLIENT_ID set in the pod template of {entry.ref}"
                if client_id is not None:
                    entry.bindings.append(Binding(WORKLOAD_IDENTITY, client_id, via, names.get(client_id.lower())))
            if entry.bindings:
                found.append(entry)
    return found


def _identity_names(snapshot: Snapshot) -> dict[str, str]:
    """{client id (lowercase): identity name} of the identities Azure listed."""
    identities = _read(snapshot.azure.identities)[0] or []
    return {str((i.get("properties") or {}).get("clientId")).lower(): i.get("name") for i in identities}


def identity_models(snapshot: Snapshot) -> dict[str, Any]:
    """The `identity_models` section of results.json: the models in use, and per workload which binds it to what."""
    pod, workload = pod_identity_presence(snapshot), workload_identity_presence(snapshot)
    in_use = {p.model for p in (pod, workload) if p.present}
    unknown = any(p.present is None for p in (pod, workload))
    return {
        "cluster": "unknown" if unknown and not in_use else describe(in_use),
        "pod_identity": {"present": pod.present, "because": pod.because},
        "workload_identity": {"present": workload.present, "because": workload.because},
        "workloads": [
            {"workload": entry.ref, "service_account": entry.service_account, "model": entry.model,
             "bindings": [{"model": b.model, "client_id": b.client_id, "identity": b.identity, "via": b.via}
                          for b in entry.bindings]}
            for entry in workload_models(snapshot)
        ],
    }


def header_lines(models: dict[str, Any]) -> list[str]:
    """The report header's lines: the cluster's models, then one line per workload."""
    lines = [f"identity models: {models['cluster']} (pod identity: {models['pod_identity']['because']}; "
             f"workload identity: {models['workload_identity']['because']})"]
    for entry in models["workloads"]:
        reached = ", ".join(f"{b['model']} -> {b['identity'] or b['client_id']}" for b in entry["bindings"])
        lines.append(f"  {entry['workload']}: {entry['model']} ({reached})")
    return lines
