"""BIND: pod identities reach exactly the allowed workloads, and nothing can bypass NMI."""

from __future__ import annotations

from typing import Any

import pytest

from aksid import facts
from aksid.allowed_path import pod_identity_path, workload_identity_markers
from aksid.arm_ids import same_id
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.identity_models import POD_IDENTITY, uses_workload_identity
from aksid.pod_identity_components import runs_nmi_image
from aksid.snapshot import Snapshot, names
from aksid.workloads import owner_chain, owner_workload

GROUP = "aadpodidentity.k8s.io/v1"
SELECTOR_LABEL = "aadpodidbinding"
SYSTEM_NAMESPACE = "kube-system"
ADDON_EXCEPTION = ("kube-system", "aks-addon-exception")
ADDON_EXCEPTION_LABELS = {"kubernetes.azure.com/managedby": "aks"}
# The AKS add-on manager labels what it deploys; a pod is the add-on's when its owner chain ends in such a workload.
ADDON_MANAGER_LABEL = "addonmanager.kubernetes.io/mode"


def _ref(obj: dict[str, Any]) -> str:
    return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"


def _bindings(snapshot: Snapshot) -> list[dict[str, Any]]:
    return snapshot.kube.list(GROUP, "AzureIdentityBinding")


def _carriers(snapshot: Snapshot, selector: str) -> list[dict[str, Any]]:
    return snapshot.kube.pods(labels={SELECTOR_LABEL: selector})


# -- BIND-001 -----------------------------------------------------------------------------------

