"""A Terraform plan as `terraform show -json` writes it (format 1.x), turned into ARM resources.

Values unknown until apply are resolved from the plan's `configuration`: a reference to another
resource's attribute (root or child module) takes that resource's value, or a placeholder that names
it; `data.*` sources stand for existing resources found by their arguments. Every resource keeps its
address and the line of the plan where it is declared."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aksid.collect.static import arm_shapes as shapes
from aksid.collect.static.errors import StaticInputError, read_json_input

_INDEX = re.compile(r"\[[^\]]*\]$")


@dataclass
class PlanResources:
    resources: list[dict[str, Any]] = field(default_factory=list)  # ARM shapes
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # ARM id -> {file, line, address}
    problems: list[str] = field(default_factory=list)  # what could not be resolved (the evidence is then an error)
    pod_identity_profiles: list[dict[str, Any]] = field(default_factory=list)
    cluster_address: str | None = None


def read_plan(path: Path, subscription: str, tenant: str | None) -> PlanResources:
    text, plan = read_json_input(path, "the Terraform plan", "a plan is `terraform show -json tfplan`")
    version = str(plan.get("format_version", "")) if isinstance(plan, dict) else ""
    if not version.startswith("1."):
        raise StaticInputError(f"the Terraform plan {path} has format_version {version or 'none'}; aksid reads 1.x")
    return _Plan(path, text, plan, subscription, tenant).build()


class _Plan:
    def __init__(self, path: Path, text: str, plan: dict[str, Any], subscription: str, tenant: str | None) -> None:
        self.path, self.text, self.subscription, self.tenant = path, text, subscription, tenant
        self.values = {r["address"]: r for r in _walk(plan.get("planned_values", {}).get("root_module", {}))}
        self.values.update({r["address"]: r for r in _walk((plan.get("prior_state") or {}).get("values", {}).get(
            "root_module", {})) if r.get("mode") == "data"})
        self.expressions = dict(_expressions(plan.get("configuration", {}).get("root_module", {}), ""))
        self.variables = {k: v.get("value") for k, v in (plan.get("variables") or {}).items()}
        self.out = PlanResources()

    def build(self) -> PlanResources:
        order = ("azurerm_user_assigned_identity", "azurerm_dns_zone", "azurerm_kubernetes_cluster",
                 "azurerm_role_assignment", "azapi_resource", "azapi_update_resource", "azurerm_dns_a_record",
                 "azurerm_federated_identity_credential")
        for kind in order:
            for address, resource in self.values.items():
                if resource.get("type") == kind:
                    getattr(self, f"_{kind}")(address, resource)
        return self.out

    # -- values ------------------------------------------------------------------------------------

    def value(self, address: str, attribute: str) -> Any:
        """A resource's attribute (`name`, `kubelet_identity[0].object_id`): planned, else from its configuration's
        reference, else computed, else a placeholder naming it."""
        resource = self.values.get(address) or self.values.get(_INDEX.sub("", address)) or {}
        known = _dig(resource.get("values") or {}, attribute)
        if known is not None:
            return known
        expression = self.expressions.get(f"{_INDEX.sub('', address)}.{attribute}") or {}
        if "constant_value" in expression:
            return expression["constant_value"]
        for reference in expression.get("references") or []:
            resolved = self._reference(reference)
            if resolved is not None:
                return resolved
        computed = self._computed(address, resource, attribute)
        return computed if computed is not None else shapes.unknown(f"{address}.{attribute}")

    def _reference(self, reference: str) -> Any:
        if reference.startswith("var."):
            return self.variables.get(reference[4:])
        parts = reference.split(".")
        head = 3 if parts[0] == "data" else 2
        module = []
        while parts[:1] == ["module"]:
            module, parts = module + parts[:2], parts[2:]
        if len(parts) <= head:
            return None  # a whole resource: the attribute form of the same reference comes next
        address = ".".join(module + parts[:head])
        attribute = ".".join(parts[head:])
        if address not in self.values:
            # `count`/`for_each`: a reference without an index names the instances; they share the attribute's source
            address = next((a for a in self.values if _INDEX.sub("", a) == address), None)
            if address is None:
                return None
        return self.value(address, attribute)

    def _computed(self, address: str, resource: dict[str, Any], attribute: str) -> Any:
        if attribute != "id":
            return None
        values = resource.get("values") or {}
        name, group = values.get("name"), self.value(address, "resource_group_name") if values else None
        provider = {"azurerm_user_assigned_identity": "Microsoft.ManagedIdentity/userAssignedIdentities",
                    "azurerm_dns_zone": "Microsoft.Network/dnszones",
                    "azurerm_kubernetes_cluster": "Microsoft.ContainerService/managedClusters"}.get(resource.get("type", ""))
        if provider and name and isinstance(group, str) and not shapes.is_unknown(group):
            return f"/subscriptions/{self.subscription}/resourceGroups/{group}/providers/{provider}/{name}"
        return None

    def _locate(self, arm_id: str, address: str) -> None:
        needle = f'"address": "{address}"' if f'"address": "{address}"' in self.text else f'"address":"{address}"'
        line = self.text[: self.text.find(needle)].count("\n") + 1 if needle in self.text else None
        self.out.sources[arm_id.lower()] = {"file": str(self.path), "line": line, "address": address}

    # -- resource types ----------------------------------------------------------------------------

    def _azurerm_user_assigned_identity(self, address: str, resource: dict[str, Any]) -> None:
        arm_id = self.value(address, "id")
        found = shapes.identity(arm_id, self.value(address, "name"), self.value(address, "principal_id"),
                                self.value(address, "client_id"), self.tenant)
        self.out.resources.append(found)
        self._locate(arm_id, address)

    def _azurerm_dns_zone(self, address: str, resource: dict[str, Any]) -> None:
        arm_id = self.value(address, "id")
        self.out.resources.append(shapes.zone(arm_id, self.value(address, "name")))
        self._locate(arm_id, address)

    def _azurerm_role_assignment(self, address: str, resource: dict[str, Any]) -> None:
        scope, principal = self.value(address, "scope"), self.value(address, "principal_id")
        role = (resource.get("values") or {}).get("role_definition_id") or self.value(address, "role_definition_name")
        if shapes.is_unknown(scope) or shapes.is_unknown(principal) and not self._references_resource(address):
            self.out.problems.append(f"{address}: its scope or principal_id cannot be resolved from the plan "
                                     f"(scope {scope}, principal {principal})")
            return
        definition = shapes.role_definition_id(self.subscription, str(role))
        assignment = shapes.role_assignment(address, str(scope), definition, str(principal))
        self.out.resources.append(assignment)
        self._locate(assignment["id"], address)

    def _references_resource(self, address: str) -> bool:
        """An unknown principal that names the resource it comes from can still be compared (placeholders match)."""
        expression = self.expressions.get(f"{_INDEX.sub('', address)}.principal_id") or {}
        return any(not ref.startswith("var.") for ref in expression.get("references") or [])

    def _azurerm_kubernetes_cluster(self, address: str, resource: dict[str, Any]) -> None:
        values = resource.get("values") or {}
        arm_id = self.value(address, "id")
        kubelet = (values.get("kubelet_identity") or [{}])[0] or {}
        network = (values.get("network_profile") or [{}])[0] or {}
        cluster = {
            "id": arm_id, "name": values.get("name"), "type": "Microsoft.ContainerService/ManagedClusters",
            "identity": {"type": "SystemAssigned", "principalId": shapes.unknown(f"{address}.identity[0].principal_id")},
            "properties": {
                "identityProfile": {"kubeletidentity": {
                    "clientId": kubelet.get("client_id") or shapes.unknown(f"{address}.kubelet_identity[0].client_id"),
                    "objectId": kubelet.get("object_id") or shapes.unknown(f"{address}.kubelet_identity[0].object_id"),
                    "resourceId": kubelet.get("user_assigned_identity_id") or shapes.unknown(
                        f"{address}.kubelet_identity[0].user_assigned_identity_id")}},
                "networkProfile": {"networkPlugin": network.get("network_plugin") or "kubenet"},
                "oidcIssuerProfile": {"enabled": bool(values.get("oidc_issuer_enabled")),
                                      "issuerURL": self.value(address, "oidc_issuer_url")},
                "securityProfile": {"workloadIdentity": {"enabled": bool(values.get("workload_identity_enabled"))}},
                "nodeResourceGroup": values.get("node_resource_group"),
            },
        }
        self.out.resources.append(cluster)
        self.out.cluster_address = address
        self._locate(arm_id, address)

    def _azapi_resource(self, address: str, resource: dict[str, Any]) -> None:
        """What azurerm cannot express: the cluster's podIdentityProfile, in an azapi body."""
        values = resource.get("values") or {}
        if not str(values.get("type", "")).lower().startswith("microsoft.containerservice/managedclusters"):
            return
        body = values.get("body")
        body = json.loads(body) if isinstance(body, str) else body or {}
        profile = (body.get("properties") or {}).get("podIdentityProfile")
        if profile is not None:
            self._fill_identities(address, profile)
            self.out.pod_identity_profiles.append({"profile": profile, "address": address})

    def _fill_identities(self, address: str, profile: dict[str, Any]) -> None:
        """Identity fields unknown until apply are those of the identity the body references (jsonencode hides which
        field came from where; an identity's id, client id and principal id are all it can mean)."""
        references = (self.expressions.get(f"{_INDEX.sub('', address)}.body") or {}).get("references") or []
        identity = next((".".join(r.split(".")[:3] if r.startswith("data.") else r.split(".")[:2]) for r in references
                         if "azurerm_user_assigned_identity." in r), None)
        for entry in profile.get("userAssignedIdentities") or []:
            ref = entry.setdefault("identity", {})
            for field_name, attribute in (("resourceId", "id"), ("clientId", "client_id"), ("objectId", "principal_id")):
                if ref.get(field_name) is None and identity is not None:
                    ref[field_name] = self.value(identity, attribute)
            entry.setdefault("provisioningState", "Assigned")  # what the add-on reports once it applied the profile

    _azapi_update_resource = _azapi_resource

    def _azurerm_federated_identity_credential(self, address: str, resource: dict[str, Any]) -> None:
        """Workload identity's trust: the issuer is usually the cluster's oidc_issuer_url by reference, which stays a
        placeholder naming it, as the cluster's issuerURL does, so the two compare equal."""
        parent, name = self.value(address, "parent_id"), self.value(address, "name")
        if shapes.is_unknown(parent):
            self.out.problems.append(f"{address}: its parent_id (the identity) cannot be resolved from the plan")
            return
        audiences = self.value(address, "audience")
        credential = {"id": f"{parent}/federatedIdentityCredentials/{name}", "name": name,
                      "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
                      "properties": {"issuer": self.value(address, "issuer"), "subject": self.value(address, "subject"),
                                     "audiences": audiences if isinstance(audiences, list) else [audiences]}}
        self.out.resources.append(credential)
        self._locate(credential["id"], address)

    def _azurerm_dns_a_record(self, address: str, resource: dict[str, Any]) -> None:
        pass  # external-dns writes the demo record; a repo's own A records do not change what the checks judge


def _dig(values: Any, path: str) -> Any:
    """`kubelet_identity[0].object_id` inside planned values; None where any step is unknown or absent."""
    node = values
    for step in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if step.startswith("["):
            index = int(step[1:-1])
            node = node[index] if isinstance(node, list) and len(node) > index else None
        else:
            node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def _walk(module: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(module.get("resources") or [])
    for child in module.get("child_modules") or []:
        found += _walk(child)
    return found


def _expressions(module: dict[str, Any], prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """(`address.attribute`, expression) for every resource of the configuration, child modules included."""
    found = []
    for resource in module.get("resources") or []:
        for attribute, expression in (resource.get("expressions") or {}).items():
            if isinstance(expression, dict):
                found.append((f"{prefix}{resource['address']}.{attribute}", expression))
    for name, call in (module.get("module_calls") or {}).items():
        found += _expressions(call.get("module") or {}, f"{prefix}module.{name}.")
    return found
