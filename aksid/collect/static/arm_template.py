"""An ARM template (as Bicep compiles it) turned into ARM resources, with its expressions evaluated as far as
the template allows: parameters, variables, resourceId/subscriptionResourceId, concat, format, guid, and
`reference(...).principalId`, which stays a placeholder naming the identity until deployment."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.collect.static import arm_shapes as shapes
from aksid.collect.static.errors import StaticInputError, read_json_input
from aksid.collect.static.plan import PlanResources

_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[(),.\[\]]))")


@dataclass
class _Context:
    subscription: str
    group: str
    parameters: dict[str, Any]
    variables: dict[str, Any]


def read_template(path: Path, subscription: str, group: str, tenant: str | None) -> PlanResources:
    text, template = read_json_input(path, "the ARM template", "an ARM template, e.g. `bicep build` output")
    if not isinstance(template, dict) or "resources" not in template:
        raise StaticInputError(f"{path} is not an ARM template (no `resources`)")
    parameters = {k: (v or {}).get("defaultValue") for k, v in (template.get("parameters") or {}).items()}
    context = _Context(subscription, group, parameters, {})
    context.variables = {k: evaluate(v, context) for k, v in (template.get("variables") or {}).items()}
    out = PlanResources()
    resources = template["resources"]
    for index, resource in enumerate(resources.values() if isinstance(resources, dict) else resources):
        _add(out, resource, context, tenant, f"{path.name}#resources[{index}]", path, text)
    return out


def _add(out: PlanResources, resource: dict[str, Any], context: _Context, tenant: str | None, where: str,
         path: Path, text: str) -> None:
    kind = str(resource.get("type", "")).lower()
    name = evaluate(resource.get("name"), context)
    props = evaluate(resource.get("properties") or {}, context)
    if kind == "microsoft.managedidentity/userassignedidentities":
        arm_id = _resource_id(context, "Microsoft.ManagedIdentity/userAssignedIdentities", name)
        out.resources.append(shapes.identity(arm_id, name, _reference_of(arm_id, "principalId"),
                                             _reference_of(arm_id, "clientId"), tenant))
    elif kind == "microsoft.network/dnszones":
        arm_id = _resource_id(context, "Microsoft.Network/dnszones", name)
        out.resources.append(shapes.zone(arm_id, name))
    elif kind == "microsoft.authorization/roleassignments":
        scope = _absolute_scope(evaluate(resource.get("scope"), context), context)
        assignment = shapes.role_assignment(f"{where}:{name}", str(scope), str(props.get("roleDefinitionId")),
                                            str(props.get("principalId")))
        out.resources.append(assignment)
        arm_id = assignment["id"]
    elif kind == "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials":
        identity, _, credential = str(name).partition("/")  # a child resource's name is `<identity>/<credential>`
        arm_id = (f"{_resource_id(context, 'Microsoft.ManagedIdentity/userAssignedIdentities', identity)}"
                  f"/federatedIdentityCredentials/{credential}")
        out.resources.append({"id": arm_id, "name": credential, "type": resource.get("type"),
                              "properties": {"issuer": props.get("issuer"), "subject": props.get("subject"),
                                             "audiences": props.get("audiences") or []}})
    elif kind == "microsoft.containerservice/managedclusters" and props.get("podIdentityProfile") is not None:
        out.pod_identity_profiles.append({"profile": props["podIdentityProfile"], "address": where})
        return
    else:
        return
    needle = json.dumps(resource.get("name"))
    line = text[: text.find(needle)].count("\n") + 1 if needle in text else None
    out.sources[arm_id.lower()] = {"file": str(path), "line": line, "address": f"{where} ({resource.get('type')} {name})"}


def _absolute_scope(scope: Any, context: _Context) -> str:
    """An extension resource's `scope`: Bicep writes it relative (`Microsoft.Network/dnsZones/x`); none: the group."""
    group = f"/subscriptions/{context.subscription}/resourceGroups/{context.group}"
    if not scope:
        return group
    return str(scope) if str(scope).startswith("/") else f"{group}/providers/{scope}"


