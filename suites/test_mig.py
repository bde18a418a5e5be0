"""MIG: the migration from pod identity to workload identity: nothing loses access at cutover, the migration
sidecar stays temporary, and nothing depends on pod identity after it (aksid/migration.py holds the view).

Steps of AKS's guide (workload-identity-migrate-from-pod-identity) and the check that proves each: the federated
trust and the ServiceAccount annotation before the switch, side by side, then the cutover (MIG-001); the sidecar for
old SDKs, temporary (MIG-003); the pod-identity labels and add-on removed (MIG-004, beside WI-005).
"""

from __future__ import annotations

from typing import Any

from aksid.allowed_path import speaks_workload_identity
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.identity_models import POD_IDENTITY_GROUP, POD_IDENTITY_LABEL, WI_CLIENT_ID_ANNOTATION, WI_USE_LABEL
from aksid.migration import (
    POD_SECURITY_ENFORCE,
    REFUSING_LEVELS,
    SIDECAR_ANNOTATION,
    WorkloadMigration,
    files_turn_pod_identity_off,
    pod_identity_served,
    view_of,
)
from aksid.modes import LIVE_MODES
from aksid.snapshot import Snapshot, kube_key
from aksid.workloads import pods_of

_TEMPLATE_LABEL = 'spec.template.metadata.labels["{}"]'
_TEMPLATE_ANNOTATION = 'spec.template.metadata.annotations["{}"]'


def _record_path(item: WorkloadMigration, snapshot: Snapshot, evidence: Evidence) -> None:
    """What the migration view read for one workload: its template, its ServiceAccount, its credential, the cluster."""
    evidence.kube(item.workload, _TEMPLATE_LABEL.format(POD_IDENTITY_LABEL), _TEMPLATE_LABEL.format(WI_USE_LABEL))
    account = snapshot.kube.get("v1", "ServiceAccount", item.namespace, item.service_account)
    if account is not None:
        evidence.kube(account, f'metadata.annotations["{WI_CLIENT_ID_ANNOTATION}"]')
    if item.credential is not None:
        evidence.arm("federatedCredentials", item.credential, "properties.issuer", "properties.subject",
                     "properties.audiences")
    cluster = snapshot.azure.managed_cluster() or {}
    evidence.arm("managedCluster", cluster, "properties.oidcIssuerProfile.issuerURL",
                 "properties.securityProfile.workloadIdentity.enabled")


# -- MIG-001 ------------------------------------------------------------------------------------

def _bindings_in_the_files(item: WorkloadMigration, snapshot: Snapshot) -> list[dict[str, Any]]:
    """The AzureIdentityBindings a workload selects that its manifests hold (the add-on's own go with the add-on)."""
    sources = snapshot.document.get("sources") or {}
    found = []
    for entry in item.pod_identity:
        namespace, _, name = str(entry["binding"]).partition("/")
        binding = snapshot.kube.get(POD_IDENTITY_GROUP, "AzureIdentityBinding", namespace, name)
        if binding is not None and kube_key("AzureIdentityBinding", namespace, name) in sources:
            found.append(binding)
    return found


def bound_by_pod_identity(snapshot: Snapshot, target: Target) -> dict[str, WorkloadMigration]:
    view = view_of(snapshot, target)
    bound = [w for w in view if w.pod_identity]
    cutover = files_turn_pod_identity_off(snapshot)
    if cutover is not None:  # judged now, whatever `migration_required` says: the files are the cutover
        held = [w for w in bound if _bindings_in_the_files(w, snapshot)]
        if not held:
            only_addon = f"; {', '.join(w.ref for w in bound)} select only the add-on's bindings, which go with it" \
                if bound else ""
            raise NotApplicable(f"the plan or template turns pod identity off ({cutover}) and no workload selects an "
                                f"AzureIdentityBinding the manifests hold{only_addon}")
        return {w.ref: w for w in held}
    if not bound:
        raise NotApplicable("no workload is bound by pod identity: nothing to cut over")
    if not target.requires_migration() and not any(w.uses_workload_identity for w in view):
        waiting = "; ".join(f"{w.ref} ({w.state}; missing: {', '.join(p.detail for p in w.missing) or 'nothing'})"
                            for w in bound)
        raise NotApplicable(f"the migration to workload identity has not started; still on pod identity: {waiting}; "
                            "set `migration_required` to judge (--aksid-set migration_required=true)")
    return {w.ref: w for w in bound}


