"""ACCESS-001: the Kubernetes principals who can act as the DNS identity are within what is allowed.

The paths are aksid/access/paths.py's (RBAC as the API server evaluates it, Pod Security levels, the identity's
pod-identity bindings and federated ServiceAccounts); who is allowed is aksid/access/who_can.py's allowed_subjects
(one copy: `aksid who-can` and report.html's picture judge with it too); this module only judges.
"""

from __future__ import annotations

from typing import Any

from aksid.access.paths import Graph, Path
from aksid.access.who_can import allowed_subjects, is_allowed, kube_graph, most_direct_first  # one copy each
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.snapshot import Snapshot


def access_graph(snapshot: Snapshot, target: Target) -> tuple[dict[str, Any], Graph]:
    """The DNS identity and the kube side of its access graph (built once per snapshot: report.html draws it too)."""
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise NotApplicable(f"no user-assigned identity named {target.identity_name} (set IDENTITY_NAME)")
    return identity, kube_graph(snapshot, identity, target.trusted_issuers())


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
    where = ", ".join(str(t) for t in graph.targets) or "nowhere in this cluster"
    # one line per principal, its most direct way (and its fix): every way is in the evidence and `aksid who-can`
    ways: dict[str, list[Path]] = {}
    for path in most_direct_first(outside):
        ways.setdefault(str(path.subject), []).append(path)
    evidence.fix("; ".join(dict.fromkeys(_fix(found[0]) for found in ways.values())))
    assert not outside, (
        f"principals outside what is allowed can act as the DNS identity {target.identity_name} (handed out at "
        f"{where}): " + "; ".join(found[0].text() + (f" (and {len(found) - 1} more way{'s' * (len(found) > 2)}: "
                                                      "aksid who-can lists them)" if len(found) > 1 else "")
                                  for found in ways.values()))
