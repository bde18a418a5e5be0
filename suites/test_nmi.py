"""NMI: the pod-identity add-on's node agent is present, ready everywhere, installed and in managed mode."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from aksid.checks import NotApplicable, check
from aksid.collect.static.arm_shapes import left_open
from aksid.evidence import Evidence
from aksid.identity_models import POD_IDENTITY
from aksid.modes import LIVE_MODES
from aksid.nodes import admits, is_linux, is_pod_ready, is_virtual, why_not_admitted
from aksid.pod_identity_components import is_mic, runs_nmi_image
from aksid.snapshot import EvidenceUnavailable, Snapshot, labels_match, names

SYSTEM_NAMESPACE = "kube-system"
# The AKS add-on labels NMI `component: nmi`; the upstream Helm chart `app.kubernetes.io/component: nmi`.
NMI_SELECTORS = ({"component": "nmi"}, {"app.kubernetes.io/component": "nmi"})
MIC_SELECTORS = ({"component": "mic"}, {"app.kubernetes.io/component": "mic"})
POD_IDENTITY_GROUP = "aadpodidentity.k8s.io"
MANAGED_MODE_CRDS = ("azureidentities", "azureidentitybindings", "azurepodidentityexceptions")
ADDON_EXCEPTION = "aks-addon-exception"
AKS_MANAGED = {"kubernetes.azure.com/managedby": "aks"}


def _carries_any(obj: dict[str, Any], selectors: tuple[dict[str, str], ...]) -> bool:
    labels = obj.get("metadata", {}).get("labels")
    return any(labels_match(labels, selector) for selector in selectors)


def nmi_daemonsets(snapshot: Snapshot, namespace: str | None = SYSTEM_NAMESPACE) -> list[dict[str, Any]]:
    """NMI DaemonSets: in kube-system by the add-on's labels or the program; elsewhere (a self-installed
    aad-pod-identity, upstream's manifests install it in `default`) by the program it runs, which a label cannot fake."""
    return [ds for ds in snapshot.kube.daemonsets(namespace)
            if (ds["metadata"].get("namespace") == SYSTEM_NAMESPACE and _carries_any(ds, NMI_SELECTORS))
            or runs_nmi_image(ds)]


# -- NMI-001 ------------------------------------------------------------------------------------

@check(
    "NMI-001", "NMI DaemonSet exists in kube-system (or a self-installed release's, wherever it runs)", "critical",
    remediation="Enable the pod-identity add-on: `az aks update -g <rg> -n <cluster> --enable-pod-identity`; "
                "without NMI every pod can reach the node pool's identities through IMDS.",
    modes=LIVE_MODES,
    model=POD_IDENTITY,
    reads=("kube:DaemonSet",),
    link="pod → binding",
)
def test_nmi_daemonset_exists(snapshot: Snapshot, target: Any, evidence: Evidence) -> None:
    found = nmi_daemonsets(snapshot) or nmi_daemonsets(snapshot, None)  # the add-on's, or a self-installed release's
    for ds in found:
        evidence.kube(ds, "metadata.name", "metadata.labels")
    evidence.kube_count("apps/v1/DaemonSet", snapshot.kube.daemonsets(SYSTEM_NAMESPACE), SYSTEM_NAMESPACE)
    evidence.fix(f"az aks update -g {target.aks_resource_group} -n {target.cluster_name} --enable-pod-identity")
    elsewhere = [ds for ds in nmi_daemonsets(snapshot, None) if ds["metadata"]["namespace"] != SYSTEM_NAMESPACE]
    hint = f"; found {', '.join(names(elsewhere))} outside kube-system" if elsewhere else ""
    assert found, (
        f"no DaemonSet labelled component=nmi (or app.kubernetes.io/component=nmi) in {SYSTEM_NAMESPACE}{hint}; "
        "enable the pod-identity add-on"
    )


# -- NMI-002 ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeCoverage:
    """One Linux node NMI must cover: NMI's own pods there, the pods that could ask IMDS, why NMI is absent."""

    node: str
    daemonset: dict[str, Any]
    nmi_pods: list[dict[str, Any]]
    exposed: list[dict[str, Any]]
    not_admitted: str | None  # why the DaemonSet does not run there; None when it admits the node


