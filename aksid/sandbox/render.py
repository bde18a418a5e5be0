"""A scenario as a repository would hold it, for static mode: rendered manifests and a Terraform plan.

Only what a repository holds: no Pods, no status, no objects AKS or the controllers make (the add-on's
pod-identity objects, NMI, kube-system add-ons, cert-manager's Certificates, Orders and Secrets). Each
manifest file is `helm template` output (`# Source:` comments), one per chart; the plan is
`terraform show -json` output (format 1.0) declaring the identities, the zone, the cluster, the role
assignments by reference, and the pod identities in an azapi body, with the values Terraform cannot
know before apply left unknown, as a real plan leaves them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from aksid.arm_ids import BUILTIN_NAMES, role_guid, same_id
from aksid.sandbox.scenario import Scenario, load_base

_AKS_MADE = {"kubernetes.azure.com/managedby": "aks"}
_REPO_KINDS = {"Namespace", "ServiceAccount", "Service", "Deployment", "DaemonSet", "StatefulSet", "Ingress",
               "IngressClass", "ClusterIssuer", "Issuer", "Secret", "AzurePodIdentityException"}
_RUNTIME_KEYS = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields", "ownerReferences")


NOT_RENDERED = "NOT-RENDERED.md"


def render(scenario: Scenario, out: Path) -> dict[str, Path]:
    """Write `manifests/`, `plan.json` and `env.sh` under `out`, and NOT-RENDERED.md when some of the scenario's own
    changes cannot be held by a repository; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    manifests = out / "manifests"
    manifests.mkdir(exist_ok=True)
    for chart, objects in _charts(scenario.kube_objects).items():
        docs = [f"---\n# Source: {chart}/templates/{_file_of(obj)}\n{yaml.safe_dump(obj, sort_keys=False)}" for obj in objects]
        (manifests / f"{chart}.yaml").write_text("".join(docs), encoding="utf-8")
    plan = out / "plan.json"
    plan.write_text(json.dumps(_plan(scenario), indent=2) + "\n", encoding="utf-8")
    env = out / "env.sh"
    t = scenario.target
    env.write_text("".join(f'export {k}="{t[v]}"\n' for k, v in (
        ("AZ_DNS_DOMAIN", "domain"), ("AZ_DNS_RESOURCE_GROUP", "dns_resource_group"),
        ("AZ_AKS_RESOURCE_GROUP", "aks_resource_group"), ("AZ_AKS_CLUSTER_NAME", "cluster_name"),
        ("AZ_SUBSCRIPTION_ID", "subscription_id"), ("AZ_TENANT_ID", "tenant_id"), ("ACME_ISSUER", "acme_issuer"))
        if t.get(v)), encoding="utf-8")
    written = {"manifests": manifests, "plan": plan, "env": env}
    left_out = not_rendered(scenario)
    note = out / NOT_RENDERED
    if left_out:
        # beside the manifests, so whoever runs static mode on this folder learns why it may be greener than attach
        note.write_text(f"# What scenario {scenario.name} changes that this repository cannot hold\n\n"
                        "Static mode reads only these manifests, plan.json and env.sh: the changes below are invisible "
                        "to it, so a check red in attach mode may pass here.\n\n"
                        + "".join(f"- {line}\n" for line in left_out)
                        + f"\nRendered kinds: {', '.join(sorted(_REPO_KINDS))}.\n", encoding="utf-8")
        written["not_rendered"] = note
    elif note.exists():
        note.unlink()  # a render of another scenario into the same folder must not keep a stale note
    return written


# -- what a repository cannot hold ---------------------------------------------------------------

