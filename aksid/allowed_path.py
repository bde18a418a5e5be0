"""The allowed path: does each workload that may use the DNS identity really reach it, as its own software reads
its configuration? (BIND-005 for pod identity, WI-006 for workload identity.)

BIND-* and WI-001..005 look for the identity where it should not be; this looks at whether external-dns and
cert-manager can use it. A path is a chain of links, each either holding or broken with the reason and the fix:

- pod identity: the pod template carries `aadpodidbinding=<selector>`; an AzureIdentityBinding of that selector in
  the namespace names an AzureIdentity whose clientID is the DNS identity's; the current pods carry the label and
  are Ready; the ReplicaSet is not refused pods (FailedCreate);
- workload identity: the workload runs outside kube-system (AKS's webhook never mutates pods there); the
  `azure.workload.identity/use` label is on the pod template (the webhook's objectSelector matches pods, not the
  Deployment); its pods run as the annotated ServiceAccount, whose client id is a GUID and the DNS identity's; the
  webhook mutated them (AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, the projected token volume); they are Ready;
- and the controller's own configuration: external-dns' azure.json (`useManagedIdentityExtension` for pod
  identity, `useWorkloadIdentityExtension` for workload identity, `userAssignedIdentityID` the DNS identity's;
  read only with --aksid-read-secrets), cert-manager's azureDNS solvers (`managedIdentity.clientID` the DNS
  identity's when set) and its ambient-credentials flags (`--issuer-ambient-credentials` for Issuers,
  `--cluster-issuer-ambient-credentials`, default true, for ClusterIssuers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aksid import facts
from aksid.identity_models import (
    POD_IDENTITY_GROUP,
    POD_IDENTITY_LABEL,
    WI_CLIENT_ID_ANNOTATION,
    WI_USE_LABEL,
    service_account_name,
    uses_workload_identity,
)
from aksid.nodes import is_pod_ready
from aksid.snapshot import Snapshot, placeholder

if TYPE_CHECKING:
    from aksid.evidence import Evidence

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CERT_MANAGER = "cert-manager.io/v1"
WI_ENV = ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE")
WI_TOKEN_VOLUME = "azure-identity-token"
AKS_UNMUTATED_NAMESPACES = ("kube-system",)  # the AKS add-on's webhook excludes them (namespaceSelector)


@dataclass
class Path:
    """One workload's path to the DNS identity: what was looked at, and every broken link."""

    workload: dict[str, Any]
    broken: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    looked_at: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (object, field) for the evidence
    unread: list[str] = field(default_factory=list)  # links that could not be judged (Secrets not read)

    def breaks(self, reason: str, fix: str) -> None:
        self.broken.append(reason)
        self.fixes.append(fix)

    def record(self, evidence: Evidence) -> None:
        """What the check compared (each object and field looked at) and the fix for every broken link."""
        for obj, field_path in self.looked_at:
            evidence.kube(obj, field_path)
        evidence.fix("; ".join(dict.fromkeys(self.fixes)))

    def finding(self, identity: str, model: str) -> str:
        unread = f" (not judged: {'; '.join(self.unread)})" if self.unread else ""
        return f"{self.ref} cannot reach identity {identity} through {model}: {'; '.join(self.broken)}{unread}"

    @property
    def ref(self) -> str:
        meta = self.workload["metadata"]
        return f"{meta.get('namespace')}/{meta['name']}"


def _template(workload: dict[str, Any]) -> dict[str, Any]:
    return (workload.get("spec") or {}).get("template") or {}


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _same(a: Any, b: Any) -> bool:
    return bool(a) and bool(b) and str(a).lower() == str(b).lower()


def _other_than(value: Any, dns_client_id: Any) -> bool:
    """A client id written somewhere is another identity's: only when both are known (static mode's DNS identity
    client id is unknown until apply, while a file may already hold the literal one)."""
    return not placeholder(value) and not placeholder(dns_client_id) and not _same(value, dns_client_id)


def current_pods(snapshot: Snapshot, workload: dict[str, Any]) -> list[dict[str, Any]]:
    """The workload's pods (aksid.facts: those of older ReplicaSets included, a rollout in flight shows both)."""
    return facts.workload_pods(snapshot, workload)


