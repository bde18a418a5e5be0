"""A Terraform plan as `terraform show -json` writes it (format 1.x), turned into ARM resources.

A value the plan leaves unknown until apply is worked out from what the plan does know, as Terraform and Azure
will: the resource's configuration expression (constants, `var.*` of the root or of a child module through its
module call, `module.*` outputs, other resources' attributes, `data.*` sources read while planning), and ids Azure
builds from known arguments (a resource group's id is `/subscriptions/<sub>/resourceGroups/<name>`). What is still
unknown becomes a placeholder: `(known after apply: ADDRESS.ATTRIBUTE)` names a value a resource computes (two
references to it compare equal, as the applied values will), `(not resolvable from the plan: ...)` an expression
the plan's JSON does not let anyone evaluate (a `local`, a function of several values). Checks judge those on what
is known. Every resource keeps its address and the line of the plan where it is declared."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aksid.collect.static import arm_shapes as shapes
from aksid.collect.static.errors import StaticInputError, read_json_input
from aksid.snapshot import unknown_until_apply

_INDEX = re.compile(r"\[[^\]]*\]")
_STEP = re.compile(r"[^.\[\]]+|\[[^\]]*\]")

# Terraform type -> ARM resource type, for ids Azure builds from a resource's name and resource group.
ARM_TYPES = {
    "azurerm_user_assigned_identity": "Microsoft.ManagedIdentity/userAssignedIdentities",
    "azurerm_dns_zone": "Microsoft.Network/dnszones",
    "azurerm_private_dns_zone": "Microsoft.Network/privateDnsZones",
    "azurerm_kubernetes_cluster": "Microsoft.ContainerService/managedClusters",
    "azurerm_container_registry": "Microsoft.ContainerRegistry/registries",
    "azurerm_key_vault": "Microsoft.KeyVault/vaults",
    "azurerm_storage_account": "Microsoft.Storage/storageAccounts",
    "azurerm_virtual_network": "Microsoft.Network/virtualNetworks",
    "azurerm_public_ip": "Microsoft.Network/publicIPAddresses",
    "azurerm_network_security_group": "Microsoft.Network/networkSecurityGroups",
    "azurerm_route_table": "Microsoft.Network/routeTables",
    "azurerm_application_gateway": "Microsoft.Network/applicationGateways",
    "azurerm_log_analytics_workspace": "Microsoft.OperationalInsights/workspaces",
    "azurerm_application_insights": "Microsoft.Insights/components",
    "azurerm_disk_encryption_set": "Microsoft.Compute/diskEncryptionSets",
    "azurerm_private_endpoint": "Microsoft.Network/privateEndpoints",
    "azurerm_nat_gateway": "Microsoft.Network/natGateways",
    "azurerm_firewall": "Microsoft.Network/azureFirewalls",
    "azurerm_monitor_workspace": "Microsoft.Monitor/accounts",
    "azurerm_dashboard_grafana": "Microsoft.Dashboard/grafana",
    "azurerm_servicebus_namespace": "Microsoft.ServiceBus/namespaces",
    "azurerm_cosmosdb_account": "Microsoft.DocumentDB/databaseAccounts",
    "azurerm_linux_virtual_machine_scale_set": "Microsoft.Compute/virtualMachineScaleSets",
    "azurerm_windows_virtual_machine_scale_set": "Microsoft.Compute/virtualMachineScaleSets",
    "azurerm_orchestrated_virtual_machine_scale_set": "Microsoft.Compute/virtualMachineScaleSets",
    "azurerm_virtual_machine_scale_set": "Microsoft.Compute/virtualMachineScaleSets",
}
# What a cluster's podIdentityProfile is when the plan has no azapi body for it: azurerm cannot express it (and keeps
# whatever `az aks update --enable-pod-identity` set), so the plan does not say whether the add-on is on.
POD_IDENTITY_NOT_IN_AZURERM = ("{address} is an azurerm_kubernetes_cluster, which has no pod identity setting (azurerm "
                               "leaves podIdentityProfile as `az aks update` set it), and no azapi_resource / "
                               "azapi_update_resource body of the plan declares it")
_SCALE_SETS = tuple(kind for kind, arm in ARM_TYPES.items() if arm == "Microsoft.Compute/virtualMachineScaleSets")
# Record sets live under their zone: `<zone id>/<TYPE>/<name>`.
_RECORD_TYPES = {f"azurerm_dns_{t.lower()}_record": t for t in ("A", "AAAA", "CNAME", "TXT", "MX", "NS", "SRV", "CAA")}


@dataclass
class PlanResources:
    resources: list[dict[str, Any]] = field(default_factory=list)  # ARM shapes
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # ARM id -> {file, line, address}
    problems: list[str] = field(default_factory=list)  # what could not be resolved (the evidence is then an error)
    pod_identity_profiles: list[dict[str, Any]] = field(default_factory=list)


def read_plan(path: Path, subscription: str, tenant: str | None) -> PlanResources:
    text, plan = read_json_input(path, "the Terraform plan", "a plan is `terraform show -json tfplan`")
    version = str(plan.get("format_version", "")) if isinstance(plan, dict) else ""
    # 0.2 (Terraform 0.15 and 1.0) is 1.x's shape; 0.1 (0.12-0.14) names only whole resources in its references
    if not (version.startswith("1.") or version == "0.2"):
        raise StaticInputError(f"the Terraform plan {path} has format_version {version or 'none'}; aksid reads 0.2 and "
                               "1.x, what `terraform show -json tfplan` writes from Terraform 0.15 on")
    return _Plan(path, text, plan, subscription, tenant).build()


def _base(address: str) -> str:
    """An address without instance keys: `module.a[0].x.y["k"]` -> `module.a.x.y`."""
    return _INDEX.sub("", address)


def _module_of(address: str) -> str:
    """The module prefix of a resource address, `module.a.module.b.` (empty for the root module)."""
    parts = _split_reference(address)
    return parts[0]


def _split_reference(reference: str) -> tuple[str, str, str]:
    """(module prefix with its dot, the rest's head, attribute) of a reference or address, instance keys kept in the
    module prefix: `module.m[0].data.t.n.id` -> ("module.m[0].", "data.t.n", "id")."""
    module = ""
    rest = reference
    while rest.startswith("module."):
        match = re.match(r"module\.[^.\[]+(\[[^\]]*\])?\.", rest)
        if match is None:
            break
        module, rest = module + match.group(0), rest[match.end():]
    head_len = 3 if rest.startswith("data.") else 2
    pieces = []
    position = 0
    for _ in range(head_len):
        match = re.match(r"[^.\[]+(\[[^\]]*\])?\.?", rest[position:])
        if match is None:
            break
        pieces.append(match.group(0))
        position += match.end()
    head = "".join(pieces).rstrip(".")
    return module, head, rest[position:]


class _Plan:
    def __init__(self, path: Path, text: str, plan: dict[str, Any], subscription: str, tenant: str | None) -> None:
        self.path, self.text, self.tenant = path, text, tenant
        self.values: dict[str, dict[str, Any]] = {
            r["address"]: r for r in _walk(plan.get("planned_values", {}).get("root_module", {}))}
        for r in _walk((plan.get("prior_state") or {}).get("values", {}).get("root_module", {})):
            if r.get("mode") == "data":  # data sources read while planning: their values are known
                self.values.setdefault(r["address"], r)
        self.by_base: dict[str, list[str]] = {}
        for address in self.values:
            self.by_base.setdefault(_base(address), []).append(address)
        root = plan.get("configuration", {}).get("root_module", {})
        self.config: dict[str, dict[str, Any]] = {}  # base address -> the resource's configuration
        self.calls: dict[str, dict[str, Any]] = {}  # module prefix (`module.a.`) -> its module call
        self._index_configuration(root, "")
        self.variables = {k: (v or {}).get("value") for k, v in (plan.get("variables") or {}).items()}
        self.subscription = self._subscription(root) or subscription
        self.out = PlanResources()
        self._resolving: set[tuple[str, str]] = set()

    def _index_configuration(self, module: dict[str, Any], prefix: str) -> None:
        for resource in module.get("resources") or []:
            self.config[f"{prefix}{resource['address']}"] = resource
        for name, call in (module.get("module_calls") or {}).items():
            self.calls[f"{prefix}module.{name}."] = call
            self._index_configuration(call.get("module") or {}, f"{prefix}module.{name}.")

    def _subscription(self, root: dict[str, Any]) -> str | None:
        """The plan's own subscription: what `data.azurerm_client_config` / `data.azurerm_subscription` read while
        planning, else the azurerm provider block's `subscription_id` constant."""
        for address, resource in self.values.items():
            if resource.get("type") in ("azurerm_client_config", "azurerm_subscription") and address.startswith(
                    ("data.", "module.")):
                found = (resource.get("values") or {}).get("subscription_id")
                if isinstance(found, str) and found:
                    return found
        azurerm = (root.get("provider_config") or {}).get("azurerm") or {}
        constant = ((azurerm.get("expressions") or {}).get("subscription_id") or {}).get("constant_value")
        if isinstance(constant, str) and constant:
            return constant
        return None

    def build(self) -> PlanResources:
        order = ("azurerm_user_assigned_identity", "azurerm_dns_zone", "azurerm_kubernetes_cluster",
                 "azurerm_role_definition", "azurerm_role_assignment", "azapi_resource", "azapi_update_resource",
                 "azurerm_federated_identity_credential", *_SCALE_SETS)
        for kind in order:
            for address, resource in self.values.items():
                if resource.get("type") == kind and resource.get("mode", "managed") == "managed":
                    handler = self._scale_set if kind in _SCALE_SETS else getattr(self, f"_{kind}")
                    handler(address, resource)
        return self.out

    # -- values ------------------------------------------------------------------------------------

    def value(self, address: str, attribute: str) -> Any:
        """A resource's attribute (`name`, `kubelet_identity[0].object_id`): planned, else from its configuration
        expression, else what Azure computes from known arguments, else a placeholder naming it."""
        key = (address, attribute)
        if key in self._resolving:  # a reference cycle (only in a malformed plan): stop with a placeholder
            return shapes.unknown(f"{address}.{attribute}")
        self._resolving.add(key)
        try:
            return self._value(address, attribute)
        finally:
            self._resolving.discard(key)

    def _value(self, address: str, attribute: str) -> Any:
        resource = self._planned(address)
        known = _dig(resource.get("values") or {}, attribute)
        if known is not None:
            return known
        expression = _dig_expression((self.config.get(_base(address)) or {}).get("expressions") or {}, attribute)
        if expression is not None:
            if "constant_value" in expression:
                return expression["constant_value"]
            resolved = self._expression(expression, _module_of(address), f"{address}.{attribute}")
            if resolved is not None:
                return resolved
        computed = self._computed(address, attribute)
        if computed is not None:
            return computed
        return shapes.unknown(f"{address}.{attribute}")

    def _planned(self, address: str) -> dict[str, Any]:
        if address in self.values:
            return self.values[address]
        instances = self.by_base.get(_base(address)) or []
        return self.values[instances[0]] if instances else {}

    def _expression(self, expression: dict[str, Any], module: str, where: str) -> Any:
        """A configuration expression's value from its references. One reference is the value itself; several
        (`"${a.id}/${b.name}"`, a function of them) cannot be put together from the JSON: not resolvable."""
        references = [r for r in expression.get("references") or []
                      if not r.startswith(("count.", "each.", "path.", "terraform.", "self."))]
        direct = [r for r in references if not any(o != r and o.startswith((r + ".", r + "[")) for o in references)]
        if not direct:
            return None
        if len(direct) > 1:
            return shapes.unresolved(f"{where} = an expression of {', '.join(direct)}")
        value = self._reference(direct[0], module)
        if value is None:
            return shapes.unresolved(f"{where} = {direct[0]}")
        return value

    def _reference(self, reference: str, module: str) -> Any:
        """One reference, in the module (prefix) whose configuration holds it."""
        if reference.startswith("var."):
            name, rest = _head_and_rest(reference[4:])
            value = self._variable(name, module)
            return _dig(value, rest) if rest and not shapes.is_placeholder(value) else value
        if reference.startswith("local."):
            return None  # `terraform show -json` does not write locals' expressions
        if reference.startswith("module."):  # only a module's outputs can be referenced from outside it
            match = re.match(r"module\.([^.\[]+)(?:\[[^\]]*\])?\.(.+)", reference)
            if match is None:
                return None
            output, rest = _head_and_rest(match.group(2))
            value = self._output(f"{module}module.{match.group(1)}.", output)
            return _dig(value, rest) if rest and value is not None and not shapes.is_placeholder(value) else value
        _child, head, attribute = _split_reference(reference)
        if not attribute:
            return None  # a whole resource: its attributes come as references of their own
        return self.value(module + head, attribute)

    def _variable(self, name: str, module: str) -> Any:
        if not module:
            return self.variables.get(name)
        call = self.calls.get(_base(module)) or {}
        expression = (call.get("expressions") or {}).get(name)
        if isinstance(expression, dict):
            if "constant_value" in expression:
                return expression["constant_value"]
            parent = module[: module.rstrip(".").rfind("module.")] if module.count("module.") > 1 else ""
            return self._expression(expression, parent, f"{module}var.{name}")
        return (((call.get("module") or {}).get("variables") or {}).get(name) or {}).get("default")

    def _output(self, module: str, name: str) -> Any:
        call = self.calls.get(_base(module)) or {}
        output = (((call.get("module") or {}).get("outputs") or {}).get(name) or {}).get("expression")
        if not isinstance(output, dict):
            return None
        if "constant_value" in output:
            return output["constant_value"]
        return self._expression(output, module, f"{module}output.{name}")

    def _known(self, address: str, attribute: str) -> str | None:
        value = self.value(address, attribute)
        return value if isinstance(value, str) and value and not shapes.is_placeholder(value) else None

    def _computed(self, address: str, attribute: str) -> Any:
        """Values Azure derives from known arguments: ids, the subscription, built-in role definitions."""
        kind = (self._planned(address).get("type") or (self.config.get(_base(address)) or {}).get("type")
                or _split_reference(address)[1].removeprefix("data.").split(".")[0])
        subscription = self.subscription
        if kind in ("azurerm_client_config", "azurerm_subscription") and attribute in ("subscription_id", "id"):
            return subscription if attribute == "subscription_id" or kind == "azurerm_client_config" else \
                f"/subscriptions/{subscription}"
        if kind == "azurerm_role_definition" and attribute in ("id", "role_definition_resource_id"):
            # a data source names a role (a built-in's GUID is the same everywhere); a managed one declares its GUID
            guid = self._known(address, "role_definition_id")
            name = self._known(address, "name")
            if guid:
                return shapes.role_definition_id(subscription, guid)
            if name and address.split(".")[0] == "data" or f".data.{kind}." in f".{address}":
                return shapes.role_definition_id(subscription, name) if name and name.lower() in shapes.ROLE_BY_NAME \
                    else None
            return None
        if kind == "azurerm_kubernetes_cluster" and attribute in ("node_resource_group", "node_resource_group_id"):
            group = self._known(address, "node_resource_group") if attribute == "node_resource_group_id" else None
            if group is None:
                name, rg, location = (self._known(address, a) for a in ("name", "resource_group_name", "location"))
                if not (name and rg and location):
                    return None
                group = f"MC_{rg}_{name}_{location.replace(' ', '').lower()}"  # AKS's default node resource group
            return group if attribute == "node_resource_group" else f"/subscriptions/{subscription}/resourceGroups/{group}"
        if attribute != "id":
            return None
        return self._computed_id(address, kind, subscription)

    def _computed_id(self, address: str, kind: str, subscription: str) -> str | None:
        name = self._known(address, "name")
        if kind == "azurerm_resource_group":
            return f"/subscriptions/{subscription}/resourceGroups/{name}" if name else None
        if kind == "azurerm_subscription":
            return f"/subscriptions/{subscription}"
        if kind in ("azurerm_federated_identity_credential",):
            parent = self._known(address, "parent_id")
            return f"{parent}/federatedIdentityCredentials/{name}" if parent and name else None
        if kind == "azurerm_kubernetes_cluster_node_pool":
            cluster = self._known(address, "kubernetes_cluster_id")
            return f"{cluster}/agentPools/{name}" if cluster and name else None
        group = self._known(address, "resource_group_name")
        if not (name and group):
            return None
        prefix = f"/subscriptions/{subscription}/resourceGroups/{group}/providers"
        if kind in _RECORD_TYPES:
            zone = self._known(address, "zone_name")
            return f"{prefix}/Microsoft.Network/dnszones/{zone}/{_RECORD_TYPES[kind]}/{name}" if zone else None
        if kind == "azurerm_subnet":
            network = self._known(address, "virtual_network_name")
            return f"{prefix}/Microsoft.Network/virtualNetworks/{network}/subnets/{name}" if network else None
        if kind in ARM_TYPES:
            return f"{prefix}/{ARM_TYPES[kind]}/{name}"
        # A resource type aksid has no table entry for: still a resource inside that group, which is what the
        # checks need to know (it is not the group, the subscription or the zone, and holds no zone).
        return f"{prefix}/{kind}/{name}"

    def _locate(self, arm_id: str, address: str) -> None:
        self.out.sources[arm_id.lower()] = self._place(address)

    def _place(self, address: str) -> dict[str, Any]:
        needle = next((n for n in (f'"address": "{address}"', f'"address":"{address}"') if n in self.text), None)
        line = self.text[: self.text.find(needle)].count("\n") + 1 if needle else None
        return {"file": str(self.path), "line": line, "address": address}

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
        """Kept whatever is unknown: the scope, principal or role stay placeholders the checks judge on what is
        known (a role no allowance covers is a finding at any scope)."""
        scope, principal = self.value(address, "scope"), self.value(address, "principal_id")
        role = self._known(address, "role_definition_id") or self._known(address, "role_definition_name")
        if role:
            definition = shapes.role_definition_id(self.subscription, role)
        else:
            definition = self.value(address, "role_definition_id")
            if not unknown_until_apply(definition):  # only a role a resource of the plan defines can be named
                definition = shapes.unresolved(f"{address}.role_definition_id / role_definition_name")
        assignment = shapes.role_assignment(address, str(scope), str(definition), str(principal))
        assignment["properties"]["aksidSource"] = address
        self.out.resources.append(assignment)
        self._locate(assignment["id"], address)

    def _azurerm_role_definition(self, address: str, resource: dict[str, Any]) -> None:
        """A custom role: what it allows decides whether holding it writes the zone (RBAC-003)."""
        permissions = [{"actions": p.get("actions") or [], "notActions": p.get("not_actions") or [],
                        "dataActions": p.get("data_actions") or [], "notDataActions": p.get("not_data_actions") or []}
                       for p in (resource.get("values") or {}).get("permissions") or [] if isinstance(p, dict)]
        arm_id = self.value(address, "role_definition_resource_id")
        self.out.resources.append({"id": arm_id, "name": self.value(address, "name"),
                                   "type": "Microsoft.Authorization/roleDefinitions",
                                   "properties": {"roleName": self.value(address, "name"), "type": "CustomRole",
                                                  "permissions": permissions}})
        self._locate(str(arm_id), address)

    def _azurerm_kubernetes_cluster(self, address: str, resource: dict[str, Any]) -> None:
        values = resource.get("values") or {}
        arm_id = self.value(address, "id")
        network = (values.get("network_profile") or [{}])[0] or {}
        cluster = {
            "id": arm_id, "name": self.value(address, "name"), "type": "Microsoft.ContainerService/ManagedClusters",
            "identity": {"type": ((values.get("identity") or [{}])[0] or {}).get("type") or "SystemAssigned",
                         "principalId": self.value(address, "identity[0].principal_id")},
            "properties": {
                "identityProfile": {"kubeletidentity": {
                    "clientId": self.value(address, "kubelet_identity[0].client_id"),
                    "objectId": self.value(address, "kubelet_identity[0].object_id"),
                    "resourceId": self.value(address, "kubelet_identity[0].user_assigned_identity_id")}},
                "networkProfile": {"networkPlugin": network.get("network_plugin") or "kubenet",
                                   "networkPluginMode": network.get("network_plugin_mode")},
                "oidcIssuerProfile": {"enabled": bool(values.get("oidc_issuer_enabled")),
                                      "issuerURL": self.value(address, "oidc_issuer_url")},
                "securityProfile": {"workloadIdentity": {"enabled": bool(values.get("workload_identity_enabled"))}},
                "nodeResourceGroup": self.value(address, "node_resource_group"),
            },
            # build.py drops the note when an azapi body of the plan declares the profile
            shapes.NOT_DECLARED: {"podIdentityProfile": POD_IDENTITY_NOT_IN_AZURERM.format(address=address)},
        }
        self.out.resources.append(cluster)
        self._locate(arm_id, address)

    def _azapi_resource(self, address: str, resource: dict[str, Any]) -> None:
        """What azurerm cannot express: the cluster's podIdentityProfile, in an azapi body."""
        values = resource.get("values") or {}
        if not str(values.get("type", "")).lower().startswith("microsoft.containerservice/managedclusters"):
            return
        body = values.get("body")
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                body = {}
        profile = ((body or {}).get("properties") or {}).get("podIdentityProfile") if isinstance(body, dict) else None
        if profile is not None:
            self._fill_identities(address, profile)
            self.out.pod_identity_profiles.append({"profile": profile, "address": address, "place": self._place(address)})

    def _fill_identities(self, address: str, profile: dict[str, Any]) -> None:
        """Identity fields unknown until apply are those of the identity the body references (jsonencode hides which
        field came from where; an identity's id, client id and principal id are all it can mean)."""
        references = ((self.config.get(_base(address)) or {}).get("expressions") or {}).get("body") or {}
        references = references.get("references") or [] if isinstance(references, dict) else []
        identity = next((_module_of(r) + _split_reference(r)[1] for r in references
                         if "azurerm_user_assigned_identity." in r), None)
        for entry in profile.get("userAssignedIdentities") or []:
            ref = entry.setdefault("identity", {})
            for field_name, attribute in (("resourceId", "id"), ("clientId", "client_id"), ("objectId", "principal_id")):
                if ref.get(field_name) is None and identity is not None:
                    ref[field_name] = self.value(identity, attribute)
            entry.setdefault("provisioningState", "Assigned")  # what the add-on reports once it applied the profile

    _azapi_update_resource = _azapi_resource

    def _scale_set(self, address: str, resource: dict[str, Any]) -> None:
        """A virtual machine scale set and the user-assigned identities it carries (`identity { identity_ids }`): IMDS
        hands them to whatever runs on its VMs (MIG-002). Ids unknown until apply are the referenced identities'."""
        arm_id = self.value(address, "id")
        identity = ((resource.get("values") or {}).get("identity") or [{}])[0] or {}
        assigned = {str(i): {} for i in self._id_list(address, "identity[0].identity_ids")}
        self.out.resources.append({
            "id": arm_id, "name": self.value(address, "name"), "type": "Microsoft.Compute/virtualMachineScaleSets",
            "tags": (resource.get("values") or {}).get("tags") or {},
            "identity": {"type": identity.get("type") or ("UserAssigned" if assigned else "None"),
                         "userAssignedIdentities": assigned},
            "properties": {}})
        self._locate(arm_id, address)

    def _id_list(self, address: str, attribute: str) -> list[Any]:
        """A list of ids (`identity_ids`): as planned, else one per id its expression references (`[a.id, b.id]`),
        else one placeholder naming the list."""
        planned = _dig((self._planned(address).get("values") or {}), attribute)
        if isinstance(planned, list) and all(isinstance(i, str) and i for i in planned):
            return planned
        expression = _dig_expression((self.config.get(_base(address)) or {}).get("expressions") or {}, attribute)
        if expression is None:
            return [] if planned in (None, []) else [shapes.unknown(f"{address}.{attribute}")]
        if "constant_value" in expression:
            return list(expression["constant_value"] or [])
        references = expression.get("references") or []
        direct = [r for r in references if not any(o != r and o.startswith((r + ".", r + "[")) for o in references)]
        found: list[Any] = []
        for reference in direct:
            value = self._reference(reference, _module_of(address))
            if isinstance(value, list):
                found += value
            else:
                found.append(value if value is not None else shapes.unresolved(f"{address}.{attribute} = {reference}"))
        return found or [shapes.unresolved(f"{address}.{attribute}")]

    def _azurerm_federated_identity_credential(self, address: str, resource: dict[str, Any]) -> None:
        """Workload identity's trust: the issuer is usually the cluster's oidc_issuer_url by reference, which stays a
        placeholder naming it, as the cluster's issuerURL does, so the two compare equal."""
        parent, name = self.value(address, "parent_id"), self.value(address, "name")
        if shapes.is_placeholder(parent):
            self.out.problems.append(f"{address}: its parent_id (the identity) cannot be resolved from the plan")
            return
        audiences = self.value(address, "audience")
        credential = {"id": f"{parent}/federatedIdentityCredentials/{name}", "name": name,
                      "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
                      "properties": {"issuer": self.value(address, "issuer"), "subject": self.value(address, "subject"),
                                     "audiences": audiences if isinstance(audiences, list) else [audiences]}}
        self.out.resources.append(credential)
        self._locate(credential["id"], address)


def _head_and_rest(path: str) -> tuple[str, str]:
    """`name[0].x` -> ("name", "[0].x"): a variable's or output's name and the path inside its value."""
    match = re.match(r"([^.\[]+)\.?(.*)", path)
    return (match.group(1), match.group(2)) if match else (path, "")


def _dig(values: Any, path: str) -> Any:
    """`kubelet_identity[0].object_id` inside planned values; None where any step is unknown or absent."""
    node = values
    for step in _STEP.findall(path):
        if step.startswith("["):
            key = step[1:-1].strip('"')
            if isinstance(node, list):
                node = node[int(key)] if key.isdigit() and len(node) > int(key) else None
            else:
                node = node.get(key) if isinstance(node, dict) else None
        else:
            node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def _dig_expression(expressions: dict[str, Any], path: str) -> dict[str, Any] | None:
    """A nested block's expression: `kubelet_identity[0].object_id` -> expressions["kubelet_identity"][0]["object_id"]
    (the configuration writes blocks as lists of objects of expressions)."""
    node: Any = expressions
    for step in _STEP.findall(path):
        if step.startswith("["):
            if not isinstance(node, list) or not step[1:-1].isdigit() or len(node) <= int(step[1:-1]):
                return None
            node = node[int(step[1:-1])]
        elif isinstance(node, list) and len(node) == 1 and isinstance(node[0], dict):
            node = node[0].get(step)  # a block written without its index
        else:
            node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return None
    return node if isinstance(node, dict) and ("references" in node or "constant_value" in node) else None


def _walk(module: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(module.get("resources") or [])
    for child in module.get("child_modules") or []:
        found += _walk(child)
    return found