def _resource_id(context: _Context, resource_type: str, name: str) -> str:
    return f"/subscriptions/{context.subscription}/resourceGroups/{context.group}/providers/{resource_type}/{name}"


def _reference_of(resource_id: str, attribute: str) -> str:
    return shapes.unknown(f"reference({resource_id}).{attribute}")


def evaluate(value: Any, context: _Context) -> Any:
    """Template values: `[expr]` strings evaluated, containers walked, everything else as it is."""
    if isinstance(value, dict):
        return {k: evaluate(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, context) for v in value]
    if isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[["):
        tokens = [m for m in _TOKEN.finditer(value[1:-1]) if m.group(0).strip()]
        result, _rest = _expression(tokens, context)
        return result
    return value


def _expression(tokens: list[re.Match[str]], context: _Context) -> tuple[Any, list[re.Match[str]]]:
    head, rest = tokens[0], tokens[1:]
    if head.group("string") is not None:
        value: Any = head.group("string")[1:-1].replace("''", "'")
    elif head.group("number") is not None:
        value = int(head.group("number"))
    else:
        name = head.group("name").lower()
        arguments: list[Any] = []
        rest = rest[1:]  # "("
        while rest and rest[0].group("op") != ")":
            argument, rest = _expression(rest, context)
            arguments.append(argument)
            if rest and rest[0].group("op") == ",":
                rest = rest[1:]
        rest = rest[1:]  # ")"
        value = _call(name, arguments, context)
    while rest and rest[0].group("op") in (".", "["):
        if rest[0].group("op") == ".":
            value, rest = _member(value, rest[1].group("name")), rest[2:]
        else:
            index, rest = _expression(rest[1:], context)
            value, rest = _member(value, index), rest[1:]
    return value, rest


def _member(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int):
        return value[key]
    if shapes.is_unknown(value) or isinstance(value, _Reference):
        return shapes.unknown(f"reference({value.resource_id}).{key}") if isinstance(value, _Reference) else value
    return None


@dataclass(frozen=True)
class _Reference:
    resource_id: str


def _call(name: str, arguments: list[Any], context: _Context) -> Any:
    if name == "parameters":
        return context.parameters.get(arguments[0])
    if name == "variables":
        return context.variables.get(arguments[0])
    if name == "resourceid":  # resourceId([subscriptionId], [resourceGroupName], type, names...)
        scope = [str(a) for a in arguments[: next((i for i, a in enumerate(arguments) if "/" in str(a)), 0)]]
        resource_type, names = arguments[len(scope)], arguments[len(scope) + 1:]
        inner = _Context(scope[0] if len(scope) == 2 else context.subscription, scope[-1] if scope else context.group,
                         context.parameters, context.variables)
        return _resource_id(inner, resource_type, "/".join(str(n) for n in names))
    if name == "subscriptionresourceid":
        return f"/subscriptions/{context.subscription}/providers/{arguments[0]}/{'/'.join(str(a) for a in arguments[1:])}"
    if name == "subscription":
        return {"subscriptionId": context.subscription, "id": f"/subscriptions/{context.subscription}"}
    if name == "resourcegroup":
        return {"name": context.group, "id": f"/subscriptions/{context.subscription}/resourceGroups/{context.group}"}
    if name == "reference":
        target = str(arguments[0])
        return _Reference(target if target.startswith("/") else _resource_id(
            context, "Microsoft.ManagedIdentity/userAssignedIdentities", target))
    if name == "concat":
        return "".join(str(a) for a in arguments)
    if name == "format":
        return re.sub(r"\{(\d+)\}", lambda m: str(arguments[1 + int(m.group(1))]), str(arguments[0]))
    if name == "guid":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(str(a) for a in arguments)))
    return shapes.unknown(f"{name}(...)")  # a function aksid does not evaluate: the value stays unknown