def refused(snapshot: Snapshot, workload: dict[str, Any]) -> str | None:
    """Why the workload's ReplicaSets cannot create pods (ReplicaFailure / FailedCreate: a webhook or admission
    refused them), as the ReplicaSet's or Deployment's condition says."""
    namespace = workload["metadata"].get("namespace")
    owned = [rs for rs in snapshot.kube.replicasets(namespace)
             if any(ref.get("name") == workload["metadata"]["name"] and ref.get("kind") == workload.get("kind")
                    for ref in (rs["metadata"].get("ownerReferences") or []))]
    for obj in [workload, *owned]:
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "ReplicaFailure" and str(condition.get("status")) == "True":
                return f"{obj.get('kind')} {obj['metadata']['name']}: {condition.get('reason')}: {condition.get('message')}"
    return None


def _ready_links(path: Path, snapshot: Snapshot, pods: list[dict[str, Any]]) -> None:
    why = refused(snapshot, path.workload)
    if why is not None:
        path.breaks(f"its pods are refused ({why})",
                    f"kubectl -n {path.workload['metadata'].get('namespace')} describe replicaset; fix what refused "
                    "the pods (an admission webhook, a quota, a policy), then the ReplicaSet creates them")
        return
    replicas = (path.workload.get("spec") or {}).get("replicas")
    if not pods and replicas != 0:
        path.breaks("it has no pods", f"kubectl -n {path.workload['metadata'].get('namespace')} describe deployment "
                                      f"{path.workload['metadata']['name']}")
        return
    not_ready = [p["metadata"]["name"] for p in pods if not is_pod_ready(p)]
    if pods and len(not_ready) == len(pods):
        path.breaks(f"none of its pods is Ready ({', '.join(not_ready)})",
                    f"kubectl -n {path.workload['metadata'].get('namespace')} describe pod {not_ready[0]}")


# -- pod identity ---------------------------------------------------------------------------------

def pod_identity_path(snapshot: Snapshot, workload: dict[str, Any], selector: str, dns_client_id: str,
                      read_secrets: bool, live: bool = True) -> Path:
    """`live`: pods and their state exist (attach, provision); static mode has pod templates only."""
    path = Path(workload)
    namespace, name = workload["metadata"].get("namespace"), workload["metadata"]["name"]
    carried = _labels(_template(workload)).get(POD_IDENTITY_LABEL)
    path.looked_at.append((workload, f"spec.template.metadata.labels.{POD_IDENTITY_LABEL}"))
    patch = (f"kubectl -n {namespace} patch deployment {name} --type merge -p "
             f"'{{\"spec\":{{\"template\":{{\"metadata\":{{\"labels\":{{\"{POD_IDENTITY_LABEL}\":\"{selector}\"}}}}}}}}}}'")
    if carried != selector:
        path.breaks(f"its pod template carries {POD_IDENTITY_LABEL}={carried!r} instead of {selector!r}: NMI gives its "
                    "pods no identity" if carried else f"its pod template carries no {POD_IDENTITY_LABEL} label: NMI "
                    "gives its pods no identity", patch)
    bindings = [b for b in snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentityBinding", namespace)
                if (b.get("spec") or {}).get("selector") == selector]
    identities = {i["metadata"]["name"]: i for i in snapshot.kube.list(POD_IDENTITY_GROUP, "AzureIdentity", namespace)}
    reaching = []
    for binding in bindings:
        path.looked_at.append((binding, "spec.azureIdentity"))
        identity = identities.get((binding.get("spec") or {}).get("azureIdentity"))
        if identity is not None:
            path.looked_at.append((identity, "spec.clientID"))
            if not _other_than((identity.get("spec") or {}).get("clientID"), dns_client_id):
                reaching.append(binding)
    if not bindings:
        path.breaks(f"no AzureIdentityBinding in {namespace} has selector {selector}",
                    f"az aks pod-identity add --namespace {namespace} --name {selector} --binding-selector {selector} "
                    "--identity-resource-id <DNS identity id>")
    elif not reaching:
        path.breaks(f"the AzureIdentityBinding(s) of selector {selector} ({', '.join(b['metadata']['name'] for b in bindings)})"
                    f" name no AzureIdentity with the DNS identity's client id {dns_client_id}",
                    "az aks pod-identity delete/add with the DNS identity's resource id")
    pods = current_pods(snapshot, workload)
    for pod in pods[:3]:
        path.looked_at.append((pod, f"metadata.labels.{POD_IDENTITY_LABEL}"))
    unlabelled = [p["metadata"]["name"] for p in pods if _labels(p).get(POD_IDENTITY_LABEL) != selector]
    if live and carried == selector and unlabelled:
        path.breaks(f"its pods {', '.join(unlabelled)} do not carry {POD_IDENTITY_LABEL}={selector}",
                    f"kubectl -n {namespace} rollout restart deployment {name}")
    if live:
        _ready_links(path, snapshot, pods)
    _controller_links(path, snapshot, "pod-identity", dns_client_id, read_secrets, live)
    return path