def identities(snapshot: Snapshot, _target: Target) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each AzureIdentity in the cluster and each identity the AKS add-on says it assigned."""
    subjects: dict[str, tuple[str, dict[str, Any]]] = {}
    for identity in snapshot.kube.list(GROUP, "AzureIdentity"):
        subjects[f"azureidentity/{_ref(identity)}"] = ("cluster", identity)
    cluster = snapshot.azure.managed_cluster() or {}
    profile = (cluster.get("properties") or {}).get("podIdentityProfile") or {}
    for entry in profile.get("userAssignedIdentities") or []:
        subjects[f"podidentity/{entry.get('namespace')}/{entry.get('name')}"] = ("addon", entry)
    if not subjects:
        raise NotApplicable("no AzureIdentity objects and no pod identities in the AKS podIdentityProfile")
    return subjects


def _azure_identity(snapshot: Snapshot, resource_id: str | None) -> dict[str, Any] | None:
    return next((i for i in snapshot.azure.identities() if same_id(i.get("id"), resource_id)), None)


@check(
    "BIND-001", "every AzureIdentity names an existing user-assigned identity; clientID and resourceID agree with Azure",
    "high",
    remediation="Re-create the pod identity from Azure's truth: `az aks pod-identity delete` then "
                "`az aks pod-identity add --identity-resource-id <id>` (the add-on rewrites AzureIdentity); "
                "for a self-managed AzureIdentity set spec.type 0, resourceID and clientID from `az identity show`.",
    subjects=identities,
    model=POD_IDENTITY,
    reads=("kube:AzureIdentity", "azure:managedCluster", "azure:identities"),
    link="binding → identity",
    groups=("kube:AzureIdentity", "azure:identities"),
)
def test_identity_agrees_with_azure(subject: tuple[str, dict[str, Any]], snapshot: Snapshot, target: Target,
                                    evidence: Evidence) -> None:
    origin, obj = subject
    if origin == "cluster":
        spec = obj.get("spec") or {}
        name = f"AzureIdentity {_ref(obj)}"
        evidence.kube(obj, "spec.type", "spec.resourceID", "spec.clientID")
        evidence.fix(f"kubectl -n {obj['metadata'].get('namespace')} edit azureidentity {obj['metadata']['name']}: "
                     f"set spec.type 0, resourceID and clientID from `az identity show --ids {spec.get('resourceID')}`")
        assert spec.get("type") in (0, "0"), (
            f"{name} has type {spec.get('type')!r}; only 0 (user-assigned managed identity) is least-privilege here")
        resource_id, client_id = spec.get("resourceID"), spec.get("clientID")
    else:
        identity = obj.get("identity") or {}
        name = f"pod identity {obj.get('namespace')}/{obj.get('name')} of the AKS add-on"
        cluster = snapshot.azure.managed_cluster() or {}
        entries = ((cluster.get("properties") or {}).get("podIdentityProfile") or {}).get("userAssignedIdentities") or []
        index = next((i for i, e in enumerate(entries) if e == obj), None)
        if index is not None:
            evidence.arm("managedCluster", cluster, *(
                f"properties.podIdentityProfile.userAssignedIdentities[{index}].{f}"
                for f in ("provisioningState", "identity.resourceId", "identity.clientId")))
        evidence.fix(f"az aks pod-identity delete -g {target.aks_resource_group} --cluster-name {target.cluster_name} "
                     f"--namespace {obj.get('namespace')} --name {obj.get('name')}; az aks pod-identity add -g "
                     f"{target.aks_resource_group} --cluster-name {target.cluster_name} --namespace {obj.get('namespace')} "
                     f"--name {obj.get('name')} --identity-resource-id {identity.get('resourceId')}")
        assert obj.get("provisioningState") == "Assigned", (
            f"{name} is in provisioningState {obj.get('provisioningState')!r}, not Assigned: the node pool does not "
            "hold this identity, so its pods get no token")
        resource_id, client_id = identity.get("resourceId"), identity.get("clientId")
        in_cluster = [
            i for i in snapshot.kube.list(GROUP, "AzureIdentity", obj.get("namespace"))
            if i["metadata"]["name"] == obj.get("name")
        ]
        assert in_cluster, f"{name} has no AzureIdentity {obj.get('namespace')}/{obj.get('name')} in the cluster"
        spec = in_cluster[0].get("spec") or {}
        evidence.kube(in_cluster[0], "spec.resourceID", "spec.clientID")
        assert same_id(spec.get("resourceID"), resource_id) and spec.get("clientID") == client_id, (
            f"{name} names {resource_id} (client {client_id}) but the in-cluster AzureIdentity names "
            f"{spec.get('resourceID')} (client {spec.get('clientID')})")
    azure = _azure_identity(snapshot, resource_id)
    if azure is not None:
        evidence.arm("identities", azure, "id", "properties.clientId")
    else:
        evidence.arm_count("identities", snapshot.azure.identities(), note=f"none is {resource_id}")
    assert azure is not None, f"{name} names {resource_id}, which does not exist in Azure (deleted or mistyped)"
    actual = (azure.get("properties") or {}).get("clientId")
    assert client_id == actual, (
        f"{name} has clientID {client_id} but Azure's identity {azure.get('name')} has clientId {actual}: "
        "token requests for it fail or reach another identity")


# -- BIND-002 -----------------------------------------------------------------------------------

def bindings_and_workloads(snapshot: Snapshot, target: Target) -> dict[str, tuple[str, Any]]:
    subjects: dict[str, tuple[str, Any]] = {}
    for binding in _bindings(snapshot):
        subjects[f"azureidentitybinding/{_ref(binding)}"] = ("binding", binding)
    deployments = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in snapshot.kube.deployments()}
    for (namespace, name), selector in target.allowed_bindings().items():
        if (namespace, name) in deployments and not _on_workload_identity(deployments[(namespace, name)]):
            subjects[f"deployment/{namespace}/{name}"] = ("workload", (deployments[(namespace, name)], selector))
    if not subjects:
        raise NotApplicable("no AzureIdentityBinding objects and none of the allowed workloads exist")
    return subjects


def _on_workload_identity(deployment: dict[str, Any]) -> bool:
    """A workload migrated to workload identity carries no selector any more: WI-004/WI-005 judge it instead."""
    template = (deployment.get("spec") or {}).get("template") or {}
    return uses_workload_identity((template.get("metadata") or {}).get("labels"))


@check(
    "BIND-002", "each binding's selector is carried only by the allowed workloads, each with exactly its own",
    "critical",
    remediation="Remove the label aadpodidbinding from pods that are not cert-manager or external-dns (and from "
                "their pod templates); give each allowed workload only its own selector. Extend the allow-list "
                "with --aksid-set bind_allowed=... only for workloads that must write DNS.",
    subjects=bindings_and_workloads,
    model=POD_IDENTITY,
    reads=("kube:AzureIdentityBinding", "kube:Deployment", "kube:Pod"),
    link="pod → binding",
    groups=("kube:AzureIdentityBinding",),
)
def test_selector_carried_only_by_allowed(subject: tuple[str, Any], snapshot: Snapshot, target: Target,
                                          evidence: Evidence) -> None:
    kind, value = subject
    allowed = target.allowed_bindings()
    deployments = snapshot.kube.deployments()
    evidence.target(target, "bind_allowed")
    if kind == "binding":
        selector = (value.get("spec") or {}).get("selector")
        namespace = value["metadata"].get("namespace")
        evidence.kube(value, "spec.selector")
        intruders = []
        for pod in _carriers(snapshot, selector):
            if pod["metadata"].get("namespace") != namespace:
                continue  # other namespaces are BIND-003's concern
            evidence.kube(pod, f"metadata.labels.{SELECTOR_LABEL}", "metadata.ownerReferences[0].name")
            owner = owner_workload(pod, deployments)
            key = (owner["metadata"]["namespace"], owner["metadata"]["name"]) if owner else None
            if key is None or allowed.get(key) != selector:
                intruders.append(pod)
        evidence.fix("; ".join(f"kubectl -n {p['metadata'].get('namespace')} label pod {p['metadata']['name']} "
                               f"{SELECTOR_LABEL}-" for p in intruders) + " (and remove the label from their pod templates)")
        assert not intruders, (
            f"{_ref(value)} selector '{selector}' is carried by {', '.join(names(intruders))}, which "
            f"{'is' if len(intruders) == 1 else 'are'} not an allowed workload; remove the label {SELECTOR_LABEL} from "
            f"{'it' if len(intruders) == 1 else 'them'}")
        return
    deployment, selector = value
    pods = facts.workload_pods(snapshot, deployment)
    evidence.kube(deployment, f"spec.template.metadata.labels.{SELECTOR_LABEL}")
    for pod in pods:
        evidence.kube(pod, f"metadata.labels.{SELECTOR_LABEL}")
    wrong = [p for p in pods if (p["metadata"].get("labels") or {}).get(SELECTOR_LABEL) != selector]
    evidence.fix(f"kubectl -n {deployment['metadata']['namespace']} patch deployment {deployment['metadata']['name']} "
                 f"--type merge -p '{{\"spec\":{{\"template\":{{\"metadata\":{{\"labels\":{{\"{SELECTOR_LABEL}\":"
                 f"\"{selector}\"}}}}}}}}}}'")
    assert not wrong, (
        f"deployment {_ref(deployment)} should carry {SELECTOR_LABEL}={selector}, but "
        + ", ".join(dict.fromkeys(_carries(p) for p in wrong)))


def _carries(pod: dict[str, Any]) -> str:
    label = (pod["metadata"].get("labels") or {}).get(SELECTOR_LABEL)
    return f"{_ref(pod)} carries {label!r}" if label is not None else f"{_ref(pod)} carries no {SELECTOR_LABEL} label"


# -- BIND-003 -----------------------------------------------------------------------------------

def selectors(snapshot: Snapshot, _target: Target) -> dict[str, dict[str, Any]]:
    subjects = {f"selector/{(b.get('spec') or {}).get('selector')}": b for b in _bindings(snapshot)}
    if not subjects:
        raise NotApplicable("no AzureIdentityBinding objects")
    return subjects


@check(
    "BIND-003", "no pod outside the identity's namespace carries a binding selector", "high",
    remediation="Remove the label aadpodidbinding from pods outside the add-ons namespace: managed mode ignores "
                "them today, but the label shows an attempt to reach the DNS identity (and works in standard mode).",
    subjects=selectors,
    model=POD_IDENTITY,
    reads=("kube:AzureIdentityBinding", "kube:Pod"),
    link="pod → binding",
)
def test_selector_not_carried_elsewhere(subject: dict[str, Any], snapshot: Snapshot, evidence: Evidence) -> None:
    selector = (subject.get("spec") or {}).get("selector")
    namespace = subject["metadata"].get("namespace")
    evidence.kube(subject, "spec.selector")
    carriers = _carriers(snapshot, selector)
    for pod in carriers:
        evidence.kube(pod, f"metadata.labels.{SELECTOR_LABEL}")
    evidence.kube_count("v1/Pod", snapshot.kube.pods(), note=f"{len(carriers)} carry {SELECTOR_LABEL}={selector}")
    outside = [pod for pod in carriers if pod["metadata"].get("namespace") != namespace]
    evidence.fix("; ".join(f"kubectl -n {p['metadata'].get('namespace')} label pod {p['metadata']['name']} "
                           f"{SELECTOR_LABEL}-" for p in outside))
    assert not outside, (
        f"selector '{selector}' of {_ref(subject)} is carried by {', '.join(names(outside))} outside {namespace}; "
        f"remove the label {SELECTOR_LABEL} from {'it' if len(outside) == 1 else 'them'}")


# -- BIND-004 -----------------------------------------------------------------------------------

def bypasses(_snapshot: Snapshot, _target: Target) -> dict[str, str]:
    return {"hostnetwork-pods": "hostnetwork", "azurepodidentityexceptions": "exceptions"}


@check(
    "BIND-004", "nothing bypasses NMI: no hostNetwork pods outside kube-system, only the add-on's exception", "critical",
    remediation="Run workloads without hostNetwork (its traffic to 169.254.169.254 is not redirected to NMI) and "
                "delete AzurePodIdentityExceptions other than kube-system/aks-addon-exception; exempted pods reach "
                "IMDS directly and can take any identity of the node pool.",
    subjects=bypasses,
    model=POD_IDENTITY,
    reads=("kube:Pod", "kube:AzurePodIdentityException", "kube:DaemonSet", "kube:ReplicaSet", "kube:Deployment"),
    link="pod → binding",
    groups=("kube:AzurePodIdentityException",),
)
def test_nothing_bypasses_nmi(subject: str, snapshot: Snapshot, evidence: Evidence) -> None:
    if subject == "hostnetwork":
        host_network = [
            pod for pod in snapshot.kube.pods()
            if (pod.get("spec") or {}).get("hostNetwork") and pod["metadata"].get("namespace") != SYSTEM_NAMESPACE
            and not runs_nmi_image(pod)  # NMI itself: the interceptor needs the host network, wherever installed
        ]
        for pod in host_network:
            evidence.kube(pod, "spec.hostNetwork")
        evidence.kube_count("v1/Pod", snapshot.kube.pods(),
                            note=f"{len(host_network)} with hostNetwork outside {SYSTEM_NAMESPACE}")
        evidence.fix("run without hostNetwork: " + "; ".join(
            f"set spec.hostNetwork false in the workload of pod {_ref(p)}" for p in host_network))
        assert not host_network, (
            f"{', '.join(names(host_network))} {'runs' if len(host_network) == 1 else 'run'} with hostNetwork outside "
            "kube-system: requests to IMDS from there bypass NMI")
        return
    if not snapshot.kube.served(GROUP, "AzurePodIdentityException"):
        evidence.kube_count(f"{GROUP}/AzurePodIdentityException", [], note="the kind is not served")
        return  # no exceptions can exist (NMI-003 reports the missing CRD)
    problems = []
    fixes = []
    exceptions = snapshot.kube.list(GROUP, "AzurePodIdentityException")
    evidence.kube_count(f"{GROUP}/AzurePodIdentityException", exceptions)
    for exception in exceptions:
        key = (exception["metadata"].get("namespace"), exception["metadata"]["name"])
        labels = (exception.get("spec") or {}).get("podLabels") or {}
        evidence.kube(exception, "spec.podLabels")
        if key != ADDON_EXCEPTION:
            fixes.append(f"kubectl -n {key[0]} delete azurepodidentityexception {key[1]}")
        if key != ADDON_EXCEPTION:
            problems.append(f"{_ref(exception)} exempts pods labelled {labels or 'anything'}")
        elif labels != ADDON_EXCEPTION_LABELS:
            problems.append(f"{_ref(exception)} exempts {labels}, not only kubernetes.azure.com/managedby=aks")
            fixes.append(f"az aks update --disable-pod-identity then --enable-pod-identity, so the add-on rewrites "
                         f"{_ref(exception)} with podLabels kubernetes.azure.com/managedby=aks only")
        else:
            found = _not_the_addons(snapshot, exception, labels)
            problems += found
            for pod in snapshot.kube.pods(exception["metadata"].get("namespace"), labels):
                evidence.kube(pod, "metadata.labels", "metadata.ownerReferences[0].name")
            for problem in found:
                pod_ns, _, pod_name = problem.split(" ", 2)[1].partition("/")
                fixes.append(f"kubectl -n {pod_ns} label pod {pod_name} {' '.join(f'{k}-' for k in labels)} (and in its "
                             "workload's pod template), or delete the pod")
    evidence.fix("; ".join(fixes))
    assert not problems, "; ".join(problems) + ": exempted pods reach IMDS directly"


def _not_the_addons(snapshot: Snapshot, exception: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Pods the add-on's exception exempts (its own namespace only) whose owner chain does not end in an add-on workload."""
    namespace = exception["metadata"].get("namespace")
    owners = [*snapshot.kube.daemonsets(namespace), *snapshot.kube.replicasets(namespace),
              *snapshot.kube.deployments(namespace)]
    found = []
    for pod in snapshot.kube.pods(namespace, labels):
        chain = owner_chain(pod, owners)
        top = chain[-1] if chain else None
        if top is not None and top["kind"] in ("DaemonSet", "Deployment") and ADDON_MANAGER_LABEL in (
                top["metadata"].get("labels") or {}):
            continue
        if top is None:
            refs = pod["metadata"].get("ownerReferences") or []
            whose = f"its owner {refs[0].get('kind')}/{refs[0].get('name')} is not in the cluster" if refs else "a bare pod"
        else:
            whose = f"owned by {top['kind']} {_ref(top)}, which does not carry {ADDON_MANAGER_LABEL}"
        found.append(f"pod {_ref(pod)} matches {_ref(exception)} ({', '.join(f'{k}={v}' for k, v in labels.items())}) "
                     f"but is not one of the add-on's pods ({whose}); give it other labels or remove it")
    return found