def not_rendered(scenario: Scenario) -> list[str]:
    """The scenario's own changes over its base (objects added, patched or removed, Azure resources, live-only
    staging) that the rendered repository leaves out, one line each with the reason; [] for a root scenario."""
    base = load_base(scenario)
    if base is None:
        return []
    lines = []
    before = {_identity(obj): obj for obj in base.kube_objects}
    for obj in scenario.kube_objects:
        old = before.pop(_identity(obj), None)
        if old == obj:
            continue
        verb = "added" if old is None else "changed"
        if not _in_repo(obj):
            lines.append(f"{_label(obj)} ({verb}): {_why_left_out(obj)}")
        elif old is not None and _as_declared(old) == _as_declared(obj):
            lines.append(f"{_label(obj)} (changed): only its status or runtime fields differ, which no manifest holds")
    lines += [f"{_label(obj)} (removed): {_why_left_out(obj)}, so its absence cannot show either"
              for obj in before.values() if not _in_repo(obj)]
    if scenario.azure_resources != base.azure_resources and _plan(scenario) == _plan(base):
        old, new = ({json.dumps(r, sort_keys=True): str(r.get("id")) for r in resources}
                    for resources in (base.azure_resources, scenario.azure_resources))
        changed = sorted({new[text] for text in new.keys() - old.keys()} | (set(old.values()) - set(new.values())))
        lines.append(f"Azure {', '.join(changed)}: not in plan.json, which declares only the identities, the zone, the "
                     "cluster, the pod identities and the identities' role assignments")
    for section, why in (("dns", "the name servers' answers: live evidence, static mode asks no name server"),
                         ("tls", "the served certificate and edge: live evidence, static mode opens no connection"),
                         ("kube_faults", "faults of the Kubernetes API: live only"),
                         ("azure_faults", "faults of ARM: live only"),
                         ("controllers", "the controllers' behaviour: provision mode only")):
        if getattr(scenario, section) != getattr(base, section):
            lines.append(f"{section.replace('_', ' ')}: {why}")
    return lines


def _identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def _label(obj: dict[str, Any]) -> str:
    _, kind, namespace, name = _identity(obj)
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _why_left_out(obj: dict[str, Any]) -> str:
    """Why _in_repo leaves `obj` out, in the order it asks."""
    meta = obj.get("metadata") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        owners = meta.get("ownerReferences") or []
        if not owners:
            return "a bare Pod (no owner: made with kubectl, not by a chart), which a repository of charts does not hold"
        return f"a Pod its {owners[0].get('kind')} {owners[0].get('name')} makes at runtime"
    if kind not in _REPO_KINDS:
        return f"{kind} objects are not rendered (made in the cluster, not kept as manifests)"
    if meta.get("namespace") == "kube-system":
        return "it is in kube-system, whose objects the render leaves to AKS (which manages that namespace)"
    if all((meta.get("labels") or {}).get(k) == v for k, v in _AKS_MADE.items()):
        return "AKS makes it (kubernetes.azure.com/managedby: aks)"
    if kind == "Namespace":
        return "a namespace every cluster has"
    return "a Secret a controller writes (a certificate, an ACME key), not a chart's"


# -- manifests -----------------------------------------------------------------------------------

def _in_repo(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if obj.get("kind") not in _REPO_KINDS or meta.get("namespace") == "kube-system" and obj.get("kind") != (
            "AzurePodIdentityException") or all(labels.get(k) == v for k, v in _AKS_MADE.items()):
        return False
    if obj.get("kind") == "Namespace" and meta.get("name") in ("default", "kube-system", "kube-public", "kube-node-lease"):
        return False
    # Secrets a controller writes (certificates, ACME account keys) are not in a repo; a chart's config Secret is.
    return not (obj.get("kind") == "Secret" and (obj.get("type") == "kubernetes.io/tls"
                                                 or "helm.sh/chart" not in labels))


def _as_declared(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _RUNTIME_KEYS}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("deployment.kubernetes")}
    meta = {**meta, "annotations": annotations} if annotations else {k: v for k, v in meta.items() if k != "annotations"}
    return {k: v for k, v in {**obj, "metadata": meta}.items() if k != "status"}


