"""An ARM template (hand-written, or as `bicep build` writes it) turned into the ARM resources it deploys.

The template is evaluated as ARM would with its default parameter values (or those of a parameters file):
parameters, variables (incl. `copy`), resource `condition` and `copy`, child resources, `existing` references,
nested `Microsoft.Resources/deployments` (inner and outer expression scope, their own parameters, resource group
and subscription), and symbolic-name templates (`languageVersion` 2.0). Expressions are in `arm_expressions`.
What only the deployment knows (`reference(...)` of a resource's runtime properties, a parameter without a value)
becomes a placeholder: one that names a runtime value (`(known after apply: reference(<id>).properties.principalId)`)
compares equal to every other reference to it; any other is `(not resolvable from the template: ...)`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.collect.static import arm_shapes as shapes
from aksid.collect.static.arm_expressions import (
    ResourceRef,
    Scope,
    Unknown,
    copy_variables,
    evaluate,
    is_expression,
    resource_id,
)
from aksid.collect.static.errors import StaticInputError, static_input_error
from aksid.collect.static.plan import PlanResources
from aksid.userfiles import UserFileError, parse_json, read_text

_DEPLOYMENT = "microsoft.resources/deployments"
_SCHEMA_SCOPES = {"subscriptiondeploymenttemplate": "subscription", "managementgroupdeploymenttemplate": "subscription",
                  "tenantdeploymenttemplate": "subscription"}


def read_template(path: Path, subscription: str, group: str, tenant: str | None,
                  parameter_values: dict[str, Any] | None = None) -> PlanResources:
    text, template = _read(path)
    if not isinstance(template, dict) or "resources" not in template:
        raise StaticInputError(f"{path} is not an ARM template (no `resources`)")
    reader = _Reader(path, text)
    scope = Scope(subscription, None if _deploys_at_subscription(template) else group, tenant)
    reader.deploy(template, scope, parameter_values or {}, "")
    return reader.out


def read_parameters(path: Path) -> dict[str, Any]:
    """A deployment parameters file (`{"parameters": {"name": {"value": ...}}}`): its values by name."""
    _text, document = _read(path, what="the ARM parameters file")
    parameters = (document or {}).get("parameters") if isinstance(document, dict) else None
    if not isinstance(parameters, dict):
        raise StaticInputError(f"{path} is not an ARM parameters file (no `parameters` object)")
    return {k: v.get("value") for k, v in parameters.items() if isinstance(v, dict) and "value" in v}


def _read(path: Path, what: str = "the ARM template") -> tuple[str, Any]:
    """ARM accepts `//` and `/* */` comments in templates (Bicep-era tooling writes them); JSON does not."""
    try:
        text = read_text(path, what)
    except UserFileError as exc:
        raise StaticInputError(str(exc)) from None
    try:
        return text, parse_json(text, path, what)
    except UserFileError:
        pass
    try:
        return text, parse_json(_without_comments(text), path, what)
    except UserFileError as exc:
        raise static_input_error(exc, "ARM reads JSON (comments allowed), as `bicep build` writes it") from None


def _without_comments(text: str) -> str:
    """Comments out, strings kept; line breaks kept so positions still match the file's lines."""
    out, i, n = [], 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i:end + 1])
            i = end + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            comment = text[i: n if end < 0 else end + 2]
            out.append("\n" * comment.count("\n"))
            i = n if end < 0 else end + 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _deploys_at_subscription(template: dict[str, Any]) -> bool:
    schema = str(template.get("$schema", "")).lower()
    return any(key in schema for key in _SCHEMA_SCOPES)


