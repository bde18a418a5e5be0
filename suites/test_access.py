"""ACCESS-001: the Kubernetes principals who can act as the DNS identity are within what is allowed.

The paths are aksid/access/paths.py's (RBAC as the API server evaluates it, Pod Security levels, the identity's
pod-identity bindings and federated ServiceAccounts); this module only says who is allowed.
"""

from __future__ import annotations

from typing import Any

from aksid.access.paths import Graph, Path, identity_targets
from aksid.access.rbac import RBAC_API, Rbac, Subject
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.identity_models import POD_IDENTITY, POD_IDENTITY_GROUP
from aksid.snapshot import EvidenceUnavailable, Snapshot

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


def _rbac(snapshot: Snapshot) -> Rbac:
    objects: list[dict[str, Any]] = []
    for kind in RBAC_KINDS:
        objects += snapshot.kube.list(RBAC_API, kind)
    return Rbac(objects)


def access_graph(snapshot: Snapshot, target: Target) -> tuple[dict[str, Any], Graph]:
    """The DNS identity and the kube side of its access graph."""
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise NotApplicable(f"no user-assigned identity named {target.identity_name} (set IDENTITY_NAME)")
    azure_identities: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    try:
        if snapshot.kube.served(POD_IDENTITY_GROUP, "AzureIdentityBinding"):
            azure_identities = snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentity")
            bindings = snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentityBinding")
    except EvidenceUnavailable:
        raise
    cluster = snapshot.azure.managed_cluster() or {}
    issuer = ((cluster.get("properties") or {}).get("oidcIssuerProfile") or {}).get("issuerURL")
    try:
        credentials = snapshot.azure.federated_credentials(identity["id"])
    except EvidenceUnavailable:
        credentials = []
    issuers = [i for i in [issuer, *target.trusted_issuers()] if i]
    targets = identity_targets(identity, azure_identities, bindings, credentials, issuers)
    # pod identity assigns the identity to the node pool (managed mode: the add-on, standard mode: MIC): a pod on
    # the host network reaches it through IMDS; workload identity alone assigns nothing to the nodes
    node_identity = any(t.model == POD_IDENTITY for t in targets)
    graph = Graph(_rbac(snapshot), snapshot.kube.list("v1", "Namespace"), snapshot.kube.pods(), targets, node_identity)
    return identity, graph


def allowed_subjects(snapshot: Snapshot, target: Target) -> tuple[set[Subject], list[str]]:
    """The subjects allowed by default and by access_allowed; and the reasons, for the message."""
    allowed: set[Subject] = set()
    for namespace, account in target.allowed_service_accounts():
        allowed.add(Subject("ServiceAccount", account, namespace))
    for namespace, name in target.allowed_bindings():
        for deployment in snapshot.kube.deployments(namespace):
            if deployment["metadata"]["name"] == name:
                spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
                allowed.add(Subject("ServiceAccount", spec.get("serviceAccountName") or "default", namespace))
    allowed.add(Subject("ServiceAccount", AKSID_SERVICE_ACCOUNT[1], AKSID_SERVICE_ACCOUNT[0]))
    allowed |= {Subject("User", u) for u in CONTROL_PLANE_USERS}
    allowed |= {Subject("Group", g) for g in CONTROL_PLANE_GROUPS}
    rbac = _rbac(snapshot)
    for binding in rbac.bindings:  # subjects bound to cluster-admin across the cluster
        ref = binding.get("roleRef") or {}
        if binding.get("kind") == "ClusterRoleBinding" and ref.get("kind") == "ClusterRole" \
                and ref.get("name") == "cluster-admin":
            allowed |= set(rbac.binding_subjects(binding))
    extra = target.allowed_access()
    allowed |= {Subject("User", u) for u in extra.get("User", ())}
    allowed |= {Subject("Group", g) for g in extra.get("Group", ())}
    for item in extra.get("ServiceAccount", ()):
        namespace, _, name = item.partition("/")
        allowed.add(Subject("ServiceAccount", name, namespace))
    return allowed, []


def is_allowed(subject: Subject, allowed: set[Subject]) -> bool:
    if subject in allowed:
        return True
    if subject.kind == "ServiceAccount" and subject.namespace in ("kube-system", "azure-workload-identity-system"):
        return True
    return subject.kind == "User" and subject.name.startswith("system:node:")


def _fix(path: Path) -> str:
    grant = path.grant
    if path.kind == "host-network":
        return (f"kubectl label --overwrite namespace {path.namespace} pod-security.kubernetes.io/enforce=baseline "
                f"(hostNetwork is forbidden from baseline up), or narrow {grant.binding if grant else 'the binding'}")
    if grant is None:
        return "remove the right"
    binding = grant.binding_obj.get("metadata") or {}
    where = f"-n {binding.get('namespace')} " if binding.get("namespace") else ""
    kind = "rolebinding" if binding.get("namespace") else "clusterrolebinding"
    return (f"narrow {grant.binding} ({grant.role}: {grant.rule.text()}) so that {path.subject} cannot "
            f"{path.action}: kubectl {where}edit {kind} {binding.get('name')}, or allow it with "
            f"--aksid-set access_allowed={path.subject.setting}")


def access_paths(snapshot: Snapshot, target: Target) -> dict[str, Any]:
    if snapshot.azure.identity_named(target.identity_name) is None:
        raise NotApplicable(f"no user-assigned identity named {target.identity_name} (set IDENTITY_NAME)")
    return {f"identity/{target.identity_name}": None}


@check(
    "ACCESS-001", "the Kubernetes principals who can act as the DNS identity are within what is allowed", "high",
    remediation="Narrow the RoleBinding/ClusterRoleBinding that grants the path (no pod-making, token, exec, "
                "impersonate, bind or escalate rights where the identity is handed out), label namespaces "
                "pod-security.kubernetes.io/enforce=baseline (no hostNetwork pods around NMI), or allow the principal "
                "with --aksid-set access_allowed=User:NAME,Group:NAME,ServiceAccount:NAMESPACE/NAME.",
    subjects=access_paths,
    reads=("kube:ClusterRole", "kube:ClusterRoleBinding", "kube:Role", "kube:RoleBinding", "kube:Namespace",
           "kube:Pod", "kube:AzureIdentity", "kube:AzureIdentityBinding", "kube:Deployment", "azure:identities",
           "azure:federatedCredentials", "azure:managedCluster"),
    link="pod → binding",
)
def test_kube_principals_within_allowed(subject: Any, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    identity, graph = access_graph(snapshot, target)
    evidence.arm("identities", identity, "name", "properties.clientId")
    evidence.target(target, "access_allowed", "bind_allowed", "wi_allowed")
    allowed, _ = allowed_subjects(snapshot, target)
    outside = [p for p in graph.paths() if not is_allowed(p.subject, allowed)]
    for path in outside:
        if path.grant is not None:
            evidence.kube(dict(path.grant.binding_obj), "roleRef", "subjects")
        if path.kind == "host-network":
            evidence.kube(dict(graph.namespaces[path.namespace]), "metadata.labels")
        evidence.fix(_fix(path))
    where = ", ".join(str(t) for t in graph.targets) or "nowhere in this cluster"
    assert not outside, (
        f"principals outside what is allowed can act as the DNS identity {target.identity_name} (handed out at "
        f"{where}): " + "; ".join(p.text() for p in outside))