def _live(pod: dict[str, Any]) -> bool:
    """Not a hostNetwork pod (BIND-004's finding) and not finished: its IMDS traffic is NMI's to intercept."""
    return not (pod.get("spec") or {}).get("hostNetwork") and (pod.get("status") or {}).get("phase") not in (
        "Succeeded", "Failed")


def nmi_nodes(snapshot: Snapshot, _target: Any) -> dict[str, NodeCoverage]:
    """One subject per Linux node that NMI's DaemonSet admits or that runs pods which could ask IMDS."""
    daemonsets = nmi_daemonsets(snapshot, None)
    if not daemonsets:
        raise NotApplicable("no NMI DaemonSet (see NMI-001)")
    nmi_uids = {ds["metadata"].get("uid") for ds in daemonsets}
    # one pass over every pod, each sorted once (NMI's own, or one that could ask IMDS): a 20,000-pod cluster stays
    # one pass, and with -n every worker makes it while collecting
    nmi_by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    exposed_by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pod in snapshot.kube.pods():
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            continue
        if _owned_by_any(pod, nmi_uids):
            nmi_by_node[node_name].append(pod)
        elif _live(pod):
            exposed_by_node[node_name].append(pod)
    subjects: dict[str, NodeCoverage] = {}
    for node in snapshot.kube.nodes():
        if not is_linux(node) or is_virtual(node):
            continue  # Windows pods cannot use pod identity; virtual-kubelet pods run outside the node pool
        name = node["metadata"]["name"]
        nmi_pods, exposed = nmi_by_node.get(name, []), exposed_by_node.get(name, [])
        admitting = [ds for ds in daemonsets if admits(node, ds["spec"]["template"]["spec"])]
        if admitting:
            subjects[f"node/{name}"] = NodeCoverage(name, admitting[0], nmi_pods, exposed, None)
        elif exposed or nmi_pods:
            reason = why_not_admitted(node, daemonsets[0]["spec"]["template"]["spec"])
            subjects[f"node/{name}"] = NodeCoverage(name, daemonsets[0], nmi_pods, exposed, reason)
    if not subjects:
        raise NotApplicable("no Linux node admits the NMI DaemonSet or runs pods")
    return subjects


def _owned_by_any(pod: dict[str, Any], uids: set[str]) -> bool:
    return any(ref.get("uid") in uids for ref in pod["metadata"].get("ownerReferences") or ())


def _listed(pods: list[dict[str, Any]], limit: int = 5) -> str:
    shown = ", ".join(names(pods[:limit]))
    return shown + (f" and {len(pods) - limit} more" if len(pods) > limit else "")


def _coverage_fix(coverage: NodeCoverage) -> str:
    """The fix depends on who owns the DaemonSet: the AKS add-on reconciles its own, a Helm release takes values."""
    if labels_match(coverage.daemonset["metadata"].get("labels"), AKS_MANAGED):
        return (f"the AKS add-on reconciles its NMI DaemonSet, so move those workloads off {coverage.node} "
                "(or fix the pool so the add-on's NMI is scheduled there)")
    what = "add that toleration" if "taint" in (coverage.not_admitted or "") else "widen the nodeSelector/affinity"
    return f"{what} in the values of the NMI release (nmi.tolerations / nmi.nodeSelector / nmi.affinity), or move those workloads"


