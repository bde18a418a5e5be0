"""The static snapshot: what the repository's files declare, in the live snapshot's shape.

Objects AKS creates (AzureIdentity/AzureIdentityBinding per pod identity) are made from the cluster's
`podIdentityProfile` when the plan or template declares one, else from the settings (`identity_name`,
`bind_allowed`), as the add-on would make them. Evidence only a live environment has (nodes, CRDs, object
status, DNS answers, handshakes) is `not collected`: the checks that need it are skipped with that reason.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

from aksid.collect.kinds import KINDS
from aksid.collect.static import arm_shapes as shapes
from aksid.collect.static.arm_template import read_parameters, read_template
from aksid.collect.static.manifests import Located, read_manifests
from aksid.collect.static.plan import PlanResources, read_plan
from aksid.config import Target
from aksid.identity_models import POD_IDENTITY_LABEL
from aksid.redact import redact_kube_object
from aksid.snapshot import DEPLOY_TIME, POD_TEMPLATE, Snapshot, error, kind_key, kube_key, new_document, not_collected, ok

LIVE_ONLY = "needs a live environment (static mode reads the repository's files)"
# Kinds a repository holds; every other kind the live collector reads is AKS-made or runtime state.
REPO_KINDS = {"Namespace", "Pod", "Service", "ServiceAccount", "Secret", "DaemonSet", "Deployment", "ReplicaSet",
              "Ingress", "ClusterIssuer", "Issuer", "Certificate", "AzurePodIdentityException"}
_POD_TEMPLATES = {"Deployment": ("spec", "template"), "DaemonSet": ("spec", "template"),
                  "StatefulSet": ("spec", "template"), "Job": ("spec", "template"),
                  "CronJob": ("spec", "jobTemplate", "spec", "template")}
ADDON_LABELS = {"kubernetes.azure.com/managedby": "aks", "addonmanager.kubernetes.io/mode": "Reconcile"}


def collect_static(target: Target, manifests: list[Path], plans: list[Path], templates: list[Path],
                   source_root: Path, arm_parameters: list[Path] | None = None) -> Snapshot:
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document = new_document(target.public_view(), "static", created)
    located = read_manifests(manifests)
    azure = PlanResources()
    for plan in plans:
        _merge(azure, read_plan(plan, target.subscription_id, target.tenant_id))
    values: dict[str, Any] = {}
    for parameters in arm_parameters or []:
        values.update(read_parameters(parameters))
    for template in templates:
        path, group = _template_and_group(template, target.aks_resource_group)
        _merge(azure, read_template(path, target.subscription_id, group, target.tenant_id, values))
    document["azure"] = _azure_entries(target, azure, has_inputs=bool(plans or templates))
    document["kube"] = _kube_entries(target, located, document["azure"])
    document["dns"] = {"parent": not_collected(LIVE_ONLY), "servers": not_collected(LIVE_ONLY)}
    document["tls"] = {key: not_collected(LIVE_ONLY) for key in ("handshake", "legacy", "http", "page")}
    document["sources"] = _sources(located, azure, source_root)
    return Snapshot(document)


def _template_and_group(given: Path, default_group: str) -> tuple[Path, str]:
    """`FILE@GROUP`: the resource group a template is deployed to (`az deployment group create -g GROUP`)."""
    text = str(given)
    if "@" in text and not given.exists():
        path, _, group = text.rpartition("@")
        if group and "/" not in group:
            return Path(path), group
    return given, default_group


def _merge(into: PlanResources, more: PlanResources) -> None:
    into.resources += more.resources
    into.sources.update(more.sources)
    into.problems += more.problems
    into.pod_identity_profiles += more.pod_identity_profiles


# -- Azure ---------------------------------------------------------------------------------------

def _azure_entries(target: Target, azure: PlanResources, has_inputs: bool) -> dict[str, dict[str, Any]]:
    def of_type(kind: str) -> list[dict[str, Any]]:
        return [r for r in azure.resources if r["type"].lower() == kind.lower()]

    if not has_inputs:
        def absent_from_files(what: str) -> dict[str, Any]:
            return not_collected(f"no plan or template was given (--aksid-plan, --aksid-arm-template), so {what} "
                                 "cannot be judged")
    else:
        def absent_from_files(what: str) -> dict[str, Any]:
            verb = "are" if what.endswith("s") and not what.endswith("'s") else "is"
            return not_collected(f"{what} {verb} not declared in the plan or template (created outside these files)")
    cluster = _named(of_type("Microsoft.ContainerService/ManagedClusters"), target.cluster_name)
    zone = _named(of_type("Microsoft.Network/dnszones"), target.domain)
    if cluster is not None:
        cluster = copy.deepcopy(cluster)
        if azure.pod_identity_profiles:
            declared = azure.pod_identity_profiles[-1]
            cluster["properties"]["podIdentityProfile"] = declared["profile"]
            (cluster.get(shapes.NOT_DECLARED) or {}).pop("podIdentityProfile", None)
            if declared.get("place"):  # an azapi body of a plan: where the profile is, apart from the cluster
                azure.sources[f"{str(cluster['id']).lower()}{shapes.PROFILE_SOURCE}"] = declared["place"]
    credentials = _credentials_by_identity(of_type("Microsoft.ManagedIdentity/userAssignedIdentities"),
                                           of_type(_CREDENTIAL))
    return {
        "managedCluster": ok(cluster) if cluster else absent_from_files(
            f"managed cluster {target.cluster_name}{_others(of_type('Microsoft.ContainerService/ManagedClusters'))}"),
        "dnsZone": ok(zone) if zone else absent_from_files(
            f"DNS zone {target.domain}{_others(of_type('Microsoft.Network/dnszones'))}"),
        "recordSets": not_collected(LIVE_ONLY),
        "identities": ok(of_type("Microsoft.ManagedIdentity/userAssignedIdentities")) if has_inputs
        else absent_from_files("the user-assigned identities"),
        "roleAssignments": ok(of_type("Microsoft.Authorization/roleAssignments")) if has_inputs
        else absent_from_files("the role assignments"),
        "roleDefinitions": ok(shapes.builtin_definitions(target.subscription_id)
                              + of_type("Microsoft.Authorization/roleDefinitions")),
        "federatedCredentials": (absent_from_files("the federated identity credentials") if not has_inputs
                                 else error("; ".join(azure.problems)) if azure.problems else ok(credentials)),
        # AKS creates the node pools' scale sets in the node resource group; a plan or template rarely declares one
        "scaleSets": ok(_with_identity_ids(of_type("Microsoft.Compute/virtualMachineScaleSets"),
                                           of_type("Microsoft.ManagedIdentity/userAssignedIdentities")))
        if of_type("Microsoft.Compute/virtualMachineScaleSets")
        else absent_from_files("the node pools' virtual machine scale sets"),
        # Who else holds roles on the identity and the zone is the tenant's state, not the repository's (ACCESS-002)
        "accessAssignments": not_collected(LIVE_ONLY),
    }


def _with_identity_ids(scale_sets: list[dict[str, Any]], identities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scale set's user-assigned identities with their client and principal ids, as ARM lists them: those of the
    identity the files declare under that id (a placeholder naming it, else)."""
    by_id = {str(i["id"]).lower(): i for i in identities}
    found = []
    for scale_set in scale_sets:
        scale_set = copy.deepcopy(scale_set)
        assigned = (scale_set.get("identity") or {}).get("userAssignedIdentities") or {}
        for arm_id, ids in assigned.items():
            declared = (by_id.get(str(arm_id).lower()) or {}).get("properties") or {}
            for field, attribute in (("clientId", "client_id"), ("principalId", "principal_id")):
                ids[field] = declared.get(field) or ids.get(field) or shapes.unknown(f"{arm_id}.{attribute}")
        found.append(scale_set)
    return found