def _charts(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    charts: dict[str, list[dict[str, Any]]] = {}
    for obj in filter(_in_repo, objects):
        labels = obj["metadata"].get("labels") or {}
        chart = re.sub(r"-v?\d[\w.+-]*$", "", labels.get("helm.sh/chart", "")) or labels.get(
            "app.kubernetes.io/name") or obj["metadata"].get("namespace") or "cluster"
        charts.setdefault(chart, []).append(_as_declared(obj))
    return charts


def _file_of(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


# -- the Terraform plan --------------------------------------------------------------------------

def _plan(scenario: Scenario) -> dict[str, Any]:
    resources, changes, config = [], [], []

    def declare(kind: str, name: str, values: dict[str, Any], unknown: list[str],
                references: dict[str, list[str]] | None = None) -> str:
        address = f"{kind}.{name}"
        resources.append({"address": address, "mode": "managed", "type": kind, "name": name,
                          "provider_name": "registry.terraform.io/hashicorp/azurerm", "schema_version": 0,
                          "values": values, "sensitive_values": {}})
        changes.append({"address": address, "mode": "managed", "type": kind, "name": name,
                        "change": {"actions": ["create"], "before": None, "after": values,
                                   "after_unknown": dict.fromkeys(unknown, True)}})
        expressions = {k: {"references": v} for k, v in (references or {}).items()}
        expressions.update({k: {"constant_value": v} for k, v in values.items() if k not in expressions
                            and not isinstance(v, list | dict)})
        config.append({"address": address, "mode": "managed", "type": kind, "name": name, "expressions": expressions})
        return address

    principals = _declare_azure(scenario, declare)
    _declare_assignments(scenario, declare, principals)
    return {"format_version": "1.2", "terraform_version": "1.9.8",
            "planned_values": {"root_module": {"resources": resources}}, "resource_changes": changes,
            "configuration": {"root_module": {"resources": config}}}


def _of_type(scenario: Scenario, kind: str) -> list[dict[str, Any]]:
    return [r for r in scenario.azure_resources if str(r.get("type", "")).lower() == kind.lower()]


def _group(resource_id: str) -> str:
    return resource_id.split("/")[4]


def _declare_azure(scenario: Scenario, declare: Any) -> dict[str, str]:
    """Identities, zone, cluster and pod identities; returns {principal id: the reference that yields it}."""
    principals: dict[str, str] = {}
    for identity in _of_type(scenario, "Microsoft.ManagedIdentity/userAssignedIdentities"):
        if identity["id"].split("/")[4].upper().startswith("MC_"):
            continue  # the kubelet identity: AKS makes it in the node resource group
        slug = re.sub(r"\W", "_", identity["name"])
        address = declare("azurerm_user_assigned_identity", slug, {"name": identity["name"], "location": "westus2",
                          "resource_group_name": _group(identity["id"])}, ["id", "principal_id", "client_id", "tenant_id"])
        principals[identity["properties"]["principalId"]] = f"{address}.principal_id"
    for zone in _of_type(scenario, "Microsoft.Network/dnszones"):
        declare("azurerm_dns_zone", "zone", {"name": zone["name"], "resource_group_name": _group(zone["id"])},
                ["id", "name_servers"])
    for cluster in _of_type(scenario, "Microsoft.ContainerService/ManagedClusters"):
        props = cluster.get("properties") or {}
        network = props.get("networkProfile") or {}
        declare("azurerm_kubernetes_cluster", "aks", {
            "name": cluster["name"], "resource_group_name": _group(cluster["id"]), "location": "westus2",
            "dns_prefix": props.get("dnsPrefix"), "node_resource_group": props.get("nodeResourceGroup"),
            "network_profile": [{"network_plugin": network.get("networkPlugin")}],
            "oidc_issuer_enabled": bool((props.get("oidcIssuerProfile") or {}).get("enabled")),
            "workload_identity_enabled": bool(((props.get("securityProfile") or {}).get("workloadIdentity") or {}).get(
                "enabled"))}, ["id", "kubelet_identity", "identity", "oidc_issuer_url"])
        kubelet = ((props.get("identityProfile") or {}).get("kubeletidentity") or {}).get("objectId")
        if kubelet:
            principals[kubelet] = "azurerm_kubernetes_cluster.aks.kubelet_identity[0].object_id"
        _declare_pod_identities(props.get("podIdentityProfile"), declare, principals)
        _declare_federated_credentials(scenario, declare, (props.get("oidcIssuerProfile") or {}).get("issuerURL"))
    return principals


def _declare_federated_credentials(scenario: Scenario, declare: Any, cluster_issuer: str | None) -> None:
    """azurerm_federated_identity_credential: parent_id by reference to its identity; the issuer by reference to the
    cluster's oidc_issuer_url when it is this cluster's (unknown until apply, as in a real plan), else as written."""
    kind = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    for credential in _of_type(scenario, kind):
        props = credential.get("properties") or {}
        identity = credential["id"].split("/")[-3]
        parent = "azurerm_user_assigned_identity." + re.sub(r"\W", "_", identity)
        values = {"name": credential["name"], "resource_group_name": _group(credential["id"]),
                  "audience": props.get("audiences") or [], "subject": props.get("subject")}
        refs = {"parent_id": [f"{parent}.id", parent]}
        unknown = ["id", "parent_id"]
        if cluster_issuer and props.get("issuer") == cluster_issuer:
            refs["issuer"] = ["azurerm_kubernetes_cluster.aks.oidc_issuer_url", "azurerm_kubernetes_cluster.aks"]
            unknown.append("issuer")
        else:
            values["issuer"] = props.get("issuer")
        declare("azurerm_federated_identity_credential", re.sub(r"\W", "_", f"{identity}_{credential['name']}"), values,
                unknown, refs)


def _declare_pod_identities(profile: dict[str, Any] | None, declare: Any, principals: dict[str, str]) -> None:
    if profile is None:
        return
    entries = [{k: v for k, v in entry.items() if k not in ("identity", "provisioningState")}
               for entry in profile.get("userAssignedIdentities") or []]
    body = {"properties": {"podIdentityProfile": {**{k: v for k, v in profile.items() if k != "userAssignedIdentities"},
                                                  "userAssignedIdentities": entries}}}
    identity = next((ref.rsplit(".", 1)[0] for ref in principals.values() if ref.startswith("azurerm_user")), None)
    declare("azapi_update_resource", "pod_identity", {"type": "Microsoft.ContainerService/managedClusters@2023-08-02-preview",
                                                      "body": body}, ["resource_id", "output"],
            {"body": [f"{identity}.id", f"{identity}.client_id", f"{identity}.principal_id", identity] if identity else [],
             "resource_id": ["azurerm_kubernetes_cluster.aks.id", "azurerm_kubernetes_cluster.aks"]})


def _declare_assignments(scenario: Scenario, declare: Any, principals: dict[str, str]) -> None:
    """Role assignments of the identities the plan declares, principal and zone scope by reference."""
    zone = next(iter(_of_type(scenario, "Microsoft.Network/dnszones")), None)
    for index, assignment in enumerate(_of_type(scenario, "Microsoft.Authorization/roleAssignments")):
        props = assignment.get("properties") or {}
        principal = principals.get(props.get("principalId", ""))
        if principal is None:
            continue  # someone else's assignment (the control plane's, made by `az aks pod-identity add`)
        guid = role_guid(props.get("roleDefinitionId", ""))
        on_zone = zone is not None and same_id(props.get("scope"), zone["id"])
        scope_ref = ["azurerm_dns_zone.zone.id", "azurerm_dns_zone.zone"] if on_zone else []
        values = {"role_definition_name": BUILTIN_NAMES[guid]} if guid in BUILTIN_NAMES else {
            "role_definition_id": props.get("roleDefinitionId")}
        if not scope_ref:
            values["scope"] = props.get("scope")
        refs = {"principal_id": [principal, principal.rsplit(".", 1)[0]]}
        if scope_ref:
            refs["scope"] = scope_ref
        declare("azurerm_role_assignment", f"assignment_{index}", values, ["id", "principal_id", "principal_type"]
                + (["scope"] if scope_ref else []), refs)