@check(
    "NMI-002", "NMI is scheduled and ready on every Linux node", "critical",
    remediation="Inspect the DaemonSet and its pods (`kubectl -n kube-system describe ds nmi`, "
                "`kubectl -n kube-system get pods -l component=nmi -o wide`); cordon the node until NMI is ready, "
                "since pods there reach IMDS directly. A node NMI's DaemonSet does not admit (a taint it does not "
                "tolerate, a selector that leaves the pool out) must run no pods: widen a self-installed NMI's "
                "tolerations/nodeSelector, or move the workloads (the AKS add-on reconciles its own DaemonSet).",
    subjects=nmi_nodes,
    modes=LIVE_MODES,
    model=POD_IDENTITY,
    reads=("kube:DaemonSet", "kube:Pod", "kube:Node"),
    link="pod → binding",
    groups=("kube:DaemonSet",),
)
def test_nmi_ready_on_node(subject: NodeCoverage, evidence: Evidence) -> None:
    node, pods = subject.node, subject.nmi_pods
    ds_name = f"{subject.daemonset['metadata']['namespace']}/{subject.daemonset['metadata']['name']}"
    evidence.kube(subject.daemonset, "metadata.uid")
    for pod in pods:
        evidence.kube(pod, "spec.nodeName", "metadata.ownerReferences[0].uid", "status.phase")
        evidence.kube_condition(pod, "Ready")
    for pod in subject.exposed[:5]:
        evidence.kube(pod, "spec.nodeName", note="a pod there that could ask IMDS")
    namespace = subject.daemonset["metadata"]["namespace"]
    if subject.not_admitted is not None and not pods:
        evidence.fix(f"{_coverage_fix(subject)}; meanwhile `kubectl cordon {node}` and move "
                     f"{_listed(subject.exposed)} off it")
    elif not pods:
        evidence.fix(f"kubectl -n {namespace} describe daemonset {subject.daemonset['metadata']['name']}; "
                     f"kubectl cordon {node} until NMI runs there")
    else:
        evidence.fix(f"kubectl -n {namespace} describe pod {' '.join(p['metadata']['name'] for p in pods)}; "
                     f"kubectl cordon {node} until NMI is ready")
    if subject.not_admitted is not None and not pods:
        raise AssertionError(
            f"node {node} runs {len(subject.exposed)} pod(s) that can ask IMDS ({_listed(subject.exposed)}) but "
            f"DaemonSet {ds_name} does not run NMI there: {subject.not_admitted}; those pods reach IMDS "
            f"(169.254.169.254) directly and can take any identity assigned to the node pool; {_coverage_fix(subject)}")
    assert pods, (
        f"node {node} has no pod of DaemonSet {ds_name}: pods scheduled there reach IMDS (169.254.169.254) "
        "directly and can take any identity assigned to the node pool"
    )
    ready = [pod for pod in pods if is_pod_ready(pod)]
    if not ready:
        states = ", ".join(f"{pod['metadata']['name']} ({pod.get('status', {}).get('phase', '?')}, not ready)"
                           for pod in pods)
        raise AssertionError(f"NMI on node {node} is not ready: {states}; until it is, identity requests there "
                             "are not intercepted")


# -- NMI-003 ------------------------------------------------------------------------------------

def pod_identity_installation(snapshot: Snapshot, _target: Any) -> dict[str, Any]:
    """The CRDs of managed mode and, for the AKS add-on, its AzurePodIdentityException."""
    crds = {crd["metadata"]["name"]: crd for crd in snapshot.kube.crds()}
    subjects: dict[str, Any] = {}
    for plural in MANAGED_MODE_CRDS:
        name = f"{plural}.{POD_IDENTITY_GROUP}"
        subjects[f"customresourcedefinition/{name}"] = ("crd", name, crds.get(name))
    addon = [ds for ds in nmi_daemonsets(snapshot) if labels_match(ds["metadata"].get("labels"), AKS_MANAGED)]
    if addon:
        served = snapshot.kube.served(f"{POD_IDENTITY_GROUP}/v1", "AzurePodIdentityException")
        exception = snapshot.kube.get(f"{POD_IDENTITY_GROUP}/v1", "AzurePodIdentityException",
                                      SYSTEM_NAMESPACE, ADDON_EXCEPTION) if served else None
        subjects[f"azurepodidentityexception/{SYSTEM_NAMESPACE}/{ADDON_EXCEPTION}"] = ("exception", ADDON_EXCEPTION,
                                                                                      exception)
    return subjects


def _established(crd: dict[str, Any]) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