@dataclass
class _Declared:
    """One resource the template deploys, its expressions evaluated."""

    type: str
    name: Any
    id: str
    body: dict[str, Any]
    where: str  # its path in the template: `resources[3].properties.template.resources[0]`
    line: int | None
    raw: dict[str, Any]  # as written, for what is evaluated late (an extension resource's scope)


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text
        self.out = PlanResources()
        self._cursor = 0

    # -- deployments -------------------------------------------------------------------------------

    def deploy(self, template: dict[str, Any], scope: Scope, given: dict[str, Any], where: str) -> None:
        scope.parameters = self._parameters(template, scope, given)
        scope.raw_variables = copy_variables(template.get("variables") or {})
        resources = template.get("resources") or []
        entries = list(resources.items()) if isinstance(resources, dict) else list(enumerate(resources))
        if isinstance(resources, dict):  # symbolic names: every resource's id is known before any is read
            for symbol, resource in entries:
                if isinstance(resource, dict):
                    scope.symbols[symbol] = self._info(resource, scope)
        for key, resource in entries:
            if isinstance(resource, dict):
                label = f"{where}resources.{key}" if isinstance(key, str) else f"{where}resources[{key}]"
                self._resource(resource, scope, label, parent=None)

    def _parameters(self, template: dict[str, Any], scope: Scope, given: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        declared = template.get("parameters") or {}
        early = scope.child(parameters=values)
        for name, spec in declared.items():
            spec = spec if isinstance(spec, dict) else {}
            if name in given:
                values[name] = given[name]
            elif "defaultValue" in spec:
                values[name] = evaluate(spec["defaultValue"], early)  # a default may use earlier parameters
            elif spec.get("nullable") or self._nullable_type(template, spec):
                values[name] = None  # Bicep's `param x T?`: left out, it is null
            else:
                values[name] = Unknown(f"parameters('{name}') has no default value (give it in a parameters file)")
        return values

    @staticmethod
    def _nullable_type(template: dict[str, Any], spec: dict[str, Any]) -> bool:
        """A parameter of a user-defined type (`$ref: #/definitions/x`) that the type declares nullable."""
        ref = str(spec.get("$ref") or "")
        if not ref.startswith("#/definitions/"):
            return False
        definition = (template.get("definitions") or {}).get(ref.rsplit("/", 1)[-1]) or {}
        return bool(definition.get("nullable")) if isinstance(definition, dict) else False

    def _info(self, resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
        name = evaluate(resource.get("name"), scope)
        kind = str(resource.get("type", ""))
        return {"id": self._id(kind, name, resource, scope), "name": name, "type": kind}

    def _id(self, kind: str, name: Any, resource: dict[str, Any], scope: Scope) -> str:
        if isinstance(name, Unknown):
            return shapes.unresolved(f"the id of a {kind} named {name.what}", "template")
        names = str(name).split("/")
        target = self._extension_scope(resource, scope)
        if target is not None:
            namespace, *types = kind.split("/")
            return f"{target.rstrip('/')}/providers/{namespace}" + "".join(
                f"/{t}/{n}" for t, n in zip(types, names, strict=False))
        subscription = str(resource.get("subscriptionId") or scope.subscription)
        group = resource.get("resourceGroup") or scope.group
        return resource_id(evaluate(subscription, scope), evaluate(group, scope), kind, names)

    @staticmethod
    def _extension_scope(resource: dict[str, Any], scope: Scope) -> Any:
        """An extension resource's `scope` as an absolute id (Bicep writes it relative: `Microsoft.Network/dnsZones/x`,
        or the symbolic name of a resource in a 2.0 template); None when it has none."""
        if not resource.get("scope"):
            return None
        raw = resource["scope"]
        if isinstance(raw, str) and is_expression(raw) is False and raw in scope.symbols:
            return scope.symbols[raw]["id"]
        target = evaluate(raw, scope)
        if isinstance(target, Unknown):
            return _placeholder(target)
        if isinstance(target, str) and target in scope.symbols:
            return scope.symbols[target]["id"]
        if isinstance(target, str) and target and not target.startswith("/"):
            parts = target.split("/")
            return resource_id(scope.subscription, scope.group, "/".join(parts[:2] + parts[3::2]), parts[2::2])
        return target if isinstance(target, str) and target else None

    # -- resources ---------------------------------------------------------------------------------

    def _resource(self, resource: dict[str, Any], scope: Scope, where: str, parent: _Declared | None) -> None:
        line = self._line_of(resource)
        copy = resource.get("copy")
        if isinstance(copy, dict):
            count = evaluate(copy.get("count"), scope)
            if not isinstance(count, int):
                count = 1  # an unknown count: judge one instance, whose copyIndex() stays unknown
                iterations: list[Scope] = [scope.child(copy_index={**scope.copy_index})]
            else:
                iterations = [scope.child(copy_index={**scope.copy_index, copy.get("name"): i, None: i})
                              for i in range(count)]
            for index, each in enumerate(iterations):
                self._instance(resource, each, f"{where}[copy {index}]", parent, line)
            return
        self._instance(resource, scope, where, parent, line)

    def _instance(self, resource: dict[str, Any], scope: Scope, where: str, parent: _Declared | None,
                  line: int | None) -> None:
        condition = evaluate(resource.get("condition", True), scope)
        if condition is False or (isinstance(condition, str) and condition.lower() == "false"):
            return  # not deployed with these parameter values
        kind, name = str(resource.get("type", "")), evaluate(resource.get("name"), scope)
        if parent is not None and "." not in kind.split("/")[0]:
            # a child resource (no `Namespace.Provider/` of its own): its type and name are relative to the parent
            kind = f"{parent.type}/{kind}"
            name = f"{parent.name}/{name}" if not isinstance(name, Unknown) else name
        if resource.get("existing"):
            return  # a reference to a resource deployed elsewhere: it names, it does not deploy
        if kind.lower() == _DEPLOYMENT:
            self._nested(resource, scope, where)
            return
        body = {k: evaluate(v, scope) for k, v in resource.items()
                if k not in ("resources", "copy", "condition", "dependsOn", "type", "name", "apiVersion")}
        declared = _Declared(kind, name, self._id(kind, name, resource, scope), body, where, line, resource)
        self._add(declared, scope)
        for index, child in enumerate(resource.get("resources") or []):
            if isinstance(child, dict):
                self._resource(child, scope, f"{where}.resources[{index}]", declared)

    def _nested(self, resource: dict[str, Any], scope: Scope, where: str) -> None:
        """A nested deployment: its template runs in its own resource group / subscription; with `inner` scope it
        sees only its own parameters, with `outer` (the default) the parent's parameters and variables."""
        properties = resource.get("properties") or {}
        inner_template = properties.get("template")
        if not isinstance(inner_template, dict):
            return  # a templateLink: another file, which aksid can be given on its own
        group = evaluate(resource.get("resourceGroup"), scope) if resource.get("resourceGroup") else scope.group
        subscription = evaluate(resource.get("subscriptionId"), scope) if resource.get("subscriptionId") \
            else scope.subscription
        if isinstance(group, Unknown) or isinstance(subscription, Unknown):
            group = scope.group if isinstance(group, Unknown) else group
            subscription = scope.subscription if isinstance(subscription, Unknown) else subscription
        inner_scope = (str((properties.get("expressionEvaluationOptions") or {}).get("scope", "outer")).lower() == "inner"
                       or inner_template.get("languageVersion") is not None)
        name = evaluate(resource.get("name"), scope)
        if inner_scope:
            given = {k: evaluate(v.get("value"), scope) for k, v in (properties.get("parameters") or {}).items()
                     if isinstance(v, dict) and "value" in v}
            child = Scope(str(subscription), group if not _deploys_at_subscription(inner_template) else None,
                          scope.tenant, deployment_name=str(name))
            self.deploy(inner_template, child, given, f"{where}.properties.template.")
        else:
            child = scope.child(subscription=str(subscription), group=group, deployment_name=str(name))
            for index, inner in enumerate(inner_template.get("resources") or []):
                if isinstance(inner, dict):
                    self._resource(inner, child, f"{where}.properties.template.resources[{index}]", None)

    # -- what aksid reads --------------------------------------------------------------------------

    def _add(self, declared: _Declared, scope: Scope) -> None:
        kind = declared.type.lower()
        props = declared.body.get("properties")
        props = props if isinstance(props, dict) else {}
        arm_id = declared.id
        if kind == "microsoft.managedidentity/userassignedidentities":
            resource = shapes.identity(arm_id, _text(declared.name), _runtime(arm_id, "properties.principalId"),
                                       _runtime(arm_id, "properties.clientId"), scope.tenant)
        elif kind == "microsoft.network/dnszones":
            resource = shapes.zone(arm_id, _text(declared.name))
        elif kind.endswith("/providers/roleassignments") or kind == "microsoft.authorization/roleassignments":
            resource = self._assignment(declared, props, scope)
            arm_id = resource["id"]
        elif kind == "microsoft.authorization/roledefinitions":
            resource = self._definition(declared, props, scope)
            arm_id = resource["id"]
        elif kind == "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials":
            resource = {"id": arm_id, "name": _text(declared.name).rsplit("/", 1)[-1], "type": declared.type,
                        "properties": {"issuer": _placeholder(props.get("issuer")),
                                       "subject": _placeholder(props.get("subject")),
                                       "audiences": _placeholder(props.get("audiences") or [])}}
        elif kind == "microsoft.containerservice/managedclusters":
            resource = self._cluster(declared, props)
            if isinstance(props.get("podIdentityProfile"), dict):
                self.out.pod_identity_profiles.append({"profile": _placeholder(props["podIdentityProfile"]),
                                                       "address": declared.where})
        elif kind == "microsoft.compute/virtualmachinescalesets":
            resource = self._scale_set(declared, scope)
        else:
            return
        self.out.resources.append(resource)
        self.out.sources[str(arm_id).lower()] = {"file": str(self.path), "line": declared.line,
                                                 "address": f"{declared.where} ({declared.type} {_text(declared.name)})"}

    def _assignment(self, declared: _Declared, props: dict[str, Any], scope: Scope) -> dict[str, Any]:
        if declared.type.lower().endswith("/providers/roleassignments"):
            # `<parent type>/providers/roleAssignments` named `<parent name>/Microsoft.Authorization/<guid>`
            parent_type = declared.type[: declared.type.lower().rfind("/providers/")]
            parent_names = _text(declared.name).split("/")[: parent_type.count("/")]
            assignment_scope = resource_id(scope.subscription, scope.group, parent_type, parent_names)
        else:  # its `scope` (an extension resource), else where its deployment goes
            assignment_scope = self._extension_scope(declared.raw, scope) or (
                f"/subscriptions/{scope.subscription}" + (f"/resourceGroups/{scope.group}" if scope.group else ""))
        definition = props.get("roleDefinitionId")
        definition = (shapes.role_definition_id(scope.subscription, definition) if isinstance(definition, str)
                      and not shapes.is_placeholder(definition) and definition else _placeholder(definition))
        assignment = shapes.role_assignment(f"{self.path.name}:{declared.where}", assignment_scope, str(definition),
                                            str(_placeholder(props.get("principalId"))))
        assignment["properties"]["principalType"] = props.get("principalType") or "ServicePrincipal"
        return assignment

    def _definition(self, declared: _Declared, props: dict[str, Any], scope: Scope) -> dict[str, Any]:
        """A custom role: what it allows decides whether holding it writes the zone (RBAC-003)."""
        guid = _text(declared.name)
        return {"id": shapes.role_definition_id(scope.subscription, guid), "name": guid,
                "type": "Microsoft.Authorization/roleDefinitions",
                "properties": {"roleName": _placeholder(props.get("roleName")), "type": "CustomRole",
                               "permissions": _placeholder(props.get("permissions") or [])}}

    def _cluster(self, declared: _Declared, props: dict[str, Any]) -> dict[str, Any]:
        """managedClusters as ARM returns it: what the template sets, and the runtime values by reference."""
        arm_id = declared.id
        identity = declared.body.get("identity") if isinstance(declared.body.get("identity"), dict) else {}
        profile = props.get("identityProfile") if isinstance(props.get("identityProfile"), dict) else {}
        kubelet = profile.get("kubeletidentity") if isinstance(profile.get("kubeletidentity"), dict) else {}
        kubelet_path = "properties.identityProfile.kubeletidentity"
        user_kubelet = kubelet.get("resourceId")
        if isinstance(user_kubelet, str) and not shapes.is_placeholder(user_kubelet):
            # a kubelet identity the template brings: its runtime ids are that identity's
            kubelet_ids = {"resourceId": user_kubelet, "clientId": _runtime(user_kubelet, "properties.clientId"),
                           "objectId": _runtime(user_kubelet, "properties.principalId")}
        else:
            kubelet_ids = {field: _runtime(arm_id, f"{kubelet_path}.{field}")
                           for field in ("resourceId", "clientId", "objectId")}
        oidc = props.get("oidcIssuerProfile") if isinstance(props.get("oidcIssuerProfile"), dict) else {}
        security = props.get("securityProfile") if isinstance(props.get("securityProfile"), dict) else {}
        workload = security.get("workloadIdentity") if isinstance(security.get("workloadIdentity"), dict) else {}
        network = props.get("networkProfile") if isinstance(props.get("networkProfile"), dict) else {}
        pools = props.get("agentPoolProfiles")
        properties = _placeholder({
            **{k: v for k, v in props.items() if k in ("podIdentityProfile", "nodeResourceGroup", "aadProfile")},
            "identityProfile": {"kubeletidentity": kubelet_ids},
            "networkProfile": {"networkPlugin": network.get("networkPlugin") or "kubenet",
                               "networkPluginMode": network.get("networkPluginMode"),
                               **({"podLinkLocalAccess": network["podLinkLocalAccess"]}
                                  if "podLinkLocalAccess" in network else {})},
            # the pools' names and IMDS restriction (MIG-002 reads them)
            "agentPoolProfiles": [{k: v for k, v in pool.items() if k in ("name", "mode", "osType", "podLinkLocalAccess")}
                                  for pool in pools if isinstance(pool, dict)] if isinstance(pools, list) else [],
            "oidcIssuerProfile": {"enabled": oidc.get("enabled") is True,
                                  "issuerURL": _runtime(arm_id, "properties.oidcIssuerProfile.issuerURL")},
            "securityProfile": {"workloadIdentity": {"enabled": workload.get("enabled") is True}},
        })
        cluster = {"id": arm_id, "name": _text(declared.name), "type": "Microsoft.ContainerService/ManagedClusters",
                   "identity": {"type": _placeholder(identity.get("type")) or "SystemAssigned",
                                "principalId": _runtime(arm_id, "identity.principalId"),
                                "userAssignedIdentities": _placeholder(identity.get("userAssignedIdentities"))},
                   "properties": properties}
        # ARM deploys a resource's properties as written (properties left out are reset to their defaults: pod
        # identity off), unless the template does not let anyone read them
        raw = declared.body.get("properties")
        if not isinstance(raw, dict) or ("podIdentityProfile" in raw and not isinstance(raw["podIdentityProfile"], dict)):
            properties.pop("podIdentityProfile", None)
            what = raw if not isinstance(raw, dict) else raw["podIdentityProfile"]
            cluster[shapes.NOT_DECLARED] = {"podIdentityProfile": f"{declared.where}: the cluster's "
                                     f"{'properties' if not isinstance(raw, dict) else 'podIdentityProfile'} cannot "
                                     f"be evaluated from the template ({_text(what)})"}
        return cluster

    @staticmethod
    def _scale_set(declared: _Declared, scope: Scope) -> dict[str, Any]:
        """A virtual machine scale set and the user-assigned identities it carries (IMDS hands them to whatever runs on
        its VMs, MIG-002). The identities' keys are expressions ARM evaluates (`[resourceId(...)]`), as are values."""
        identity = declared.body.get("identity") if isinstance(declared.body.get("identity"), dict) else {}
        listed = identity.get("userAssignedIdentities")
        assigned: dict[str, Any] = {}
        for key in listed if isinstance(listed, dict) else {}:
            resolved = evaluate(key, scope) if is_expression(key) else key
            arm_id = str(_placeholder(resolved))
            assigned[arm_id] = {"clientId": _runtime(arm_id, "properties.clientId"),
                                "principalId": _runtime(arm_id, "properties.principalId")}
        tags = declared.body.get("tags")
        return {"id": declared.id, "name": _text(declared.name), "type": "Microsoft.Compute/virtualMachineScaleSets",
                "tags": _placeholder(tags) if isinstance(tags, dict) else {},
                "identity": {"type": _placeholder(identity.get("type")) or "None",
                             "userAssignedIdentities": assigned},
                "properties": {}}

    def _line_of(self, resource: dict[str, Any]) -> int | None:
        """The line of a resource's `"type"`: found in document order (resources are read in that order)."""
        found = re.compile(r'"type"\s*:\s*' + re.escape(json.dumps(resource.get("type")))).search(self.text, self._cursor)
        if found is None:
            return None
        self._cursor = found.end()
        return self.text.count("\n", 0, found.start()) + 1


def _runtime(resource: str, path: str) -> str:
    """A value only the deployed resource has, named so every reference to it compares equal."""
    return shapes.unknown(f"reference({resource.lower()}).{path}")


def _text(value: Any) -> str:
    return str(_placeholder(value))


def _placeholder(value: Any) -> Any:
    """Evaluated values as the snapshot holds them: unknowns become placeholder strings."""
    if isinstance(value, ResourceRef):
        return shapes.unknown(f"reference({value.resource_id})")
    if isinstance(value, Unknown):
        return shapes.unknown(value.what) if value.comparable else shapes.unresolved(value.what, "template")
    if isinstance(value, dict):
        return {k: _placeholder(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholder(v) for v in value]
    return value