def _named(resources: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The resource of the target's name (ARM names are case-insensitive); a name unknown until apply (a template
    parameter without default, a computed name) stands for it when it is the only one of its type."""
    exact = [r for r in resources if isinstance(r.get("name"), str) and r["name"].lower().rstrip(".") == name.lower()]
    if exact:
        return exact[0]
    unnamed = [r for r in resources if shapes.is_placeholder(r.get("name")) or not isinstance(r.get("name"), str)
               or DEPLOY_TIME in r["name"]]
    return unnamed[0] if len(resources) == 1 and unnamed else None


def _others(resources: list[dict[str, Any]]) -> str:
    names = [str(r.get("name")) for r in resources if isinstance(r.get("name"), str)]
    return f" (the files declare {', '.join(sorted(names))})" if names else ""


_CREDENTIAL = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"


def _credentials_by_identity(identities: list[dict[str, Any]], credentials: list[dict[str, Any]]
                             ) -> dict[str, list[dict[str, Any]]]:
    """{identity id (lowercase): its federated credentials}, as the live collector keeps them."""
    found: dict[str, list[dict[str, Any]]] = {i["id"].lower(): [] for i in identities}
    for credential in credentials:
        parent = credential["id"].lower().rsplit("/federatedidentitycredentials/", 1)[0]
        found.setdefault(parent, []).append(credential)
    return found


# -- Kubernetes ----------------------------------------------------------------------------------

def _kube_entries(target: Target, located: list[Located], azure: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    objects = [_with_namespace(item.obj) for item in located]
    objects += [_pod_of(obj) for obj in objects if obj.get("kind") in _POD_TEMPLATES and _template(obj)]
    objects += _pod_identity_objects(target, azure, uses_pod_identity=any(
        POD_IDENTITY_LABEL in ((o.get("metadata") or {}).get("labels") or {}) for o in objects if o.get("kind") == "Pod"))
    entries: dict[str, dict[str, Any]] = {}
    for spec in KINDS:
        key = kind_key(spec.api_version, spec.kind)
        if spec.kind in REPO_KINDS or spec.kind in ("AzureIdentity", "AzureIdentityBinding"):
            entries[key] = ok([redact_kube_object(o) for o in objects if o.get("kind") == spec.kind
                               and str(o.get("apiVersion", "")).split("/")[0] == spec.api_version.split("/")[0]])
        else:
            entries[key] = not_collected(LIVE_ONLY)
    return entries


def _with_namespace(obj: dict[str, Any]) -> dict[str, Any]:
    """`helm template` leaves the namespace out where the release's applies; kubectl's default is `default`."""
    cluster_scoped = obj.get("kind") in ("Namespace", "ClusterIssuer", "CustomResourceDefinition", "ClusterRole",
                                        "ClusterRoleBinding", "IngressClass")
    if cluster_scoped or obj.get("metadata", {}).get("namespace"):
        return obj
    return {**obj, "metadata": {**obj.get("metadata", {}), "namespace": "default"}}


def _template(workload: dict[str, Any]) -> dict[str, Any] | None:
    node: Any = workload
    for key in _POD_TEMPLATES[workload["kind"]]:
        node = (node or {}).get(key)
    return node if isinstance(node, dict) else None


def _pod_of(workload: dict[str, Any]) -> dict[str, Any]:
    """A workload's pod template stands for the pods it will create (one is enough: they are alike)."""
    template = _template(workload) or {}
    meta = workload["metadata"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {**(template.get("metadata") or {}), "name": f"{meta['name']}{POD_TEMPLATE}",
                         "namespace": meta.get("namespace"),
                         "ownerReferences": [{"apiVersion": workload.get("apiVersion"), "kind": workload["kind"],
                                              "name": meta["name"], "controller": True}]},
            "spec": copy.deepcopy(template.get("spec") or {})}