@check(
    "NMI-003", "pod-identity CRDs are installed; the add-on's AzurePodIdentityException exists", "high",
    remediation="Re-enable the add-on (`az aks update --disable-pod-identity` then `--enable-pod-identity`) "
                "so it reinstalls its CRDs and the aks-addon-exception; do not delete add-on objects by hand.",
    subjects=pod_identity_installation,
    modes=LIVE_MODES,
    model=POD_IDENTITY,
    reads=("kube:CustomResourceDefinition", "kube:AzurePodIdentityException", "kube:DaemonSet"),
    link="pod → binding",
)
def test_pod_identity_installed(subject: tuple[str, str, dict[str, Any] | None], snapshot: Snapshot, target: Any,
                                evidence: Evidence) -> None:
    what, name, obj = subject
    evidence.fix(f"az aks update -g {target.aks_resource_group} -n {target.cluster_name} "
                 "--disable-pod-identity, then --enable-pod-identity (the add-on reinstalls "
                 f"{'CustomResourceDefinition ' + name if what == 'crd' else f'{SYSTEM_NAMESPACE}/{name}'})")
    if obj is None:
        evidence.kube_count("apiextensions.k8s.io/v1/CustomResourceDefinition" if what == "crd"
                            else f"{POD_IDENTITY_GROUP}/v1/AzurePodIdentityException", snapshot.kube.crds()
                            if what == "crd" else snapshot.kube.list(f"{POD_IDENTITY_GROUP}/v1", "AzurePodIdentityException"),
                            note=f"looked for {name}")
    elif what == "crd":
        evidence.kube(obj, "metadata.name", *(f"spec.versions[{i}].served" for i, _ in
                                             enumerate(obj["spec"].get("versions", []))))
        evidence.kube_condition(obj, "Established")
    else:
        evidence.kube(obj, "metadata.name", "spec.podLabels")
    if what == "crd":
        assert obj is not None, f"CustomResourceDefinition {name} is not installed; AzureIdentity objects cannot exist"
        served = [v["name"] for v in obj["spec"].get("versions", []) if v.get("served")]
        assert "v1" in served, f"CustomResourceDefinition {name} does not serve v1 (serves {served or 'nothing'})"
        assert _established(obj), f"CustomResourceDefinition {name} is not Established"
    else:
        assert obj is not None, (
            f"AzurePodIdentityException {SYSTEM_NAMESPACE}/{name} is missing: the add-on's own pods "
            "(label kubernetes.azure.com/managedby=aks) lose IMDS access"
        )


# -- NMI-004 ------------------------------------------------------------------------------------

def operation_mode(snapshot: Snapshot, target: Any) -> dict[str, Any]:
    """The cluster's pod identity profile (ARM) and the in-cluster signs of standard mode (MIC)."""
    return {
        f"managedcluster/{target.cluster_name}": ("profile", None),
        "operation-mode": ("mode", None),
    }


@check(
    "NMI-004", "AKS podIdentityProfile is enabled; managed mode (no MIC running)", "high",
    remediation="Use the AKS add-on (`az aks update --enable-pod-identity`) and uninstall a self-managed "
                "aad-pod-identity release (its MIC assigns identities to the whole node pool on its own).",
    subjects=operation_mode,
    model=POD_IDENTITY,
    reads=("azure:managedCluster", "kube:Deployment", "kube:DaemonSet"),
    link="pod → binding",
    groups=("azure:managedCluster",),
)
def test_managed_mode(subject: tuple[str, None], snapshot: Snapshot, target: Any, evidence: Evidence) -> None:
    what, _ = subject
    if what == "profile":
        cluster = snapshot.azure.managed_cluster()
        if cluster is not None:
            evidence.arm("managedCluster", cluster, "properties.podIdentityProfile.enabled")
        evidence.fix(f"az aks update -g {target.aks_resource_group} -n {target.cluster_name} --enable-pod-identity")
        if cluster is None:
            evidence.fix(f"az aks list --subscription {target.subscription_id} --query \"[].[resourceGroup,name]\", "
                         "then set AZ_AKS_RESOURCE_GROUP and AZ_AKS_CLUSTER_NAME to the cluster's", on_error=True)
        if cluster is None:
            raise EvidenceUnavailable(
                f"managed cluster {target.aks_resource_group}/{target.cluster_name} does not exist in subscription "
                f"{target.subscription_id}; check AZ_AKS_RESOURCE_GROUP and AZ_AKS_CLUSTER_NAME"
            )
        undeclared = left_open(cluster, "podIdentityProfile")
        if undeclared:
            # static mode on files that leave the add-on as `az aks pod-identity` / `az aks update` set it (azurerm has
            # no such setting): the files cannot say it is off, so NMI-004 does not judge it here
            pytest.skip(f"whether the pod-identity add-on is on is not in the files: {undeclared}")
        profile = cluster.get("properties", {}).get("podIdentityProfile") or {}
        enabled = json.dumps(profile.get("enabled"))
        assert profile.get("enabled") is True, (
            f"managed cluster {target.cluster_name} has podIdentityProfile.enabled={enabled}: "
            "the pod-identity add-on is off"
        )
        return
    mic = [d for d in snapshot.kube.deployments() if _carries_any(d, MIC_SELECTORS) or is_mic(d)]
    for deployment in mic:
        evidence.kube(deployment, "metadata.labels")
    evidence.kube_count("apps/v1/Deployment", snapshot.kube.deployments(), note="none labelled component=mic")
    evidence.fix("helm uninstall the self-managed aad-pod-identity release that runs "
                 + (", ".join(f"deployment {n}" for n in names(mic)) or "MIC")
                 + f", then az aks update -g {target.aks_resource_group} -n {target.cluster_name} --enable-pod-identity")
    for ds in nmi_daemonsets(snapshot, None):
        for index, _ in enumerate(ds["spec"]["template"]["spec"].get("containers", [])):
            evidence.kube(ds, f"spec.template.spec.containers[{index}].args")
    assert not mic, (
        f"MIC is running ({', '.join(names(mic))}): this is standard mode, where MIC assigns identities to the "
        "node pool; remove the self-managed aad-pod-identity release"
    )
    modes = {
        arg.split("=", 1)[1]
        for ds in nmi_daemonsets(snapshot, None)
        for container in ds["spec"]["template"]["spec"].get("containers", [])
        for arg in container.get("args", [])
        if arg.startswith("--operation-mode=")
    }
    assert modes <= {"managed"}, f"NMI runs with --operation-mode={','.join(sorted(modes))}, not managed"