# -- workload identity ----------------------------------------------------------------------------

def workload_identity_path(snapshot: Snapshot, workload: dict[str, Any], service_account: str, dns_client_id: str,
                           read_secrets: bool, credentials: list[dict[str, Any]] | None, issuer: str | None,
                           live: bool = True) -> Path:
    """`credentials`: the DNS identity's federated credentials (None: not read); `issuer`: the cluster's OIDC issuer
    URL (None: unknown); `live`: pods and their state exist (static mode has pod templates only)."""
    path = Path(workload)
    namespace, name = workload["metadata"].get("namespace"), workload["metadata"]["name"]
    template = _template(workload)
    spec = template.get("spec") or {}
    runs_as = service_account_name(spec)
    path.looked_at += [(workload, f"spec.template.metadata.labels[\"{WI_USE_LABEL}\"]"),
                       (workload, "spec.template.spec.serviceAccountName")]
    if namespace in AKS_UNMUTATED_NAMESPACES:
        path.breaks(f"it runs in {namespace}, whose pods the workload identity webhook never mutates",
                    "run it in another namespace (and move the federated credential's subject to it)")
    if not uses_workload_identity(_labels(template)):
        on_deployment = uses_workload_identity(_labels(workload))
        path.breaks(f"its pod template does not carry {WI_USE_LABEL}: \"true\""
                    + (" (the label is on the Deployment's own metadata, but the webhook selects pods)"
                       if on_deployment else "") + ": the webhook does not inject the identity",
                    f"kubectl -n {namespace} patch deployment {name} --type merge -p "
                    f"'{{\"spec\":{{\"template\":{{\"metadata\":{{\"labels\":{{\"{WI_USE_LABEL}\":\"true\"}}}}}}}}}}'")
    if runs_as != service_account:
        path.breaks(f"its pods run as ServiceAccount {namespace}/{runs_as}, not {namespace}/{service_account} (the "
                    "one allowed and federated)",
                    f"kubectl -n {namespace} set serviceaccount deployment {name} {service_account}")
    account = snapshot.kube.get("v1", "ServiceAccount", namespace, runs_as)
    client_id = (((account or {}).get("metadata") or {}).get("annotations") or {}).get(WI_CLIENT_ID_ANNOTATION)
    if account is not None:
        path.looked_at.append((account, f"metadata.annotations[\"{WI_CLIENT_ID_ANNOTATION}\"]"))
    annotate = (f"kubectl -n {namespace} annotate serviceaccount {runs_as} --overwrite "
                f"{WI_CLIENT_ID_ANNOTATION}={dns_client_id}")
    if account is None:
        path.breaks(f"ServiceAccount {namespace}/{runs_as} its pods run as does not exist",
                    f"kubectl -n {namespace} create serviceaccount {runs_as}; {annotate}")
    elif not client_id:
        path.breaks(f"ServiceAccount {namespace}/{runs_as} its pods run as has no {WI_CLIENT_ID_ANNOTATION} "
                    "annotation", annotate)
    elif not GUID.match(str(client_id).strip()):
        path.breaks(f"ServiceAccount {namespace}/{runs_as} has {WI_CLIENT_ID_ANNOTATION}={client_id!r}, which is no "
                    "client id (a GUID)", annotate)
    elif _other_than(client_id.strip(), dns_client_id):
        path.breaks(f"ServiceAccount {namespace}/{runs_as} names client id {client_id}, not the DNS identity's "
                    f"{dns_client_id}", annotate)
    subject = f"system:serviceaccount:{namespace}:{runs_as}"
    if credentials is not None:
        trusting = [c for c in credentials if (c.get("properties") or {}).get("subject") == subject
                    and (issuer is None or _same_issuer((c.get("properties") or {}).get("issuer"), issuer))]
        if not trusting:
            path.breaks(f"no federated credential of the DNS identity trusts {subject} from this cluster's issuer"
                        + (f" {issuer}" if issuer else ""),
                        f"az identity federated-credential create --identity-name <DNS identity> --name {runs_as} "
                        f"--issuer {issuer or '<the cluster OIDC issuer URL>'} --subject {subject} "
                        "--audiences api://AzureADTokenExchange")
    pods = current_pods(snapshot, workload) if live else []
    for pod in pods[:3]:
        path.looked_at.append((pod, "spec.volumes"))
    unmutated = [p["metadata"]["name"] for p in pods if not _mutated(p)]
    if unmutated and not path.broken:
        path.breaks(f"its pods {', '.join(unmutated)} were not mutated by the webhook (no AZURE_CLIENT_ID, "
                    f"AZURE_FEDERATED_TOKEN_FILE or {WI_TOKEN_VOLUME} volume)",
                    f"kubectl -n {namespace} rollout restart deployment {name} (pods are mutated when created)")
    if live:
        _ready_links(path, snapshot, pods)
    _controller_links(path, snapshot, "workload-identity", dns_client_id, read_secrets, live)
    return path


