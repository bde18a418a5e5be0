"""WI: Workload Identity gives the DNS identity to exactly the allowed ServiceAccounts, and nothing of pod identity lingers.

Every check here is skipped, with the reason, on a cluster that does not use workload identity.
"""

from __future__ import annotations

from typing import Any

import pytest

from aksid import facts
from aksid.allowed_path import workload_identity_markers, workload_identity_path
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.identity_models import (
    POD_IDENTITY,
    POD_IDENTITY_GROUP,
    POD_IDENTITY_LABEL,
    WI_AUDIENCE,
    WI_CLIENT_ID_ANNOTATION,
    WI_USE_LABEL,
    WORKLOAD_IDENTITY,
    WorkloadModels,
    injected_client_id,
    service_account_name,
    uses_workload_identity,
    workload_models,
)
from aksid.migration import view_of
from aksid.modes import LIVE_MODES
from aksid.nodes import is_pod_ready
from aksid.snapshot import EvidenceUnavailable, Snapshot, names, unknown_until_apply

# The azure-workload-identity webhook: the AKS add-on runs it in kube-system, the Helm chart / deploy manifest in
# azure-workload-identity-system; both name it the same (deploy/azure-wi-webhook.yaml upstream).
WEBHOOK_DEPLOYMENT = "azure-wi-webhook-controller-manager"
WEBHOOK_CONFIGURATION = "azure-wi-webhook-mutating-webhook-configuration"
WEBHOOK_NAME = "mutation.azure-workload-identity.io"
WEBHOOK_LABELS = {"azure-workload-identity.io/system": "true"}
ADDON_NAMESPACE = "kube-system"
SUBJECT_PREFIX = "system:serviceaccount:"


def _ref(obj: dict[str, Any]) -> str:
    namespace = obj["metadata"].get("namespace")
    return f"{namespace}/{obj['metadata']['name']}" if namespace else obj["metadata"]["name"]


def _cluster_properties(snapshot: Snapshot, target: Target) -> dict[str, Any]:
    cluster = snapshot.azure.managed_cluster()
    assert cluster is not None, f"managed cluster {target.aks_resource_group}/{target.cluster_name} does not exist"
    return cluster.get("properties") or {}


def _dns_identity(snapshot: Snapshot, target: Target) -> dict[str, Any]:
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise NotApplicable(f"no user-assigned identity named {target.identity_name} (set IDENTITY_NAME)")
    return identity


def _client_id(identity: dict[str, Any]) -> str:
    return str((identity.get("properties") or {}).get("clientId") or "")


