"""NMI: the pod-identity add-on's node agent is present, ready everywhere, installed and in managed mode."""

from __future__ import annotations

import json
from typing import Any

from aksid.checks import NotApplicable, check
from aksid.nodes import eligible_nodes, is_pod_ready
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
    return [ds for ds in snapshot.kube.daemonsets(namespace) if _carries_any(ds, NMI_SELECTORS)]


def _owned_pods(snapshot: Snapshot, owner: dict[str, Any]) -> list[dict[str, Any]]:
    uid = owner["metadata"].get("uid")
    namespace = owner["metadata"].get("namespace")
    return [
        pod for pod in snapshot.kube.pods(namespace)
        if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or [])
    ]


# -- NMI-001 ------------------------------------------------------------------------------------

@check(
    "NMI-001", "NMI DaemonSet exists in kube-system", "critical",
    remediation="Enable the pod-identity add-on: `az aks update -g <rg> -n <cluster> --enable-pod-identity`; "
                "without NMI every pod can reach the node pool's identities through IMDS.",
)
def test_nmi_daemonset_exists(snapshot: Snapshot) -> None:
    found = nmi_daemonsets(snapshot)
    elsewhere = [ds for ds in nmi_daemonsets(snapshot, None) if ds["metadata"]["namespace"] != SYSTEM_NAMESPACE]
    hint = f"; found {', '.join(names(elsewhere))} outside kube-system" if elsewhere else ""
    assert found, (
        f"no DaemonSet labelled component=nmi (or app.kubernetes.io/component=nmi) in {SYSTEM_NAMESPACE}{hint}; "
        "enable the pod-identity add-on"
    )


# -- NMI-002 ------------------------------------------------------------------------------------

NodeSubject = tuple[str, dict[str, Any], list[dict[str, Any]]]


def nmi_nodes(snapshot: Snapshot, _target: Any) -> dict[str, NodeSubject]:
    """One subject per Linux node the NMI DaemonSet must run on, with the NMI pods found on it."""
    daemonsets = nmi_daemonsets(snapshot)
    if not daemonsets:
        raise NotApplicable("no NMI DaemonSet in kube-system (see NMI-001)")
    subjects: dict[str, NodeSubject] = {}
    for ds in daemonsets:
        pods = _owned_pods(snapshot, ds)
        template = ds["spec"]["template"]["spec"]
        for node in eligible_nodes(snapshot.kube.nodes(), template):
            name = node["metadata"]["name"]
            on_node = [pod for pod in pods if pod.get("spec", {}).get("nodeName") == name]
            subjects[f"node/{name}"] = (name, ds, on_node)
    if not subjects:
        raise NotApplicable("no Linux node admits the NMI DaemonSet")
    return subjects


@check(
    "NMI-002", "NMI is scheduled and ready on every Linux node", "critical",
    remediation="Inspect the DaemonSet and its pods (`kubectl -n kube-system describe ds nmi`, "
                "`kubectl -n kube-system get pods -l component=nmi -o wide`); cordon the node until NMI is ready, "
                "since pods there reach IMDS directly.",
    subjects=nmi_nodes,
)
def test_nmi_ready_on_node(subject: NodeSubject) -> None:
    node, ds, pods = subject
    ds_name = f"{ds['metadata']['namespace']}/{ds['metadata']['name']}"
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
)
def test_pod_identity_installed(subject: tuple[str, str, dict[str, Any] | None]) -> None:
    what, name, obj = subject
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
)
def test_managed_mode(subject: tuple[str, None], snapshot: Snapshot, target: Any) -> None:
    what, _ = subject
    if what == "profile":
        cluster = snapshot.azure.managed_cluster()
        if cluster is None:
            raise EvidenceUnavailable(
                f"managed cluster {target.aks_resource_group}/{target.cluster_name} does not exist in subscription "
                f"{target.subscription_id}; check AZ_AKS_RESOURCE_GROUP and AZ_AKS_CLUSTER_NAME"
            )
        profile = cluster.get("properties", {}).get("podIdentityProfile") or {}
        enabled = json.dumps(profile.get("enabled"))
        assert profile.get("enabled") is True, (
            f"managed cluster {target.cluster_name} has podIdentityProfile.enabled={enabled}: "
            "the pod-identity add-on is off"
        )
        return
    mic = [d for d in snapshot.kube.deployments() if _carries_any(d, MIC_SELECTORS)]
    assert not mic, (
        f"MIC is running ({', '.join(names(mic))}): this is standard mode, where MIC assigns identities to the "
        "node pool; remove the self-managed aad-pod-identity release"
    )
    modes = {
        arg.split("=", 1)[1]
        for ds in nmi_daemonsets(snapshot)
        for container in ds["spec"]["template"]["spec"].get("containers", [])
        for arg in container.get("args", [])
        if arg.startswith("--operation-mode=")
    }
    assert modes <= {"managed"}, f"NMI runs with --operation-mode={','.join(sorted(modes))}, not managed"
