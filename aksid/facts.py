"""Facts the checks, the chain picture and the diff share: one derivation each, so they cannot disagree.

A fact is read from the snapshot only (never the network), and says where it was read:
- a Certificate's issued leaf (`issued_leaf`: TLS-003, the chain's certificate node, the diff's cluster certificates);
- the pods of a workload (`workload_pods`: BIND-002, WI-002, WI-005, the allowed path of BIND-005/WI-006, the chain's
  pod node), and the workload a pod belongs to by name (`workload_of`: the diff's key for a pod's marks);
- an identity's role assignments (`role_assignments`, by `principal_of`: RBAC-001/002/003/005, the chain's role node,
  the diff's role assignments).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from aksid.snapshot import EvidenceUnavailable, Snapshot, placeholder
from aksid.trust import parse_chain
from aksid.workloads import pods_of

CERT_MANAGER = "cert-manager.io/v1"
REVISION = "cert-manager.io/certificate-revision"
CERTIFICATE_NAME = "cert-manager.io/certificate-name"


@dataclass(frozen=True)
class IssuedLeaf:
    """The leaf cert-manager issued for a Certificate, and where it was read (None: that source holds none)."""

    certificate: x509.Certificate | None
    source: str


def of_current_revision(snapshot: Snapshot, namespace: str, name: str, api_version: str, kind: str
                        ) -> dict[str, Any] | None:
    """The CertificateRequest (or ACME Order) of the Certificate's current revision, as cert-manager annotates it."""
    certificate = snapshot.kube.get(CERT_MANAGER, "Certificate", namespace, name)
    revision = ((certificate or {}).get("status") or {}).get("revision")
    if certificate is None or revision is None:
        return None
    for obj in snapshot.kube.list(api_version, kind, namespace):
        annotations = obj["metadata"].get("annotations") or {}
        if annotations.get(CERTIFICATE_NAME) == name and annotations.get(REVISION) == str(revision):
            return obj
    return None


def certificate_secret(snapshot: Snapshot, namespace: str, name: str) -> dict[str, Any] | None:
    """The Certificate's Secret when Secrets were read (--aksid-read-secrets) and listed; None otherwise."""
    if snapshot.kube.entry("v1", "Secret")["status"] != "ok":
        return None
    return snapshot.kube.get("v1", "Secret", namespace, name)


def first_certificate(encoded: str) -> x509.Certificate | None:
    """The first certificate of a base64 PEM bundle (tls.crt, status.certificate); None when there is none."""
    try:
        pem = base64.b64decode(encoded, validate=True).decode("utf-8") if encoded else ""
        return parse_chain([pem])[0] if pem else None
    except (binascii.Error, UnicodeDecodeError, ValueError, IndexError):
        return None


def issued_leaf(snapshot: Snapshot, namespace: str, name: str) -> IssuedLeaf:
    """The leaf cert-manager issued for Certificate namespace/name: the Secret's tls.crt when Secrets were read,
    else the current revision's CertificateRequest's status.certificate. Raises EvidenceUnavailable when neither
    can be read (no request of the current revision, Secrets not read)."""
    secret = certificate_secret(snapshot, namespace, name)
    if secret is not None:
        return IssuedLeaf(first_certificate((secret.get("data") or {}).get("tls.crt") or ""),
                          f"Secret {namespace}/{name} (tls.crt)")
    request = of_current_revision(snapshot, namespace, name, CERT_MANAGER, "CertificateRequest")
    if request is None:
        raise EvidenceUnavailable(
            f"no CertificateRequest of the current revision of Certificate {namespace}/{name} (and Secrets were not "
            "read: --aksid-read-secrets), so there is no issued certificate to compare")
    return IssuedLeaf(first_certificate((request.get("status") or {}).get("certificate") or ""),
                      f"CertificateRequest {namespace}/{request['metadata']['name']} (status.certificate)")


# -- the pods of a workload ------------------------------------------------------------------------

def workload_pods(snapshot: Snapshot, workload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pods a workload (Deployment, DaemonSet) takes: those of its namespace its selector matches (matchLabels
    and matchExpressions, as the controller applies them; an empty selector takes none), in listing order. Pods of
    older ReplicaSets are included: a rollout in flight shows both. Raises EvidenceUnavailable when pods could not be
    listed."""
    return pods_of(workload, snapshot.kube.pods(workload["metadata"].get("namespace")))


def find_workload(snapshot: Snapshot, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    """The Deployment or DaemonSet of that name (None: not in the cluster, or another kind)."""
    reader = {"Deployment": snapshot.kube.deployments, "DaemonSet": snapshot.kube.daemonsets}.get(kind)
    return next((w for w in reader(namespace) if w["metadata"]["name"] == name), None) if reader else None


def workload_of(pod: Mapping[str, Any]) -> str:
    """The pod's workload by name, the same across restarts and rollouts: `deployment/ns/name`, `daemonset/...`,
    `pod/...` (a bare pod). Read from the pod's ownerReferences (the ReplicaSet's pod-template-hash dropped), so
    every pod has one, bare or a Job's: the diff keys a pod's marks by it. The converse of `workload_pods` for the
    pods a controller created."""
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace", "")
    for owner in meta.get("ownerReferences") or []:
        name = owner.get("name", "")
        if owner.get("kind") == "ReplicaSet":
            template_hash = (meta.get("labels") or {}).get("pod-template-hash")
            base = name[: -len(template_hash) - 1] if template_hash and name.endswith("-" + template_hash) else name
            return f"deployment/{namespace}/{base}"
        return f"{str(owner.get('kind')).lower()}/{namespace}/{name}"
    return f"pod/{namespace}/{meta.get('name')}"


# -- an identity's role assignments ----------------------------------------------------------------

def principal_of(assignment: Mapping[str, Any]) -> str:
    """Whose a role assignment is, in the one spelling comparisons use: its principalId (any case of the key) in
    lower case (object ids are GUIDs, which ARM writes in either case); a placeholder of static mode as written
    (it matches only itself); "" when there is none."""
    props = assignment.get("properties") or {}
    value = next((v for k, v in props.items() if str(k).lower() == "principalid"), None)
    if not value:
        return ""
    return str(value) if placeholder(value) else str(value).lower()


def role_assignments(snapshot: Snapshot, principal: str | None) -> list[dict[str, Any]]:
    """The role assignments an identity holds: those whose principal is `principal` (its principalId, or the
    kubelet's objectId), in ARM's order; none for an identity without one. Raises EvidenceUnavailable when the
    assignments could not be read."""
    wanted = principal_of({"properties": {"principalId": principal}})
    if not wanted:
        return []
    return [a for a in snapshot.azure.role_assignments() if principal_of(a) == wanted]