@check(
    "MIG-001", "every workload still bound by pod identity has a complete workload identity path to the same Azure "
    "rights (it would not lose access at cutover)", "high",
    remediation="Before removing pod identity, for each workload: az aks update --enable-oidc-issuer "
                "--enable-workload-identity; annotate its ServiceAccount azure.workload.identity/client-id=<the pod "
                "identity's client id>; az identity federated-credential create --issuer <issuerURL> --subject "
                "system:serviceaccount:<ns>:<sa> --audiences api://AzureADTokenExchange; label its pod template "
                "azure.workload.identity/use: \"true\" and restart it (AKS: workload-identity-migrate-from-pod-identity).",
    subjects=bound_by_pod_identity,
    reads=("kube:Deployment", "kube:DaemonSet", "kube:ServiceAccount", "kube:AzureIdentityBinding",
           "kube:AzureIdentity", "azure:managedCluster", "azure:identities", "azure:federatedCredentials",
           "azure:roleAssignments"),
    link="pod → binding",
    # static mode judges it where the files hold the cutover: a plan or template turning the add-on off while a
    # manifest still binds a workload by pod identity
)
def test_pod_identity_workload_has_workload_identity_path(subject: WorkloadMigration, snapshot: Snapshot,
                                                          target: Target, evidence: Evidence) -> None:
    _record_path(subject, snapshot, evidence)
    evidence.target(target, "migration_required")
    missing = subject.missing
    evidence.fix("; ".join(dict.fromkeys(p.fix for p in missing if p.fix)))
    cutover = files_turn_pod_identity_off(snapshot)
    if cutover is not None:
        evidence.arm("managedCluster", snapshot.azure.managed_cluster() or {}, "properties.podIdentityProfile.enabled",
                     note=cutover)
        bindings = _bindings_in_the_files(subject, snapshot)
        for binding in bindings:
            evidence.kube(binding, "spec.selector", "spec.azureIdentity")
        sources = snapshot.document.get("sources") or {}
        places = [(b["metadata"].get("namespace"), b["metadata"]["name"]) for b in bindings]
        held = ", ".join(f"{ns}/{name} ({sources[kube_key('AzureIdentityBinding', ns, name)]['file']}:"
                         f"{sources[kube_key('AzureIdentityBinding', ns, name)]['line']})" for ns, name in places)
        assert not missing, (f"the plan or template turns pod identity off ({cutover}) while {subject.ref} still "
                             f"selects AzureIdentityBinding {held}: it would lose Azure access at cutover, its workload "
                             "identity path is incomplete: " + "; ".join(p.detail for p in missing))
        return
    assert not missing, (f"{subject.ref} ({subject.state}) would lose Azure access when pod identity is removed: "
                         + "; ".join(p.detail for p in missing))


# -- MIG-003 ------------------------------------------------------------------------------------