def _pod_identity_objects(target: Target, azure: dict[str, dict[str, Any]], uses_pod_identity: bool) -> list[dict[str, Any]]:
    """The AzureIdentity and AzureIdentityBinding the add-on makes for each pod identity (from the settings only when
    no profile is declared and the manifests' pods carry aadpodidbinding: a workload identity repo has none)."""
    cluster = azure["managedCluster"].get("value") or {}
    profile = (cluster.get("properties") or {}).get("podIdentityProfile")
    if isinstance(profile, dict):
        listed = profile.get("userAssignedIdentities")
        entries = [(e.get("namespace"), e.get("name"), e.get("bindingSelector"),
                    e.get("identity") if isinstance(e.get("identity"), dict) else {})
                   for e in (listed if isinstance(listed, list) else []) if isinstance(e, dict)]
    elif not uses_pod_identity:
        return []
    else:
        identity = next((i for i in azure["identities"].get("value") or []
                         if str(i.get("name", "")).lower() == target.identity_name.lower()), None)
        if identity is None:
            return []
        refs = {"resourceId": identity["id"], "clientId": identity["properties"].get("clientId")}
        entries = [(ns, selector, selector, refs) for (ns, _deployment), selector in target.allowed_bindings().items()]
    made = []
    for namespace, name, selector, identity_ref in entries:
        meta = {"namespace": namespace, "labels": dict(ADDON_LABELS)}
        made.append({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
                     "metadata": {**meta, "name": name},
                     "spec": {"type": 0, "resourceID": identity_ref.get("resourceId"),
                              "clientID": identity_ref.get("clientId")}})
        made.append({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
                     "metadata": {**meta, "name": f"{name}-binding"},
                     "spec": {"azureIdentity": name, "selector": selector}})
    return made


# -- where each piece of evidence came from ------------------------------------------------------

def _sources(located: list[Located], azure: PlanResources, root: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in located:
        meta = _with_namespace(item.obj)["metadata"]
        entry = {"file": _relative(item.path, root), "line": item.line}
        if item.chart_source:
            entry["chart_source"] = item.chart_source
        found[kube_key(item.obj["kind"], meta.get("namespace"), str(meta.get("name")))] = {**entry, "kind": item.obj["kind"]}
    for arm_id, where in azure.sources.items():
        found[arm_id] = {**where, "file": _relative(Path(where["file"]), root)}
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