def _same_issuer(a: Any, b: Any) -> bool:
    """Issuer URLs as Entra compares them: exactly (a placeholder the files leave unknown matches its own name)."""
    return isinstance(a, str) and isinstance(b, str) and a == b


def _mutated(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    names = {e.get("name") for c in spec.get("containers") or [] for e in c.get("env") or []}
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    return all(env in names for env in WI_ENV) and WI_TOKEN_VOLUME in volumes


def workload_identity_markers(snapshot: Snapshot, workload: dict[str, Any]) -> bool:
    """Whether the workload is meant for workload identity: the use label (anywhere), its ServiceAccount annotated,
    or the webhook's injection in its pods."""
    template = _template(workload)
    if uses_workload_identity(_labels(template)) or uses_workload_identity(_labels(workload)):
        return True
    namespace = workload["metadata"].get("namespace")
    account = snapshot.kube.get("v1", "ServiceAccount", namespace, service_account_name(template.get("spec") or {}))
    if (((account or {}).get("metadata") or {}).get("annotations") or {}).get(WI_CLIENT_ID_ANNOTATION):
        return True
    return any(_mutated(p) for p in current_pods(snapshot, workload))


# -- the controllers' own configuration -----------------------------------------------------------

def _kind_of(workload: dict[str, Any]) -> str | None:
    """external-dns or cert-manager (the controller), by image, else by name."""
    images = " ".join(str(c.get("image") or "") for c in (_template(workload).get("spec") or {}).get("containers") or [])
    name = workload["metadata"]["name"]
    if "external-dns" in images or "external-dns" in name:
        return "external-dns"
    if "cert-manager-controller" in images or name == "cert-manager":
        return "cert-manager"
    return None


CERT_MANAGER_WI_SINCE = (1, 11)  # cert-manager's azureDNS ambient credentials use workload identity from v1.11.0 (docs)


def speaks_workload_identity(snapshot: Snapshot, workload: dict[str, Any]) -> str | None:
    """Why the workload's own software already takes workload identity's token itself (so the migration sidecar, which
    serves IMDS to old SDKs, has nothing to do), or None when it does not or that cannot be read.

    external-dns: its azure.json sets useWorkloadIdentityExtension (external-dns' Azure tutorial); cert-manager: the
    controller image is v1.11 or later (cert-manager's AzureDNS docs: "Managed Identity Using AAD Workload Identity ...
    available in cert-manager >= v1.11.0")."""
    kind = _kind_of(workload)
    if kind == "external-dns":
        settings, secret = _azure_json(snapshot, workload)
        if settings is not None and settings.get("useWorkloadIdentityExtension") is True:
            return f"its azure.json (Secret {secret}) sets useWorkloadIdentityExtension: true"
    elif kind == "cert-manager":
        for container in (_template(workload).get("spec") or {}).get("containers") or []:
            image = str(container.get("image") or "")
            found = re.search(r"cert-manager-controller:v(\d+)\.(\d+)", image)
            if found and (int(found.group(1)), int(found.group(2))) >= CERT_MANAGER_WI_SINCE:
                return f"its controller image {image} takes workload identity's token itself (cert-manager >= v1.11.0)"
    return None


def _args(workload: dict[str, Any]) -> list[str]:
    return [str(a) for c in (_template(workload).get("spec") or {}).get("containers") or [] for a in c.get("args") or []]


def _controller_links(path: Path, snapshot: Snapshot, model: str, dns_client_id: str, read_secrets: bool,
                      live: bool) -> None:
    kind = _kind_of(path.workload)
    if kind == "external-dns":
        _external_dns_links(path, snapshot, model, dns_client_id, read_secrets and live)
    elif kind == "cert-manager":
        _cert_manager_links(path, snapshot, dns_client_id)


def _azure_json(snapshot: Snapshot, workload: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """external-dns' azure.json as the snapshot holds it (keys kept, secrets redacted), and the Secret it is in."""
    namespace = workload["metadata"].get("namespace")
    for volume in (_template(workload).get("spec") or {}).get("volumes") or []:
        secret_name = (volume.get("secret") or {}).get("secretName")
        if not secret_name:
            continue
        if snapshot.kube.entry("v1", "Secret").get("status") != "ok":
            return None, f"{namespace}/{secret_name}"  # Secrets not read (--aksid-read-secrets), or not listable
        secret = snapshot.kube.get("v1", "Secret", namespace, secret_name)
        for value in ((secret or {}).get("data") or {}).values():
            settings = value.get("redactedJson") if isinstance(value, dict) else None
            if isinstance(settings, dict):
                return settings, f"{namespace}/{secret_name}"
        return None, f"{namespace}/{secret_name}"
    return None, None


def _external_dns_links(path: Path, snapshot: Snapshot, model: str, dns_client_id: str, read_secrets: bool) -> None:
    args = _args(path.workload)
    if any(a.startswith("--azure-client-secret") for a in args):
        return  # a service principal: RBAC-004's finding, not a managed identity path
    settings, secret = _azure_json(snapshot, path.workload)
    if secret is None:
        return  # no azure.json mounted: external-dns reads the environment (workload identity's injected variables)
    if settings is None:
        entry = snapshot.kube.entry("v1", "Secret")
        if not read_secrets or entry.get("status") != "ok":  # static mode: repositories hold no Secrets
            path.unread.append(f"external-dns' azure.json (Secret {secret}) was not read (--aksid-read-secrets; "
                               "static mode: made outside the repository)")
            return
        path.breaks(f"its azure.json Secret {secret} does not exist or holds no azure.json",
                    f"create Secret {secret} with azure.json (tenantId, subscriptionId, resourceGroup and the identity "
                    "flag external-dns' Azure tutorial gives)")
        return
    if settings.get("aadClientId") and settings.get("aadClientSecret") not in (None, ""):
        return  # a service principal's secret: RBAC-004's finding, not a managed identity path
    wanted = "useWorkloadIdentityExtension" if model == "workload-identity" else "useManagedIdentityExtension"
    if settings.get(wanted) is not True:
        path.breaks(f"its azure.json (Secret {secret}) does not set {wanted}: true, so external-dns does not use the "
                    f"{'workload' if model == 'workload-identity' else 'managed'} identity",
                    f"set \"{wanted}\": true in azure.json of Secret {secret}")
    assigned = settings.get("userAssignedIdentityID")
    if assigned and _other_than(assigned, dns_client_id):
        path.breaks(f"its azure.json (Secret {secret}) names userAssignedIdentityID {assigned}, not the DNS identity's "
                    f"client id {dns_client_id}", f"set \"userAssignedIdentityID\": \"{dns_client_id}\" in Secret {secret}")


def _cert_manager_links(path: Path, snapshot: Snapshot, dns_client_id: str) -> None:
    args = _args(path.workload)

    def flag(name: str, default: bool) -> bool:
        values = [a.split("=", 1)[1] if "=" in a else "true" for a in args if a.split("=", 1)[0] == f"--{name}"]
        return values[-1].lower() == "true" if values else default

    for kind in ("ClusterIssuer", "Issuer"):
        for issuer in snapshot.kube.list(CERT_MANAGER, kind):
            for solver in ((issuer.get("spec") or {}).get("acme") or {}).get("solvers") or []:
                azure = (solver.get("dns01") or {}).get("azureDNS")
                if not isinstance(azure, dict) or azure.get("clientSecretSecretRef"):
                    continue  # a service principal: RBAC-004's finding
                ref = f"{kind} {issuer['metadata'].get('namespace') + '/' if kind == 'Issuer' else ''}" \
                      f"{issuer['metadata']['name']}"
                path.looked_at.append((issuer, "spec.acme.solvers"))
                managed = azure.get("managedIdentity") or {}
                client = managed.get("clientID")
                if client and _other_than(client, dns_client_id):
                    path.breaks(f"{ref}'s azureDNS solver names managedIdentity.clientID {client}, not the DNS "
                                f"identity's {dns_client_id}", f"kubectl edit {kind.lower()} {issuer['metadata']['name']}:"
                                f" set managedIdentity.clientID to {dns_client_id}")
                if kind == "Issuer" and not flag("issuer-ambient-credentials", False):
                    path.breaks(f"{ref} uses ambient credentials (managed identity), which cert-manager refuses to "
                                "Issuers unless it runs with --issuer-ambient-credentials",
                                "add --issuer-ambient-credentials to cert-manager's args (or use a ClusterIssuer)")
                if kind == "ClusterIssuer" and not flag("cluster-issuer-ambient-credentials", True):
                    path.breaks(f"{ref} uses ambient credentials, which cert-manager runs with "
                                "--cluster-issuer-ambient-credentials=false refuses",
                                "remove --cluster-issuer-ambient-credentials=false from cert-manager's args")
