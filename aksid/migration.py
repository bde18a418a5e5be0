"""The migration from pod identity to workload identity, per workload: from → to → state (MIG-001/003/004, reports).

Follows AKS's guide "Migrate from pod managed-identity to workload identity"
(learn.microsoft.com/azure/aks/workload-identity-migrate-from-pod-identity): enable the OIDC issuer and workload
identity on the cluster; keep the identity (or create one with the same role assignments); annotate the
ServiceAccount the pods run as with `azure.workload.identity/client-id`; create the federated credential (issuer =
the cluster's issuer URL exactly, subject `system:serviceaccount:<ns>:<sa>`, audience `api://AzureADTokenExchange`);
deploy workload identity side by side (label the pod template `azure.workload.identity/use: "true"`, restart);
verify; remove the pod-identity label and the add-on. Applications on an old Azure SDK use the migration sidecar
(pod annotation `azure.workload.identity/inject-proxy-sidecar`), which the guide says is not a long-term solution.

A workload's state:
- `pod identity only`: bound by pod identity, the workload identity path not (all) prepared;
- `ready`: bound by pod identity, everything prepared but the `use` label (the switch the guide flips last);
- `side by side`: both paths complete;
- `migrated`: workload identity only, its path complete;
- `blocked: ...`: a path that cannot work as it stands (the missing piece named).
Read from the evidence only, as the checks are.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from aksid import facts
from aksid.collect.static.arm_shapes import PROFILE_SOURCE, left_open
from aksid.identity_models import (
    POD_IDENTITY,
    POD_IDENTITY_GROUP,
    POD_IDENTITY_LABEL,
    WI_AUDIENCE,
    WI_CLIENT_ID_ANNOTATION,
    WI_USE_LABEL,
    WORKLOAD_IDENTITY,
    WorkloadModels,
    uses_workload_identity,
    workload_models,
)
from aksid.pod_identity_components import component
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot, placeholder

# azure-workload-identity pkg/webhook/consts.go and webhook.go: the webhook injects the proxy when the pod merely
# carries the annotation (any value), refuses a hostNetwork pod that asks for it ("hostNetwork is set to true, cannot
# inject proxy sidecar"), and adds the init container azwi-proxy-init as privileged, runAsUser 0, NET_ADMIN.
SIDECAR_ANNOTATION = "azure.workload.identity/inject-proxy-sidecar"
PROXY_INIT_CONTAINER = "azwi-proxy-init"
PROXY_CONTAINER = "azwi-proxy"
# Pod Security admission runs after mutation: privileged containers are refused at `baseline` and `restricted`.
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
REFUSING_LEVELS = ("baseline", "restricted")
AKS_UNMUTATED_NAMESPACES = ("kube-system",)  # the AKS add-on's webhook never mutates pods there
WEBHOOK_DEPLOYMENT = "azure-wi-webhook-controller-manager"
SUBJECT = "system:serviceaccount:{namespace}:{account}"

STATES = ("pod identity only", "ready", "side by side", "migrated", "blocked")


@dataclass(frozen=True)
class Piece:
    """One piece of a workload's workload identity path: it holds (True), is missing (False) or was not judged
    (None: the evidence could not be read); `blocking`: missing, it is not a step still to take but a path that
    cannot work (a namespace the webhook skips, an identity without the rights)."""

    name: str
    holds: bool | None
    detail: str
    fix: str = ""
    blocking: bool = False


@dataclass
class WorkloadMigration:
    kind: str
    namespace: str
    name: str
    service_account: str
    workload: dict[str, Any]
    pod_identity: list[dict[str, Any]] = field(default_factory=list)  # from: each live binding
    uses_workload_identity: bool = False
    client_id: str | None = None  # to: the ServiceAccount's annotation
    identity: str | None = None  # to: same identity, or a new one (with or without the same roles)
    credential: dict[str, Any] | None = None  # to: the federated credential that trusts the ServiceAccount
    pieces: list[Piece] = field(default_factory=list)
    sidecar: bool = False

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"

    @property
    def missing(self) -> list[Piece]:
        return [p for p in self.pieces if p.holds is False]

    @property
    def state(self) -> str:
        missing = self.missing
        blocking = [p for p in missing if p.blocking]
        if self.pod_identity and not self.uses_workload_identity:
            if blocking:
                return f"blocked: {blocking[0].detail}"
            if [p.name for p in missing] == ["use label"]:
                return "ready"
            return "pod identity only"
        if not self.pod_identity and not self.uses_workload_identity:
            return "blocked: no pod identity binding and no workload identity: it reaches no identity"
        if missing:
            return f"blocked: {missing[0].detail}"
        return "side by side" if self.pod_identity else "migrated"

    def as_dict(self) -> dict[str, Any]:
        props = (self.credential or {}).get("properties") or {}
        return {
            "workload": self.ref, "state": self.state,
            "from": self.pod_identity,
            "to": {"service_account": f"{self.namespace}/{self.service_account}", "client_id": self.client_id,
                   "use_label": any(p.name == "use label" and p.holds for p in self.pieces),
                   "federated_credential": {"name": self.credential.get("name"), "issuer": props.get("issuer"),
                                            "subject": props.get("subject"), "audiences": props.get("audiences")}
                   if self.credential else None,
                   "identity": self.identity},
            "missing": [p.detail for p in self.missing],
            "sidecar": self.sidecar,
        }


def _read(reader: Any) -> Any:
    try:
        return reader()
    except (EvidenceUnavailable, EvidenceNotCollected):
        return None


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _template(workload: dict[str, Any]) -> dict[str, Any]:
    return (workload.get("spec") or {}).get("template") or {}


def _same(a: Any, b: Any) -> bool:
    return bool(a) and bool(b) and str(a).lower() == str(b).lower()


def sidecar_requested(workload: dict[str, Any]) -> bool:
    """The pod template asks the webhook for the migration sidecar (the annotation's presence is enough)."""
    return SIDECAR_ANNOTATION in ((_template(workload).get("metadata") or {}).get("annotations") or {})


def pod_identity_served(snapshot: Snapshot) -> tuple[bool | None, str]:
    """Whether pod identity still answers pods: the AKS add-on enabled, or a self-installed NMI running (None: the
    evidence could not be read, or, in static mode, the files do not say). After the cutover it is False."""
    cluster = _read(snapshot.azure.managed_cluster)
    props = (cluster or {}).get("properties") or {}
    profile = props.get("podIdentityProfile") or {}
    enabled = profile.get("enabled")
    if enabled is True or str(enabled).lower() == "true":
        return True, "the pod-identity add-on is enabled (podIdentityProfile.enabled)"
    daemonsets = _read(snapshot.kube.daemonsets)
    nmi = [d for d in daemonsets or [] if component(d) == "nmi"]
    if nmi:
        meta = nmi[0]["metadata"]
        return True, f"NMI runs (daemonset {meta.get('namespace')}/{meta.get('name')})"
    if cluster is None or daemonsets is None:
        return None, "the managed cluster or the DaemonSets could not be read"
    if placeholder(enabled):
        return None, f"podIdentityProfile.enabled is {enabled}"
    from_plan = (snapshot.document.get("sources") or {}).get(str(cluster.get("id", "")).lower() + PROFILE_SOURCE)
    if from_plan and "enabled" not in profile:  # an azapi body that leaves `enabled` as it is
        return None, f"{from_plan.get('address')} sets podIdentityProfile without `enabled`: the add-on stays as it is"
    open_question = left_open(cluster, "podIdentityProfile")
    if open_question:  # static mode: the files leave the add-on as it is (azurerm), or cannot be read
        return None, f"whether the pod-identity add-on is on is not in the files: {open_question}"
    return False, "the pod-identity add-on is disabled and no NMI runs"


def files_turn_pod_identity_off(snapshot: Snapshot) -> str | None:
    """(static mode) Why the plan or template turns pod identity off, naming where: podIdentityProfile.enabled false,
    or an ARM template that declares the cluster without podIdentityProfile (ARM resets the properties a template
    leaves out to their defaults: the add-on off), while no NMI runs in the manifests. None in other modes, and where
    the files keep pod identity on or do not say (an azurerm cluster without an azapi body for the profile)."""
    if snapshot.document.get("mode") != "static":
        return None
    served, because = pod_identity_served(snapshot)
    if served is not False:
        return None
    cluster = _read(snapshot.azure.managed_cluster) or {}
    sources = snapshot.document.get("sources") or {}
    key = str(cluster.get("id", "")).lower()
    place = sources.get(key + PROFILE_SOURCE) or sources.get(key) or {}
    where = ", ".join(str(part) for part in (f"{place['file']}:{place.get('line')}" if place.get("file") else None,
                                             place.get("address")) if part) or "the plan or template"
    props = cluster.get("properties") or {}
    if isinstance(props.get("podIdentityProfile"), dict):
        said = (f"cluster {cluster.get('name')} has podIdentityProfile.enabled "
                f"{str(props['podIdentityProfile'].get('enabled')).lower()} ({where})")
    else:
        said = (f"{where} declares cluster {cluster.get('name')} without podIdentityProfile, and ARM resets what a "
                "template leaves out: the add-on is off")
    return f"{said}; no NMI runs in the manifests"


def _pod_identity_client_ids(snapshot: Snapshot) -> set[str]:
    """Client ids pod identity gives or gave: every AzureIdentity's and the add-on profile's (past or present)."""
    found = {str((i.get("spec") or {}).get("clientID")).lower()
             for i in _read(lambda: snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentity")) or []}
    cluster = _read(snapshot.azure.managed_cluster) or {}
    for entry in (((cluster.get("properties") or {}).get("podIdentityProfile") or {}).get("userAssignedIdentities")
                  or []):
        found.add(str((entry.get("identity") or {}).get("clientId")).lower())
    return found - {"none", ""}


def _identity_by_client(snapshot: Snapshot, client_id: str | None) -> dict[str, Any] | None:
    return next((i for i in _read(snapshot.azure.identities) or []
                 if _same((i.get("properties") or {}).get("clientId"), client_id)), None)


def _rights(snapshot: Snapshot, identity: dict[str, Any] | None) -> set[tuple[str, str]] | None:
    """(role GUID, scope) of an identity's role assignments (None: not readable)."""
    if identity is None:
        return None
    try:
        assignments = facts.role_assignments(snapshot, (identity.get("properties") or {}).get("principalId"))
    except (EvidenceUnavailable, EvidenceNotCollected):
        return None
    return {(str((a.get("properties") or {}).get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower(),
             str((a.get("properties") or {}).get("scope") or "").lower()) for a in assignments}


def migration_view(snapshot: Snapshot, dns_client_id: str | None = None) -> list[WorkloadMigration]:
    """Every Deployment and DaemonSet that uses (or used) the DNS identity or any pod identity, with its migration."""
    models = {(m.kind, m.namespace, m.name): m for m in workload_models(snapshot)}
    pod_ids = _pod_identity_client_ids(snapshot) | ({dns_client_id.lower()} if dns_client_id else set())
    cluster_props = ((_read(snapshot.azure.managed_cluster) or {}).get("properties")) or {}
    found = []
    for kind, reader in (("Deployment", snapshot.kube.deployments), ("DaemonSet", snapshot.kube.daemonsets)):
        for workload in _read(reader) or []:
            meta = workload["metadata"]
            entry = models.get((kind, meta.get("namespace") or "default", meta["name"]))
            labelled = POD_IDENTITY_LABEL in _labels(_template(workload))
            relevant = entry is not None and any(
                b.model == POD_IDENTITY or str(b.client_id).lower() in pod_ids for b in entry.bindings)
            if relevant or labelled:
                found.append(_migration_of(snapshot, kind, workload, entry, cluster_props))
    return found


def _migration_of(snapshot: Snapshot, kind: str, workload: dict[str, Any], entry: WorkloadModels | None,
                  props: dict[str, Any]) -> WorkloadMigration:
    from aksid.identity_models import service_account_name

    meta = workload["metadata"]
    namespace = meta.get("namespace") or "default"
    template = _template(workload)
    account = service_account_name(template.get("spec") or {})
    item = WorkloadMigration(kind, namespace, meta["name"], account, workload, sidecar=sidecar_requested(workload))
    bindings = entry.bindings if entry else []
    for binding in bindings:
        if binding.model == POD_IDENTITY:
            item.pod_identity.append({"binding": binding.via.split(" ")[1], "selector": _labels(template).get(
                POD_IDENTITY_LABEL), "client_id": binding.client_id, "identity": binding.identity})
    item.uses_workload_identity = any(b.model == WORKLOAD_IDENTITY for b in bindings)
    name = meta["name"]
    # 1. the cluster: OIDC issuer and workload identity (or a self-installed webhook)
    oidc = props.get("oidcIssuerProfile") or {}
    issuer = oidc.get("issuerURL") if oidc.get("enabled") else None
    item.pieces.append(Piece("oidc issuer", bool(issuer), "the cluster's OIDC issuer is not enabled"
                             if not issuer else f"OIDC issuer {issuer}",
                             "az aks update --enable-oidc-issuer --enable-workload-identity"))
    webhook = any(d["metadata"]["name"] == WEBHOOK_DEPLOYMENT and d["metadata"].get("namespace") != "kube-system"
                  for d in _read(snapshot.kube.deployments) or [])
    enabled = bool(((props.get("securityProfile") or {}).get("workloadIdentity") or {}).get("enabled")) or webhook
    item.pieces.append(Piece("workload identity", enabled, "workload identity is enabled" if enabled else
                             "workload identity is not enabled on the cluster (securityProfile.workloadIdentity)",
                             "az aks update --enable-workload-identity"))
    # 2. a namespace the AKS webhook mutates
    if namespace in AKS_UNMUTATED_NAMESPACES:
        item.pieces.append(Piece("namespace", False, f"it runs in {namespace}, whose pods the AKS workload identity "
                                 "webhook never mutates", "run it in another namespace", blocking=True))
    # 3. the ServiceAccount annotated with a client id
    sa = _read(lambda: snapshot.kube.get("v1", "ServiceAccount", namespace, account))
    annotation = (((sa or {}).get("metadata") or {}).get("annotations") or {}).get(WI_CLIENT_ID_ANNOTATION)
    item.client_id = str(annotation).strip() if annotation else None
    source_client = next((b["client_id"] for b in item.pod_identity if b["client_id"]), None)
    annotate = (f"kubectl -n {namespace} annotate serviceaccount {account} "
                f"{WI_CLIENT_ID_ANNOTATION}={source_client or '<client id>'}")
    if sa is None and account == "default":  # Kubernetes makes it in every namespace; a repository never holds it
        item.pieces.append(Piece("service account", False, f"ServiceAccount {namespace}/default (Kubernetes makes it) "
                                 f"has no {WI_CLIENT_ID_ANNOTATION} annotation; a workload of its own should get a "
                                 "ServiceAccount of its own", f"kubectl -n {namespace} create serviceaccount {name}; set "
                                 f"serviceAccountName: {name} on its pod template; kubectl -n {namespace} annotate "
                                 f"serviceaccount {name} {WI_CLIENT_ID_ANNOTATION}={source_client or '<client id>'}"))
    elif sa is None:
        item.pieces.append(Piece("service account", False, f"ServiceAccount {namespace}/{account} does not exist",
                                 f"kubectl -n {namespace} create serviceaccount {account}; {annotate}"))
    else:
        item.pieces.append(Piece("service account", bool(item.client_id),
                                 f"ServiceAccount {namespace}/{account} has no {WI_CLIENT_ID_ANNOTATION} annotation"
                                 if not item.client_id else f"ServiceAccount {namespace}/{account} names "
                                 f"client id {item.client_id}", annotate))
    # 4. the same Azure rights: the same identity, or a new one with the same role assignments
    target_identity = _identity_by_client(snapshot, item.client_id) if item.client_id else None
    if item.client_id and source_client:
        if _same(item.client_id, source_client):
            item.identity = "same identity"
        else:
            before, after = _rights(snapshot, _identity_by_client(snapshot, source_client)), _rights(snapshot,
                                                                                                   target_identity)
            if before is None or after is None:
                item.identity = "new identity (its rights could not be compared)"
                item.pieces.append(Piece("rights", None, f"identity {item.client_id}'s role assignments could not "
                                         "be compared with the pod identity's"))
            else:
                lacking = before - after
                item.identity = "new identity with the same roles" if not lacking else "new identity lacking roles"
                item.pieces.append(Piece(
                    "rights", not lacking, f"identity {item.client_id} lacks {len(lacking)} role assignment(s) of "
                    f"the pod identity {source_client}: " + ", ".join(f"{role} at {scope}" for role, scope in
                                                                      sorted(lacking)),
                    f"az role assignment create --assignee {item.client_id} for each; or annotate "
                    f"{namespace}/{account} with {source_client}", blocking=True))
    elif item.client_id:
        item.identity = (target_identity or {}).get("name") or item.client_id
    # 5. the federated credential on that identity: this cluster's issuer, the ServiceAccount, the audience
    subject = SUBJECT.format(namespace=namespace, account=account)
    identity_name = (target_identity or {}).get("name") or "<identity>"
    create = (f"az identity federated-credential create --identity-name {identity_name} --name {account} "
              f"--issuer {issuer or '<the cluster OIDC issuer URL>'} --subject {subject} --audiences {WI_AUDIENCE}")
    if target_identity is None:
        item.pieces.append(Piece("federated credential", False if item.client_id is None else None,
                                 f"no federated credential can trust {subject}: no identity is named yet"
                                 if item.client_id is None else
                                 f"identity {item.client_id} is not one Azure listed: its federated credentials "
                                 "were not read", create))
    else:
        try:
            credentials = snapshot.azure.federated_credentials(target_identity["id"])
        except (EvidenceUnavailable, EvidenceNotCollected) as exc:
            item.pieces.append(Piece("federated credential", None, f"federated credentials not read: {exc}", create))
        else:
            matching = [c for c in credentials if (c.get("properties") or {}).get("subject") == subject]
            item.credential = next((c for c in matching if issuer and (c.get("properties") or {}).get("issuer") ==
                                    issuer and WI_AUDIENCE in ((c.get("properties") or {}).get("audiences") or [])),
                                   matching[0] if matching else None)
            exact = item.credential is not None and issuer and (item.credential.get("properties") or {}).get(
                "issuer") == issuer and WI_AUDIENCE in ((item.credential.get("properties") or {}).get("audiences")
                                                        or [])
            detail = (f"no federated credential of {identity_name} trusts {subject}" if not matching else
                      f"federated credential {item.credential['name']} of {identity_name} does not name this cluster's"  # type: ignore[index]
                      f" issuer {issuer} exactly with audience {WI_AUDIENCE}" if not exact else
                      f"federated credential {item.credential['name']} trusts {subject}")  # type: ignore[index]
            item.pieces.append(Piece("federated credential", bool(exact), detail, create))
    # 6. the switch: the use label on the pod template (the webhook's objectSelector matches pods)
    on_template = uses_workload_identity(_labels(template))
    item.pieces.append(Piece("use label", on_template, f"the pod template of {item.ref} does not carry "
                             f"{WI_USE_LABEL}: \"true\"" if not on_template else f"the pod template carries {WI_USE_LABEL}",
                             f"kubectl -n {namespace} patch {kind.lower()} {name} --type merge -p "
                             f"'{{\"spec\":{{\"template\":{{\"metadata\":{{\"labels\":{{\"{WI_USE_LABEL}\":\"true\"}}}}}}}}}}'"))
    return item


_VIEWS: weakref.WeakKeyDictionary[Snapshot, dict[str | None, list[WorkloadMigration]]] = weakref.WeakKeyDictionary()


def view_of(snapshot: Snapshot, target: Any) -> list[WorkloadMigration]:
    """The migration view for a target (its DNS identity's client id taken from Azure when listed). Built once per
    snapshot: MIG-001, MIG-003, MIG-004, WI-005 (once per workload) and results.json's section all read it."""
    identity = _read(lambda: snapshot.azure.identity_named(target.identity_name)) if target is not None else None
    client_id = ((identity or {}).get("properties") or {}).get("clientId")
    views = _VIEWS.setdefault(snapshot, {})
    if client_id not in views:
        views[client_id] = migration_view(snapshot, client_id)
    return list(views[client_id])


def migration_section(snapshot: Snapshot, target: Any) -> dict[str, Any]:
    """results.json's `migration`: the cutover's state, and per workload from → to → state."""
    served, because = pod_identity_served(snapshot)
    return {"pod_identity_served": served, "because": because,
            "migration_required": bool(target is not None and target.requires_migration()),
            "workloads": [w.as_dict() for w in view_of(snapshot, target)]}


def table_rows(section: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(workload, from, to, state) of each workload, as the reports print them."""
    rows = []
    for entry in section.get("workloads") or []:
        source = ", ".join(f"{b['binding']} ({b['selector']}) → {b['identity'] or b['client_id']}"
                           for b in entry["from"]) or "-"
        to = entry["to"]
        credential = to["federated_credential"]
        parts = [to["service_account"] + (f" → {to['client_id']}" if to["client_id"] else " (no client id)"),
                 "use label" if to["use_label"] else "no use label",
                 f"credential {credential['name']}" if credential else "no credential"]
        if to["identity"]:
            parts.append(to["identity"])
        if entry.get("sidecar"):
            parts.append("sidecar")
        rows.append((entry["workload"], source, ", ".join(parts), entry["state"]))
    return rows


def terminal_lines(section: dict[str, Any] | None) -> list[str]:
    """The short table the terminal prints: one line per workload."""
    if not section or not section.get("workloads"):
        return []
    lines = ["migration to workload identity:"]
    for workload, _source, _to, state in table_rows(section):
        lines.append(f"  {workload}: {state}")
    return lines
