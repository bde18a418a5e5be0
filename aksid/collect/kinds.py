"""The Kubernetes kinds the evidence holds: what the live collector lists and static mode fills from files.

Apart from the collector so a static or replay run can know them without importing the Kubernetes client.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindSpec:
    api_version: str
    kind: str
    plural: str
    custom: bool = False  # served only when its CRD is installed; 404 means absent, not error
    sensitive: bool = False  # read only with --aksid-read-secrets

    @property
    def path(self) -> str:
        prefix = "/api" if "/" not in self.api_version else "/apis"
        return f"{prefix}/{self.api_version}/{self.plural}"


KINDS: tuple[KindSpec, ...] = (
    KindSpec("v1", "Namespace", "namespaces"),
    KindSpec("v1", "Node", "nodes"),
    KindSpec("v1", "Pod", "pods"),
    KindSpec("v1", "Service", "services"),
    KindSpec("v1", "ServiceAccount", "serviceaccounts"),
    KindSpec("v1", "Secret", "secrets", sensitive=True),
    KindSpec("apps/v1", "DaemonSet", "daemonsets"),
    KindSpec("apps/v1", "Deployment", "deployments"),
    KindSpec("apps/v1", "ReplicaSet", "replicasets"),  # the link from a pod to its Deployment (owner chains)
    KindSpec("networking.k8s.io/v1", "Ingress", "ingresses"),
    KindSpec("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions"),
    # the workload identity webhook's registration (WI-002)
    KindSpec("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
    # who can act as an identity (ACCESS-001): RBAC as the API server evaluates it (aksid/access/rbac.py)
    KindSpec("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles"),
    KindSpec("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings"),
    KindSpec("rbac.authorization.k8s.io/v1", "Role", "roles"),
    KindSpec("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    KindSpec("aadpodidentity.k8s.io/v1", "AzureIdentity", "azureidentities", custom=True),
    KindSpec("aadpodidentity.k8s.io/v1", "AzureIdentityBinding", "azureidentitybindings", custom=True),
    KindSpec("aadpodidentity.k8s.io/v1", "AzurePodIdentityException", "azurepodidentityexceptions", custom=True),
    KindSpec("aadpodidentity.k8s.io/v1", "AzureAssignedIdentity", "azureassignedidentities", custom=True),
    KindSpec("cert-manager.io/v1", "ClusterIssuer", "clusterissuers", custom=True),
    KindSpec("cert-manager.io/v1", "Issuer", "issuers", custom=True),
    KindSpec("cert-manager.io/v1", "Certificate", "certificates", custom=True),
    KindSpec("cert-manager.io/v1", "CertificateRequest", "certificaterequests", custom=True),
    KindSpec("acme.cert-manager.io/v1", "Order", "orders", custom=True),
    KindSpec("acme.cert-manager.io/v1", "Challenge", "challenges", custom=True),
)