# -- BIND-005 -----------------------------------------------------------------------------------

def allowed_pod_identity_workloads(snapshot: Snapshot, target: Target) -> dict[str, tuple[dict[str, Any], str]]:
    """Each allowed workload (bind_allowed) that runs here, with the selector it must carry."""
    if snapshot.azure.identity_named(target.identity_name) is None:
        raise NotApplicable(f"no user-assigned identity named {target.identity_name} (set IDENTITY_NAME)")
    found = {}
    for (namespace, name), selector in target.allowed_bindings().items():
        deployment = snapshot.kube.get("apps/v1", "Deployment", namespace, name)
        if deployment is not None:
            found[f"deployment/{namespace}/{name}"] = (deployment, selector)
    if not found:
        allowed = ", ".join(f"{ns}/{name}" for ns, name in target.allowed_bindings()) or "none"
        raise NotApplicable(f"none of the allowed workloads ({allowed}) runs here")
    return found


@check(
    "BIND-005", "each allowed workload reaches the DNS identity through pod identity, as its own software reads it",
    "high",
    remediation="Give the workload's pod template its aadpodidbinding selector, bind that selector to the DNS "
                "identity (`az aks pod-identity add`), and point the controller at the managed identity "
                "(external-dns: useManagedIdentityExtension in azure.json; cert-manager: an ambient azureDNS solver).",
    subjects=allowed_pod_identity_workloads,
    model=POD_IDENTITY,
    reads=("azure:identities", "kube:Deployment", "kube:AzureIdentityBinding", "kube:AzureIdentity", "kube:Pod",
           "kube:ReplicaSet", "kube:ServiceAccount", "kube:Secret", "kube:ClusterIssuer", "kube:Issuer"),
    link=("pod → binding", "binding → identity"),
)
def test_allowed_workload_reaches_dns_identity(subject: tuple[dict[str, Any], str], snapshot: Snapshot,
                                               target: Target, evidence: Evidence) -> None:
    deployment, selector = subject
    identity = snapshot.azure.identity_named(target.identity_name) or {}
    evidence.arm("identities", identity, "name", "properties.clientId")
    evidence.target(target, "bind_allowed")
    labels = ((deployment["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    if SELECTOR_LABEL not in labels and workload_identity_markers(snapshot, deployment):
        pytest.skip(f"{_ref(deployment)} is on workload identity (WI-006 judges its path)")
    path = pod_identity_path(snapshot, deployment, selector, (identity.get("properties") or {}).get("clientId"),
                             read_secrets=snapshot.kube.entry("v1", "Secret").get("status") == "ok",
                             live=snapshot.document.get("mode") != "static")
    path.record(evidence)
    assert not path.broken, path.finding(str(identity.get("name")), "pod identity")