def sidecar_users(snapshot: Snapshot, target: Target) -> dict[str, WorkloadMigration]:
    found = {w.ref: w for w in view_of(snapshot, target) if w.sidecar}
    others = [d for d in snapshot.kube.deployments() + snapshot.kube.daemonsets()
              if SIDECAR_ANNOTATION in (((d.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                  "annotations", {}) and f"{d.get('kind', 'Deployment').lower()}/{d['metadata'].get('namespace')}/"
              f"{d['metadata']['name']}" not in found]
    for workload in others:  # asks for the sidecar without using (or having used) pod identity
        from aksid.migration import _migration_of

        kind = workload.get("kind") or "Deployment"
        item = _migration_of(snapshot, kind, workload, None, (snapshot.azure.managed_cluster() or {}).get(
            "properties") or {})
        found[item.ref] = item
    if not found:
        raise NotApplicable(f"no workload asks for the migration sidecar ({SIDECAR_ANNOTATION})")
    return found


def _cannot_work(item: WorkloadMigration, snapshot: Snapshot, evidence: Evidence) -> list[str]:
    spec = ((item.workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    problems = []
    evidence.kube(item.workload, "spec.template.spec.hostNetwork")
    if spec.get("hostNetwork"):
        problems.append("its pods use hostNetwork, and the workload identity webhook refuses to inject the sidecar "
                        "into them (\"hostNetwork is set to true, cannot inject proxy sidecar\"): the pods are not "
                        "created")
    namespace = snapshot.kube.get("v1", "Namespace", None, item.namespace)
    if namespace is not None:
        evidence.kube(namespace, f'metadata.labels["{POD_SECURITY_ENFORCE}"]')
        level = ((namespace.get("metadata") or {}).get("labels") or {}).get(POD_SECURITY_ENFORCE)
        if level in REFUSING_LEVELS:
            problems.append(f"namespace {item.namespace} enforces Pod Security level {level}, which refuses the "
                            "sidecar's privileged init container azwi-proxy-init (NET_ADMIN, runAsUser 0)")
    if not any(p.name == "use label" and p.holds for p in item.pieces):
        problems.append(f"its pod template does not carry {WI_USE_LABEL}: \"true\", so the webhook never sees its "
                        "pods and injects no sidecar")
    return problems


@check(
    "MIG-003", "the migration sidecar is temporary: only on workloads that still need it, and only where it can work",
    "medium",
    remediation="Remove the pod annotation azure.workload.identity/inject-proxy-sidecar once the application uses a "
                "current Azure Identity SDK (or its own workload identity setting) and pod identity is gone; it cannot "
                "run on hostNetwork pods nor where Pod Security enforces baseline or restricted (its init container is "
                "privileged).",
    subjects=sidecar_users,
    reads=("kube:Deployment", "kube:DaemonSet", "kube:Namespace", "kube:AzureIdentityBinding", "kube:ServiceAccount",
           "kube:Secret"),
    link="pod → binding",
    # live only: MIG-001 and MIG-002 judge what the files hold of the cutover; whether the sidecar is still needed
    # or a pod still selects a binding is the running cluster's state, which no plan or manifest shows
    modes=LIVE_MODES,
)
def test_migration_sidecar_temporary(subject: WorkloadMigration, snapshot: Snapshot, target: Target,
                                     evidence: Evidence) -> None:
    evidence.kube(subject.workload, _TEMPLATE_ANNOTATION.format(SIDECAR_ANNOTATION),
                  _TEMPLATE_LABEL.format(POD_IDENTITY_LABEL))
    remove = (f"kubectl -n {subject.namespace} patch {subject.kind.lower()} {subject.name} --type json -p "
              f"'[{{\"op\":\"remove\",\"path\":\"/spec/template/metadata/annotations/"
              f"{SIDECAR_ANNOTATION.replace('/', '~1')}\"}}]'")
    problems = _cannot_work(subject, snapshot, evidence)
    if problems:
        evidence.fix(f"{remove} (or fix what refuses it)")
        raise AssertionError(f"{subject.ref} asks for the migration sidecar, which cannot work: {'; '.join(problems)}")
    evidence.fix(remove)
    own = speaks_workload_identity(snapshot, subject.workload)
    evidence.kube(subject.workload, "spec.template.spec.containers[0].image")
    assert own is None, (
        f"{subject.ref} asks for the migration sidecar ({SIDECAR_ANNOTATION}), but {own}: the sidecar only serves "
        "applications on an old Azure Identity SDK, and AKS's guide calls it temporary, not for production; remove the "
        "annotation")
    assert subject.pod_identity, (
        f"{subject.ref} no longer uses pod identity ({subject.state}) but still asks for the migration sidecar "
        f"({SIDECAR_ANNOTATION}), which AKS's guide calls temporary, not for production: move the application to a "
        "current Azure Identity SDK and remove the annotation")


# -- MIG-004 ------------------------------------------------------------------------------------

def after_cutover(snapshot: Snapshot, target: Target) -> dict[str, tuple[str, Any]]:
    served, because = pod_identity_served(snapshot)
    if served is not False:
        raise NotApplicable(f"pod identity is still served ({because}): MIG-004 judges what is left after the "
                            "cutover, MIG-001 whether the cutover is safe")
    subjects: dict[str, tuple[str, Any]] = {w.ref: ("workload", w) for w in view_of(snapshot, target)}
    if snapshot.kube.served(POD_IDENTITY_GROUP, "AzureIdentityBinding"):
        for binding in snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentityBinding"):
            meta = binding["metadata"]
            subjects[f"azureidentitybinding/{meta.get('namespace')}/{meta['name']}"] = ("binding", binding)
    if not subjects:
        raise NotApplicable("no workload uses or used pod identity and no AzureIdentityBinding is left")
    return subjects


@check(
    "MIG-004", "after the cutover nothing still depends on pod identity: no binding selects a live pod, no "
    "aadpodidbinding label is left on a workload", "medium",
    remediation="Move each pod still selecting an AzureIdentityBinding to workload identity (MIG-001's pieces), then "
                "delete the binding; remove the label aadpodidbinding from the pod templates of workloads on workload "
                "identity (a binding re-created with that selector would give them the identity again).",
    subjects=after_cutover,
    reads=("kube:Deployment", "kube:DaemonSet", "kube:Pod", "kube:AzureIdentityBinding", "azure:managedCluster"),
    link="pod → binding",
    # live only: what still depends on pod identity after the cutover is the running cluster's pods, which no plan or
    # manifest shows (MIG-001 judges, from the files, a cutover that would strand a workload)
    modes=LIVE_MODES,
)
def test_nothing_depends_on_pod_identity(subject: tuple[str, Any], snapshot: Snapshot, target: Target,
                                         evidence: Evidence) -> None:
    kind, value = subject
    cluster = snapshot.azure.managed_cluster() or {}
    evidence.arm("managedCluster", cluster, "properties.podIdentityProfile.enabled")
    if kind == "binding":
        selector = (value.get("spec") or {}).get("selector")
        namespace = value["metadata"].get("namespace")
        evidence.kube(value, "spec.selector", "spec.azureIdentity")
        carriers = snapshot.kube.pods(namespace, labels={POD_IDENTITY_LABEL: str(selector)}) if selector else []
        evidence.kube_count("v1/Pod", carriers, namespace, note=f"carry {POD_IDENTITY_LABEL}={selector}")
        evidence.fix(f"kubectl -n {namespace} delete azureidentitybinding {value['metadata']['name']} once its pods "
                     "use workload identity")
        assert not carriers, (
            f"AzureIdentityBinding {namespace}/{value['metadata']['name']} (selector {selector}) still selects pods "
            f"{', '.join(p['metadata']['name'] for p in carriers)}, but pod identity is gone: they have no Azure "
            "identity; move them to workload identity and delete the binding")
        return
    item: WorkloadMigration = value
    label = ((((item.workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
             or {}).get(POD_IDENTITY_LABEL)
    evidence.kube(item.workload, _TEMPLATE_LABEL.format(POD_IDENTITY_LABEL))
    for pod in pods_of(item.workload, snapshot.kube.pods(item.namespace))[:3]:
        evidence.kube(pod, f"metadata.labels.{POD_IDENTITY_LABEL}")
    evidence.fix(f"kubectl -n {item.namespace} patch {item.kind.lower()} {item.name} --type json -p "
                 f"'[{{\"op\":\"remove\",\"path\":\"/spec/template/metadata/labels/{POD_IDENTITY_LABEL}\"}}]'")
    if label is None:
        return
    if item.pod_identity:
        raise AssertionError(f"{item.ref} still depends on pod identity ({POD_IDENTITY_LABEL}={label} selects "
                             f"{', '.join(b['binding'] for b in item.pod_identity)}), which is gone: it lost its Azure "
                             "identity at cutover; give it workload identity (MIG-001's pieces)")
    state = "uses workload identity" if item.uses_workload_identity else "reaches no identity"
    raise AssertionError(f"{item.ref} {state} but its pod template still carries {POD_IDENTITY_LABEL}={label}: "
                         "remove the label (a binding re-created with that selector would bind it again)")