# -- NMI-005 ------------------------------------------------------------------------------------

def pod_identity_cluster(snapshot: Snapshot, target: Any) -> dict[str, dict[str, Any]]:
    """The managed cluster, when pod identity is on (with it off, NMI-004 is the finding)."""
    cluster = snapshot.azure.managed_cluster()
    if cluster is None:
        raise EvidenceUnavailable(f"managed cluster {target.aks_resource_group}/{target.cluster_name} does not exist "
                                  f"in subscription {target.subscription_id}")
    if ((cluster.get("properties") or {}).get("podIdentityProfile") or {}).get("enabled") is not True:
        raise NotApplicable(f"pod identity is off on managed cluster {target.cluster_name} (see NMI-004)")
    return {f"managedcluster/{target.cluster_name}": cluster}


@check(
    "NMI-005", "pod identity does not run on kubenet (podIdentityProfile.allowNetworkPluginKubenet)", "high",
    remediation="Move the cluster to Azure CNI (`az aks update --network-plugin azure --network-plugin-mode overlay`) "
                "or to Workload Identity; AKS keeps pod identity off on kubenet by default because a pod with NET_RAW "
                "can spoof its way past NMI there.",
    subjects=pod_identity_cluster,
    model=POD_IDENTITY,
    reads=("azure:managedCluster",),
    link="pod → binding",
)
def test_pod_identity_not_on_kubenet(subject: dict[str, Any], evidence: Evidence) -> None:
    properties = subject.get("properties") or {}
    evidence.arm("managedCluster", subject, "properties.networkProfile.networkPlugin",
                 "properties.podIdentityProfile.allowNetworkPluginKubenet")
    parts = str(subject.get("id", "")).split("/")
    lower = [part.lower() for part in parts]
    group = parts[lower.index("resourcegroups") + 1] if "resourcegroups" in lower[:-1] else "<rg>"
    evidence.fix(f"az aks update -g {group} -n {subject.get('name')} --network-plugin azure --network-plugin-mode "
                 "overlay (or move its workloads to Workload Identity and --disable-pod-identity)")
    plugin = (properties.get("networkProfile") or {}).get("networkPlugin")
    allowed = (properties.get("podIdentityProfile") or {}).get("allowNetworkPluginKubenet")
    assert not (plugin == "kubenet" and allowed is True), (
        f"managed cluster {subject.get('name')} runs pod identity on kubenet with "
        "podIdentityProfile.allowNetworkPluginKubenet=true: on kubenet a pod can spoof its way past NMI's redirect "
        "of 169.254.169.254 and take any identity assigned to the node pool; move to Azure CNI or Workload Identity")