def _same_client(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and str(a).lower() == str(b).lower()


def _allowed_text(target: Target) -> str:
    return ", ".join(sorted(f"{ns}/{sa}" for ns, sa in target.allowed_service_accounts())) or "none"


def _webhook_deployments(snapshot: Snapshot, namespace: str | None = None) -> list[dict[str, Any]]:
    return [d for d in snapshot.kube.deployments(namespace)
            if d["metadata"]["name"] == WEBHOOK_DEPLOYMENT
            or all((d["metadata"].get("labels") or {}).get(k) == v for k, v in WEBHOOK_LABELS.items())]


# -- WI-001 -------------------------------------------------------------------------------------

@check(
    "WI-001", "the cluster's OIDC issuer is enabled, and workload identity too (or its webhook is self-installed)",
    "critical",
    remediation="az aks update -g <AZ_AKS_RESOURCE_GROUP> -n <AZ_AKS_CLUSTER_NAME> --enable-oidc-issuer "
                "--enable-workload-identity (the OIDC issuer cannot be turned off again; its URL is what every "
                "federated credential must name).",
    model=WORKLOAD_IDENTITY,
    reads=("azure:managedCluster", "kube:Deployment"),
    link="pod → binding",
)
def test_oidc_issuer_and_workload_identity_enabled(snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    props = _cluster_properties(snapshot, target)
    evidence.arm("managedCluster", snapshot.azure.managed_cluster() or {}, "properties.oidcIssuerProfile.enabled",
                 "properties.oidcIssuerProfile.issuerURL", "properties.securityProfile.workloadIdentity.enabled")
    for deployment in _webhook_deployments(snapshot):
        evidence.kube(deployment, "metadata.namespace")
    evidence.fix(f"az aks update -g {target.aks_resource_group} -n {target.cluster_name} --enable-oidc-issuer "
                 "--enable-workload-identity")
    oidc = props.get("oidcIssuerProfile") or {}
    feature = ((props.get("securityProfile") or {}).get("workloadIdentity") or {}).get("enabled")
    problems = []
    if not oidc.get("enabled"):
        problems.append("the OIDC issuer is disabled (oidcIssuerProfile.enabled is not true), so Entra ID cannot "
                        "verify the cluster's ServiceAccount tokens")
    elif not oidc.get("issuerURL"):
        problems.append("the OIDC issuer is enabled but the cluster reports no issuerURL")
    if not feature:
        self_installed = [d for d in _webhook_deployments(snapshot) if d["metadata"].get("namespace") != ADDON_NAMESPACE]
        if not self_installed:
            problems.append("workload identity is disabled (securityProfile.workloadIdentity.enabled is not true) "
                            f"and no self-installed webhook ({WEBHOOK_DEPLOYMENT}) runs, so no pod gets its token "
                            "file or AZURE_* variables")
    assert not problems, f"cluster {target.cluster_name}: {'; '.join(problems)}"


# -- WI-002 -------------------------------------------------------------------------------------

def _webhook_configuration(snapshot: Snapshot) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The MutatingWebhookConfiguration of azure-workload-identity and its pod webhook, found by name."""
    for configuration in snapshot.kube.mutating_webhooks():
        for webhook in configuration.get("webhooks") or []:
            if webhook.get("name") == WEBHOOK_NAME or configuration["metadata"]["name"] == WEBHOOK_CONFIGURATION:
                return configuration, webhook
    return None


def _ready(deployment: dict[str, Any], snapshot: Snapshot) -> tuple[bool, str]:
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    ready = status.get("readyReplicas") or 0
    available = any(c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or [])
    pods = facts.workload_pods(snapshot, deployment)
    ready_pods = [p for p in pods if is_pod_ready(p)]
    if ready >= 1 and available and ready_pods:
        return True, ""
    return False, (f"deployment {_ref(deployment)} has {ready} of {wanted} replicas ready "
                   f"({len(ready_pods)} of {len(pods)} pods ready{'' if available else ', not Available'})")


@check(
    "WI-002", "the workload identity webhook runs, is ready, and its MutatingWebhookConfiguration sends it the pods",
    "critical",
    remediation="AKS add-on: `az aks update --enable-workload-identity` re-creates it in kube-system; self-installed: "
                "`helm upgrade --install workload-identity-webhook azure-workload-identity/workload-identity-webhook "
                "--namespace azure-workload-identity-system --set azureTenantID=<tenant>`. Without it pods labelled "
                "azure.workload.identity/use get no token file and no AZURE_* variables.",
    modes=LIVE_MODES,
    model=WORKLOAD_IDENTITY,
    reads=("kube:MutatingWebhookConfiguration", "kube:Deployment", "kube:Pod"),
    link="pod → binding",
)
def test_webhook_ready(snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    found = _webhook_configuration(snapshot)
    deployments = _webhook_deployments(snapshot)
    evidence.fix(f"az aks update -g {target.aks_resource_group} -n {target.cluster_name} --enable-workload-identity")
    if found is None:
        evidence.kube_count("admissionregistration.k8s.io/v1/MutatingWebhookConfiguration", snapshot.kube.mutating_webhooks(),
                            note=f"none is {WEBHOOK_CONFIGURATION}")
    where = ", ".join(names(deployments)) or "none"
    assert found is not None, (
        f"no MutatingWebhookConfiguration {WEBHOOK_CONFIGURATION} (webhook {WEBHOOK_NAME}); webhook deployments: "
        f"{where}: the API server never asks the webhook to mutate pods")
    configuration, webhook = found
    index = (configuration.get("webhooks") or []).index(webhook)
    evidence.kube(configuration, f"webhooks[{index}].name", f"webhooks[{index}].clientConfig.service",
                  f"webhooks[{index}].failurePolicy")
    service = (webhook.get("clientConfig") or {}).get("service") or {}
    namespace = service.get("namespace")
    assert namespace, (f"MutatingWebhookConfiguration {_ref(configuration)} calls {webhook.get('clientConfig')}, not the "
                       "webhook's Service in the cluster")
    own = _webhook_deployments(snapshot, namespace)
    policy = webhook.get("failurePolicy", "Fail")
    assert own, (f"MutatingWebhookConfiguration {_ref(configuration)} calls Service {namespace}/{service.get('name')}, "
                 f"but no {WEBHOOK_DEPLOYMENT} runs in {namespace} (webhook deployments: {where}); with failurePolicy "
                 f"{policy} labelled pods are {'refused' if policy == 'Fail' else 'left without tokens'}")
    for deployment in own:
        evidence.kube(deployment, "spec.replicas", "status.readyReplicas")
        evidence.kube_condition(deployment, "Available")
        evidence.fix(f"kubectl -n {namespace} describe deployment {deployment['metadata']['name']}; kubectl -n {namespace} "
                     f"rollout restart deployment {deployment['metadata']['name']}")
    not_ready = [reason for ok, reason in (_ready(d, snapshot) for d in own) if not ok]
    assert len(not_ready) < len(own), f"the workload identity webhook is not ready: {'; '.join(not_ready)}"


# -- WI-003 -------------------------------------------------------------------------------------

def dns_identity_credentials(snapshot: Snapshot, target: Target) -> dict[str, tuple[dict[str, Any], Any]]:
    """Each federated identity credential of the DNS identity (or the identity itself, when it has none)."""
    identity = _dns_identity(snapshot, target)
    credentials = snapshot.azure.federated_credentials(identity["id"])
    if not credentials:
        return {f"identity/{identity['name']}": (identity, None)}
    return {f"federatedcredential/{identity['name']}/{c['name']}": (identity, c) for c in credentials}


def _dns_identity_users(snapshot: Snapshot, client_id: str) -> list[WorkloadModels]:
    return [w for w in workload_models(snapshot)
            if any(b.model == WORKLOAD_IDENTITY and _same_client(b.client_id, client_id) for b in w.bindings)]


def _issuer_problem(issuer: str | None, cluster_issuer: str | None, cluster: str,
                    trusted: list[str] | None = None) -> str | None:
    if issuer in (trusted or []):
        return None  # another cluster of the team's, listed in wi_trusted_issuers (exact, as Entra compares)
    if not cluster_issuer:
        return f"trusts issuer {issuer}, but cluster {cluster} publishes no OIDC issuer URL"
    if issuer == cluster_issuer:
        return None
    if (issuer or "").rstrip("/") == cluster_issuer.rstrip("/"):
        return (f"names issuer {issuer}, which differs from cluster {cluster}'s {cluster_issuer} only in the trailing "
                "slash: Entra ID compares them exactly and refuses the token")
    return (f"trusts issuer {issuer}, which is not cluster {cluster}'s ({cluster_issuer}) nor listed in "
            "wi_trusted_issuers: tokens of another cluster can be exchanged for the DNS identity (a cluster of yours: "
            f"--aksid-set wi_trusted_issuers={issuer})")


@check(
    "WI-003", "every federated credential of the DNS identity trusts this cluster's issuer, the token-exchange "
    "audience and exactly an allowed ServiceAccount", "critical",
    remediation="Delete the credential (`az identity federated-credential delete --identity-name <IDENTITY_NAME> "
                "-g <group> -n <name>`) and create one per allowed ServiceAccount with --issuer <the cluster's "
                "oidcIssuerProfile.issuerURL> --subject system:serviceaccount:<namespace>:<serviceaccount> "
                "--audiences api://AzureADTokenExchange; allow more with --aksid-set wi_allowed=NAMESPACE/SA,...",
    subjects=dns_identity_credentials,
    model=WORKLOAD_IDENTITY,
    reads=("azure:federatedCredentials", "azure:identities", "azure:managedCluster", "kube:Deployment",
           "kube:DaemonSet", "kube:ServiceAccount"),
    link="binding → identity",
    groups=("azure:federatedCredentials",),
)
def test_federated_credential_exact(subject: tuple[dict[str, Any], Any], snapshot: Snapshot, target: Target,
                                    evidence: Evidence) -> None:
    identity, credential = subject
    evidence.arm("identities", identity, "name", "properties.clientId")
    group = str(identity["id"]).split("/")[4] if str(identity["id"]).count("/") > 4 else "<group>"
    if credential is None:
        users = _dns_identity_users(snapshot, _client_id(identity))
        evidence.add("arm federatedCredentials", f'["{str(identity["id"]).lower()}"]', [])
        issuer = (_cluster_properties(snapshot, target).get("oidcIssuerProfile") or {}).get("issuerURL")
        evidence.fix("; ".join(
            f"az identity federated-credential create --identity-name {identity['name']} -g {group} -n {u.name} "
            f"--issuer {issuer} --subject system:serviceaccount:{u.namespace}:{u.service_account} "
            f"--audiences {WI_AUDIENCE}" for u in users))
        assert not users, (
            f"identity {identity['name']} has no federated credential, but {', '.join(u.ref for u in users)} "
            "use it through workload identity: their token exchange fails (AADSTS70021)")
        return
    props = credential.get("properties") or {}
    name = f"federated credential {credential['name']} of {identity['name']}"
    cluster_issuer = (_cluster_properties(snapshot, target).get("oidcIssuerProfile") or {}).get("issuerURL")
    evidence.arm("federatedCredentials", credential, "properties.issuer", "properties.audiences", "properties.subject")
    evidence.arm("managedCluster", snapshot.azure.managed_cluster() or {}, "properties.oidcIssuerProfile.issuerURL")
    evidence.target(target, "wi_allowed")
    evidence.fix(f"az identity federated-credential delete --identity-name {identity['name']} -g {group} -n "
                 f"{credential['name']}; then create one per allowed ServiceAccount ({_allowed_text(target)}) with "
                 f"--issuer {cluster_issuer} --audiences {WI_AUDIENCE}")
    problems = []
    evidence.target(target, "wi_trusted_issuers")
    issuer_problem = _issuer_problem(props.get("issuer"), cluster_issuer, target.cluster_name, target.trusted_issuers())
    if issuer_problem:
        problems.append(issuer_problem)
    audiences = props.get("audiences") or []
    if audiences != [WI_AUDIENCE]:
        problems.append(f"has audiences {audiences}, expected exactly ['{WI_AUDIENCE}']")
    subject_name = str(props.get("subject") or "")
    namespace, _, account = subject_name.removeprefix(SUBJECT_PREFIX).partition(":")
    if not subject_name.startswith(SUBJECT_PREFIX) or not namespace or not account or ":" in account:
        problems.append(f"has subject {subject_name!r}, not system:serviceaccount:<namespace>:<serviceaccount>")
    elif (namespace, account) not in target.allowed_service_accounts():
        problems.append(f"trusts ServiceAccount {namespace}/{account} (subject {subject_name}), which is not an allowed "
                        f"one ({_allowed_text(target)}): every pod running as it can write the zone")
    assert not problems, f"{name} {'; '.join(problems)}"


# -- WI-004 -------------------------------------------------------------------------------------

def client_id_carriers(snapshot: Snapshot, target: Target) -> dict[str, tuple[str, Any]]:
    """ServiceAccounts annotated with the DNS identity's client id, and the pods using it through workload identity."""
    identity = _dns_identity(snapshot, target)
    client_id = _client_id(identity)
    if unknown_until_apply(client_id):
        raise NotApplicable(f"the DNS identity's client id is {client_id}: which ServiceAccounts carry it cannot be told")
    subjects: dict[str, tuple[str, Any]] = {}
    for account in snapshot.kube.service_accounts():
        annotation = (account["metadata"].get("annotations") or {}).get(WI_CLIENT_ID_ANNOTATION)
        if _same_client(annotation, client_id):
            subjects[f"serviceaccount/{_ref(account)}"] = ("serviceaccount", account)
    subjects["pods/workload-identity"] = ("pods", identity)
    return subjects


def _pods_using(snapshot: Snapshot, client_id: str) -> list[tuple[dict[str, Any], str]]:
    """(pod, its ServiceAccount) of each pod that takes the client id through workload identity."""
    annotated = {(sa["metadata"].get("namespace"), sa["metadata"]["name"])
                 for sa in snapshot.kube.service_accounts()
                 if _same_client((sa["metadata"].get("annotations") or {}).get(WI_CLIENT_ID_ANNOTATION), client_id)}
    found = []
    for pod in snapshot.kube.pods():
        spec = pod.get("spec") or {}
        account = service_account_name(spec)
        by_annotation = uses_workload_identity(pod["metadata"].get("labels")) and (
            pod["metadata"].get("namespace"), account) in annotated
        if by_annotation or _same_client(injected_client_id(spec), client_id):
            found.append((pod, account))
    return found


@check(
    "WI-004", "only the allowed ServiceAccounts carry the DNS identity's client id, and only their pods use it",
    "high",
    remediation="Remove the annotation azure.workload.identity/client-id (and the label azure.workload.identity/use, "
                "and any AZURE_CLIENT_ID) from other ServiceAccounts and pods; give each app its own identity. "
                "Allow more with --aksid-set wi_allowed=NAMESPACE/SA,...",
    subjects=client_id_carriers,
    model=WORKLOAD_IDENTITY,
    reads=("kube:ServiceAccount", "kube:Pod", "azure:identities"),
    link="pod → binding",
    groups=("kube:ServiceAccount",),
)
def test_client_id_only_on_allowed(subject: tuple[str, Any], snapshot: Snapshot, target: Target,
                                   evidence: Evidence) -> None:
    kind, value = subject
    allowed = target.allowed_service_accounts()
    evidence.target(target, "wi_allowed")
    if kind == "serviceaccount":
        key = (value["metadata"].get("namespace"), value["metadata"]["name"])
        evidence.kube(value, f'metadata.annotations["{WI_CLIENT_ID_ANNOTATION}"]')
        evidence.fix(f"kubectl -n {key[0]} annotate serviceaccount {key[1]} {WI_CLIENT_ID_ANNOTATION}-")
        assert key in allowed, (
            f"ServiceAccount {_ref(value)} carries {WI_CLIENT_ID_ANNOTATION} of the DNS identity "
            f"{target.identity_name}, but is not an allowed one ({_allowed_text(target)}); remove the annotation")
        return
    evidence.arm("identities", value, "name", "properties.clientId")
    using = _pods_using(snapshot, _client_id(value))
    for pod, _ in using:
        evidence.kube(pod, "spec.serviceAccountName", f'metadata.labels["{WI_USE_LABEL}"]')
    evidence.kube_count("v1/Pod", snapshot.kube.pods(), note=f"{len(using)} use the DNS identity's client id")
    intruders = [(pod, account) for pod, account in using if (pod["metadata"].get("namespace"), account) not in allowed]
    evidence.fix("; ".join(
        f"kubectl -n {p['metadata'].get('namespace')} annotate serviceaccount {a} {WI_CLIENT_ID_ANNOTATION}- and remove "
        f"the label {WI_USE_LABEL} (and AZURE_CLIENT_ID) from the workload of pod {p['metadata']['name']}"
        for p, a in intruders))
    assert not intruders, (
        "pods use the DNS identity's client id through workload identity outside the allowed ServiceAccounts ("
        f"{_allowed_text(target)}): " + ", ".join(f"{_ref(p)} (ServiceAccount {a})" for p, a in intruders))


# -- WI-005 -------------------------------------------------------------------------------------

def migration(snapshot: Snapshot, _target: Target) -> dict[str, tuple[str, Any]]:
    subjects: dict[str, tuple[str, Any]] = {
        w.ref: ("workload", w) for w in workload_models(snapshot) if WORKLOAD_IDENTITY in w.models}
    subjects["addon/pod-identity"] = ("addon", None)
    return subjects


def _pod_identity_objects(snapshot: Snapshot) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not snapshot.kube.served(POD_IDENTITY_GROUP, "AzureIdentityBinding"):
        return [], []
    return (snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentityBinding"),
            snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentity"))


def _leftovers_of(workload: WorkloadModels, snapshot: Snapshot, target: Target) -> list[str]:
    """Pod identity objects that still point at a workload now on workload identity: bindings its pods' label or
    the bind_allowed setting names, their AzureIdentity, and the add-on's podIdentityProfile entry."""
    bindings, identities = _pod_identity_objects(snapshot)
    selectors = {target.allowed_bindings().get((workload.namespace, workload.name))}
    selectors |= {(p["metadata"].get("labels") or {}).get(POD_IDENTITY_LABEL) for p in _pods_of(workload, snapshot)}
    selectors.discard(None)
    found = []
    for binding in bindings:
        spec = binding.get("spec") or {}
        if binding["metadata"].get("namespace") == workload.namespace and spec.get("selector") in selectors:
            found.append(f"AzureIdentityBinding {_ref(binding)} (selector {spec.get('selector')})")
            found += [f"AzureIdentity {_ref(i)}" for i in identities
                      if i["metadata"].get("namespace") == workload.namespace
                      and i["metadata"]["name"] == spec.get("azureIdentity")]
    profile = (_cluster_properties(snapshot, target).get("podIdentityProfile") or {})
    found += [f"the add-on's pod identity {e.get('namespace')}/{e.get('name')}"
              for e in profile.get("userAssignedIdentities") or []
              if e.get("namespace") == workload.namespace and e.get("bindingSelector") in selectors]
    return list(dict.fromkeys(found))


def _removal(leftover: str, target: Target) -> str:
    """The command that removes one leftover named by _leftovers_of."""
    words = leftover.split(" ")
    if leftover.startswith("the add-on's pod identity "):
        namespace, _, name = words[-1].partition("/")
        return (f"az aks pod-identity delete -g {target.aks_resource_group} --cluster-name {target.cluster_name} "
                f"--namespace {namespace} --name {name}")
    namespace, _, name = words[1].partition("/")
    return f"kubectl -n {namespace} delete {words[0].lower()} {name}"


def _side_by_side(workload: WorkloadModels, snapshot: Snapshot, target: Target) -> bool:
    """Whether the migration view has the workload `side by side`: both paths complete on purpose, as the guide deploys
    them before verifying and removing pod identity. Its binding is in use then, not left behind."""
    return any(m.ref == workload.ref and m.state == "side by side" for m in view_of(snapshot, target))


def _pods_of(workload: WorkloadModels, snapshot: Snapshot) -> list[dict[str, Any]]:
    raw = facts.find_workload(snapshot, workload.kind, workload.namespace, workload.name)
    return facts.workload_pods(snapshot, raw) if raw is not None else []


@check(
    "WI-005", "migration hygiene: no pod identity is left for workloads on workload identity, and the pod-identity "
    "add-on is disabled once nothing uses it", "medium",
    remediation="`az aks pod-identity delete -g <rg> --cluster-name <cluster> --namespace <ns> --name <name>` for each "
                "leftover (the add-on removes its AzureIdentity and binding), then `az aks update -g <rg> -n <cluster> "
                "--disable-pod-identity` once no workload uses pod identity: NMI and the node pool's identity "
                "assignments are attack surface nothing needs.",
    subjects=migration,
    model=WORKLOAD_IDENTITY,
    reads=("azure:managedCluster", "kube:AzureIdentityBinding", "kube:AzureIdentity", "kube:Deployment",
           "kube:DaemonSet", "kube:ServiceAccount", "kube:Pod", "azure:identities", "azure:federatedCredentials"),
    link="pod → binding",
)
def test_no_pod_identity_left_behind(subject: tuple[str, Any], snapshot: Snapshot, target: Target,
                                     evidence: Evidence) -> None:
    kind, workload = subject
    cluster = snapshot.azure.managed_cluster() or {}
    evidence.arm("managedCluster", cluster, "properties.podIdentityProfile.enabled",
                 "properties.podIdentityProfile.userAssignedIdentities")
    if kind == "workload":
        bindings, _ = _pod_identity_objects(snapshot)
        for binding in bindings:
            evidence.kube(binding, "spec.selector", "spec.azureIdentity")
        for pod in _pods_of(workload, snapshot):
            evidence.kube(pod, f"metadata.labels.{POD_IDENTITY_LABEL}", f'metadata.labels["{WI_USE_LABEL}"]')
        if _side_by_side(workload, snapshot, target):
            pytest.skip(f"{workload.ref} runs side by side (its pod identity and its workload identity paths are both "
                        "complete: the migration guide's verification step, MIG-001 green); its pod identity is judged "
                        f"once its pods lose the {POD_IDENTITY_LABEL} label")
        leftovers = _leftovers_of(workload, snapshot, target)
        evidence.fix("; ".join(_removal(item, target) for item in leftovers))
        assert not leftovers, (
            f"{workload.ref} uses workload identity, but {', '.join(leftovers)} still "
            f"{'targets' if len(leftovers) == 1 else 'target'} it; remove {'it' if len(leftovers) == 1 else 'them'}")
        return
    profile = _cluster_properties(snapshot, target).get("podIdentityProfile") or {}
    if not profile.get("enabled"):
        return
    users = [w.ref for w in workload_models(snapshot) if POD_IDENTITY in w.models]
    evidence.fix(f"az aks update -g {target.aks_resource_group} -n {target.cluster_name} --disable-pod-identity")
    assert users, (
        f"the pod-identity add-on of {target.cluster_name} is enabled (podIdentityProfile.enabled) but no workload "
        f"uses pod identity any more ({len(profile.get('userAssignedIdentities') or [])} pod identities still "
        "assigned); disable it with `az aks update --disable-pod-identity`")


# -- WI-006 -------------------------------------------------------------------------------------

def _meant_to_run_as(snapshot: Snapshot, namespace: str, account: str) -> list[dict[str, Any]]:
    """The workloads meant to run as an allowed ServiceAccount: those whose pods run as it; else the Deployment
    named like it in its namespace (run as another ServiceAccount); else one named like it elsewhere that asks for
    workload identity (moved to another namespace)."""
    deployments = snapshot.kube.deployments(namespace)
    running = [d for d in deployments
               if service_account_name(((d["spec"].get("template") or {}).get("spec")) or {}) == account]
    if running:
        return running
    named = [d for d in deployments if d["metadata"]["name"] == account]
    if named:
        return named
    return [d for d in snapshot.kube.deployments() if d["metadata"]["name"] == account
            and d["metadata"].get("namespace") != namespace and workload_identity_markers(snapshot, d)]


def allowed_service_account_workloads(snapshot: Snapshot, target: Target) -> dict[str, tuple[dict[str, Any], str]]:
    _dns_identity(snapshot, target)
    found = {}
    for namespace, account in sorted(target.allowed_service_accounts()):
        for deployment in _meant_to_run_as(snapshot, namespace, account):
            found[f"deployment/{_ref(deployment)}"] = (deployment, account)
    if not found:
        raise NotApplicable(f"no workload of the allowed ServiceAccounts ({_allowed_text(target)}) runs here")
    return found


@check(
    "WI-006", "each allowed ServiceAccount's workload reaches the DNS identity through workload identity, as its "
    "own software reads it", "high",
    remediation="Label the pod template azure.workload.identity/use: \"true\", run the pods as the allowed "
                "ServiceAccount annotated with the DNS identity's client id, federate it with this cluster's issuer, "
                "and point the controller at workload identity (external-dns: useWorkloadIdentityExtension in "
                "azure.json; cert-manager: an ambient azureDNS solver).",
    subjects=allowed_service_account_workloads,
    model=WORKLOAD_IDENTITY,
    reads=("azure:identities", "azure:federatedCredentials", "azure:managedCluster", "kube:Deployment",
           "kube:ServiceAccount", "kube:Pod", "kube:ReplicaSet", "kube:Secret", "kube:ClusterIssuer", "kube:Issuer"),
    link=("pod → binding", "binding → identity"),
)
def test_allowed_service_account_reaches_dns_identity(subject: tuple[dict[str, Any], str], snapshot: Snapshot,
                                                      target: Target, evidence: Evidence) -> None:
    deployment, account = subject
    identity = _dns_identity(snapshot, target)
    evidence.arm("identities", identity, "name", "properties.clientId")
    evidence.target(target, "wi_allowed")
    labels = ((deployment["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    if POD_IDENTITY_LABEL in labels and not workload_identity_markers(snapshot, deployment):
        pytest.skip(f"{_ref(deployment)} is on pod identity (BIND-005 judges its path)")
    cluster = snapshot.azure.managed_cluster() or {}
    issuer = ((cluster.get("properties") or {}).get("oidcIssuerProfile") or {}).get("issuerURL")
    try:
        credentials = snapshot.azure.federated_credentials(identity["id"])
    except EvidenceUnavailable:
        credentials = None
    path = workload_identity_path(snapshot, deployment, account, _client_id(identity),
                                  read_secrets=snapshot.kube.entry("v1", "Secret").get("status") == "ok",
                                  credentials=credentials, issuer=issuer or None,
                                  live=snapshot.document.get("mode") != "static")
    path.record(evidence)
    assert not path.broken, path.finding(identity["name"], "workload identity")
