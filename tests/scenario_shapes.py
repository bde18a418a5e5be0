"""Shape checks for scenario data: objects must read back as the official clients read them.

A plain helper module (not a test module). Two entry points:

- `assert_kube_objects_deserialize(objects)` — every built-in Kubernetes object goes through the
  `kubernetes` client's own list-response path (`ApiClient.deserialize(<json text>, "V1PodList",
  "application/json")`, as `CoreV1Api.list_pod_for_all_namespaces` does), one object per list so
  a failure names the object. The v37 models are strict pydantic models: a missing required field
  (`V1ContainerStatus.imageID`), a number where a string belongs (`capacity: {cpu: 2}`) or a
  string where a number belongs (`containerPort: "80"`) fails here as it would in a real client.
  Fields the models do not know are reported too (the client would drop them silently, so they
  are almost always typos). Custom resources only need apiVersion, kind and metadata.name.
- `assert_arm_resources_deserialize(resources)` — every ARM resource goes through the SDK model
  the collector's client uses (typespec `ManagedCluster`, msrest `Zone`/`RecordSet`/`Identity`/
  `RoleAssignment`/`RoleDefinition`), and must survive the round trip back to REST form with
  nothing dropped (`ManagedCluster(...).as_dict()` keeps `podIdentityProfile`); `id`, `name` and
  `type` must agree. The typespec model keeps raw JSON, so its keys are also checked against the
  declared fields and its primitive fields against their declared types.

Both collect every problem and raise one AssertionError listing them, each line naming the
object and the field path. `allow_unknown_fields=True` relaxes the unknown-field checks (for data
captured from a newer API than the installed clients know).

From a shell: `.venv/bin/python tests/scenario_shapes.py fixtures/scenarios/healthy.yaml`.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from kubernetes import client as kclient
from kubernetes.client import models as kmodels

# API groups served by kube-apiserver itself; any other group is a custom resource.
BUILTIN_GROUPS = frozenset({
    "", "apps", "batch", "autoscaling", "policy", "admissionregistration.k8s.io", "apiextensions.k8s.io",
    "apiregistration.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "certificates.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io", "rbac.authorization.k8s.io",
    "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io", "storagemigration.k8s.io",
})

_NATIVE = {"str", "int", "float", "bool", "bytes", "object", "datetime", "date", "bytearray", "decimal.Decimal"}


class _Problems(list[str]):
    def raise_if_any(self, what: str) -> None:
        if self:
            raise AssertionError(f"{len(self)} problem(s) in {what}:\n" + "\n".join(f"  - {p}" for p in self))


# --------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------

def assert_kube_objects_deserialize(objects: list[dict[str, Any]], *, allow_unknown_fields: bool = False) -> None:
    """Raise AssertionError unless every object deserializes as the official client would read it."""
    problems = _Problems()
    api = kclient.ApiClient()
    try:
        for index, obj in enumerate(objects):
            problems.extend(kube_object_problems(obj, index=index, api=api, allow_unknown_fields=allow_unknown_fields))
    finally:
        api.close()
    problems.raise_if_any(f"{len(objects)} Kubernetes object(s)")


def kube_object_problems(
    obj: Any, *, index: int | None = None, api: kclient.ApiClient | None = None, allow_unknown_fields: bool = False
) -> list[str]:
    """The problems of one object, each naming it; empty when it reads back cleanly."""
    label = _kube_label(obj, index)
    if not isinstance(obj, Mapping):
        return [f"{label}: is a {type(obj).__name__}, not a mapping"]
    problems = [f"{label}: {p}" for p in _json_problems(obj, "")]
    if problems:
        return problems  # a YAML timestamp or other non-JSON value: the API would never send it
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    name = (obj.get("metadata") or {}).get("name") if isinstance(obj.get("metadata"), Mapping) else None
    if not isinstance(api_version, str) or not api_version:
        problems.append(f"{label}: apiVersion is missing")
    if not isinstance(kind, str) or not kind:
        problems.append(f"{label}: kind is missing")
    if not isinstance(name, str) or not name:
        problems.append(f"{label}: metadata.name is missing")
    if problems:
        return problems
    group, _, version = api_version.rpartition("/")
    model_name = _model_name(version, kind)
    if group not in BUILTIN_GROUPS:
        return []  # a custom resource: apiVersion, kind and metadata.name are all the API promises
    if not hasattr(kmodels, model_name) or not hasattr(kmodels, model_name + "List"):
        return [f"{label}: {api_version} {kind} is not a kind the kubernetes client knows (no {model_name}List)"]
    owns_api = api is None
    api = api or kclient.ApiClient()
    try:
        body = json.dumps({"apiVersion": api_version, "kind": kind + "List", "metadata": {}, "items": [obj]})
        try:
            api.deserialize(body, model_name + "List", "application/json")
        except Exception:  # noqa: BLE001 - pydantic ValidationError, TypeError from a list that is not one...
            problems.extend(f"{label}: {p}" for p in _locate(obj, model_name, ""))
    finally:
        if owns_api:
            api.close()
    if not allow_unknown_fields:
        problems.extend(f"{label}: {p}" for p in _unknown_fields(obj, model_name, ""))
    return problems


def _kube_label(obj: Any, index: int | None) -> str:
    where = f"kube.add[{index}] " if index is not None else ""
    if not isinstance(obj, Mapping):
        return where.strip() or "object"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    name = meta.get("name", "<no name>")
    ref = f"{meta['namespace']}/{name}" if meta.get("namespace") else str(name)
    return f"{where}{obj.get('apiVersion', '?')} {obj.get('kind', '?')} {ref}"


def _model_name(version: str, kind: str) -> str:
    return version[:1].upper() + version[1:] + kind


def _json_problems(value: Any, path: str) -> Iterator[str]:
    """Values JSON cannot carry (YAML turns an unquoted 2026-10-01T00:00:00Z into a datetime)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                yield f"{path or '<root>'}: key {key!r} is a {type(key).__name__}, not a string (quote it)"
            yield from _json_problems(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_problems(item, f"{path}[{i}]")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        yield f"{path}: {value!r} is a {type(value).__name__}, not a JSON value (quote it in the YAML)"


def _children(value: Any, type_name: str, path: str) -> Iterator[tuple[Any, str, str]]:
    """(sub-value, model class name, path) for each nested model value of a field."""
    type_name = re.sub(r"^Optional\[(.*)\]$", r"\1", type_name)
    if type_name.startswith("List[") and isinstance(value, list):
        inner = type_name[5:-1]
        for i, item in enumerate(value):
            yield from _children(item, inner, f"{path}[{i}]")
    elif type_name.startswith("Dict[") and isinstance(value, Mapping):
        inner = type_name[5:-1].split(", ", 1)[1]
        for key, item in value.items():
            yield from _children(item, inner, f"{path}[{key!r}]")
    elif type_name not in _NATIVE and hasattr(kmodels, type_name):
        yield value, type_name, path


def _fields(model_name: str) -> dict[str, str]:
    """JSON key -> type name of a model."""
    klass = getattr(kmodels, model_name)
    return {klass.attribute_map[attr]: type_name for attr, type_name in klass.openapi_types.items()}


def _locate(data: Any, model_name: str, path: str) -> list[str]:
    """Every failure below and at this model, each with its full JSON path.

    The generated `from_dict` stops at the first nested model that fails, and pydantic reports the
    location relative to that nested model; so descend into every nested model that fails on its
    own, then validate this level with the failing parts left out.
    """
    klass = getattr(kmodels, model_name)
    if not isinstance(data, Mapping):
        return [f"{path or '<root>'}: expected a mapping ({model_name}), got {type(data).__name__} {data!r}"]
    problems: list[str] = []
    cleaned = dict(data)
    failed_keys: set[str] = set()
    for key, type_name in _fields(model_name).items():
        if data.get(key) is None:
            continue
        value, found = _without_failures(data[key], type_name, _join(path, key))
        if found:
            problems.extend(found)
            failed_keys.add(key)
            cleaned[key] = value
    try:
        klass.from_dict(cleaned)
    except Exception as exc:  # noqa: BLE001
        errors = getattr(exc, "errors", None)
        if not callable(errors):
            return [*problems, f"{path or '<root>'}: {type(exc).__name__}: {exc} ({model_name})"]
        for err in errors():
            loc = [str(part) for part in err.get("loc", ())]
            if getattr(exc, "title", model_name) == model_name and loc and loc[0] in failed_keys:
                continue  # already reported below
            where = _join(path, ".".join(loc)) if getattr(exc, "title", model_name) == model_name else path
            problems.append(f"{where or '<root>'}: {_describe(err)} ({getattr(exc, 'title', model_name)})")
    return problems


def _without_failures(value: Any, type_name: str, path: str) -> tuple[Any, list[str]]:
    """The field value with failing nested models left out, and the problems found in them."""
    type_name = re.sub(r"^Optional\[(.*)\]$", r"\1", type_name)
    if type_name.startswith("List["):
        if not isinstance(value, list):
            return None, [f"{path}: expected a list, got {type(value).__name__} {value!r}"]
        kept, problems = [], []
        for i, item in enumerate(value):
            sub, found = _without_failures(item, type_name[5:-1], f"{path}[{i}]")
            problems.extend(found)
            if not found:
                kept.append(sub)
        return kept, problems
    if type_name.startswith("Dict["):
        if not isinstance(value, Mapping):
            return None, [f"{path}: expected a mapping, got {type(value).__name__} {value!r}"]
        inner = type_name[5:-1].split(", ", 1)[1]
        kept_map, problems = {}, []
        for key, item in value.items():
            sub, found = _without_failures(item, inner, f"{path}[{key!r}]")
            problems.extend(found)
            if not found:
                kept_map[key] = sub
        return kept_map, problems
    if type_name in _NATIVE or not hasattr(kmodels, type_name):
        return value, []
    try:
        getattr(kmodels, type_name).from_dict(value)
    except Exception:  # noqa: BLE001
        return None, _locate(value, type_name, path) or [f"{path}: does not read as {type_name}"]
    return value, []


def _describe(err: Mapping[str, Any]) -> str:
    # `from_dict` passes `obj.get(key)`, so an absent required field arrives as None.
    if err.get("type") == "missing" or err.get("input", "") is None:
        return "required field is missing"
    return f"{err.get('msg')} (got {err.get('input')!r})"


def _join(path: str, key: str) -> str:
    if not key:
        return path
    return f"{path}.{key}" if path else key


def _unknown_fields(data: Any, model_name: str, path: str) -> Iterator[str]:
    if not isinstance(data, Mapping):
        return
    fields = _fields(model_name)
    for key, value in data.items():
        if key not in fields:
            yield f"{_join(path, key)}: field unknown to {model_name} (the client drops it; a typo?)"
            continue
        if value is None:
            continue
        for sub, sub_model, sub_path in _children(value, fields[key], _join(path, key)):
            yield from _unknown_fields(sub, sub_model, sub_path)


# --------------------------------------------------------------------------------------------
# Azure Resource Manager
# --------------------------------------------------------------------------------------------

def assert_arm_resources_deserialize(resources: list[dict[str, Any]], *, allow_unknown_fields: bool = False) -> None:
    """Raise AssertionError unless every ARM resource reads back through its SDK model unchanged."""
    problems = _Problems()
    for index, resource in enumerate(resources):
        problems.extend(arm_resource_problems(resource, index=index, allow_unknown_fields=allow_unknown_fields))
    problems.raise_if_any(f"{len(resources)} ARM resource(s)")


def arm_resource_problems(resource: Any, *, index: int | None = None, allow_unknown_fields: bool = False) -> list[str]:
    where = f"azure.add[{index}] " if index is not None else ""
    if not isinstance(resource, Mapping):
        return [f"{where}is a {type(resource).__name__}, not a mapping"]
    label = f"{where}{resource.get('type', '?')} {resource.get('id', '<no id>')}"
    problems = [f"{label}: {p}" for p in _json_problems(resource, "")]
    if problems:
        return problems
    for key in ("id", "name", "type"):
        if not isinstance(resource.get(key), str) or not resource.get(key):
            problems.append(f"{label}: {key} is missing")
    if problems:
        return problems
    problems.extend(f"{label}: {p}" for p in _id_problems(resource))
    reader = _arm_reader(resource["type"], allow_unknown_fields)
    if reader is None:
        return [*problems, f"{label}: no SDK model is known for type {resource['type']}"]
    try:
        back = reader(resource)
    except Exception as exc:  # noqa: BLE001 - DeserializationError, TypeError, ValueError...
        return [*problems, f"{label}: the SDK model cannot read it: {type(exc).__name__}: {exc}"]
    if not allow_unknown_fields:
        problems.extend(f"{label}: {p}" for p in _diff(resource, back, ""))
    return problems


def _id_problems(resource: Mapping[str, Any]) -> Iterator[str]:
    resource_id, name, rtype = resource["id"], resource["name"], resource["type"]
    parts = resource_id.strip("/").split("/")
    at_subscription = resource_id.startswith("/") and len(parts) >= 2 and parts[0].lower() == "subscriptions"
    if not at_subscription and not resource_id.lower().startswith("/providers/"):
        yield f"id {resource_id!r} does not start with /subscriptions/<id>"
    if parts[-1] != name:
        yield f"name {name!r} is not the last segment of the id ({parts[-1]!r})"
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        yield "id has no /providers/ segment"
        return
    start = len(lowered) - 1 - lowered[::-1].index("providers")
    tail = parts[start + 1:]
    if len(tail) < 3 or len(tail) % 2 == 0:
        yield f"id tail {'/'.join(tail)!r} is not <namespace>/<type>/<name>[/<type>/<name>...]"
        return
    expected = "/".join([tail[0], *tail[1::2]])
    if expected.lower() != rtype.lower():
        yield f"type {rtype!r} does not match the id (which says {expected!r})"


def _arm_reader(rtype: str, allow_unknown_fields: bool) -> typing.Callable[[Mapping[str, Any]], Any] | None:
    lowered = rtype.lower()
    if lowered == "microsoft.containerservice/managedclusters":
        return lambda r: _read_managed_cluster(r, allow_unknown_fields)
    if lowered == "microsoft.network/dnszones":
        from azure.mgmt.dns.models import Zone

        return lambda r: _read_msrest(Zone, r)
    if lowered.startswith("microsoft.network/dnszones/"):
        from azure.mgmt.dns.models import RecordSet

        return lambda r: _read_msrest(RecordSet, r)
    if lowered == "microsoft.managedidentity/userassignedidentities":
        from azure.mgmt.msi.models import Identity

        return lambda r: _read_msrest(Identity, r)
    if lowered == "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials":
        from azure.mgmt.msi.models import FederatedIdentityCredential

        return lambda r: _read_msrest(FederatedIdentityCredential, r)
    if lowered == "microsoft.compute/virtualmachinescalesets":
        return _read_scale_set  # azure-mgmt-compute is not a dependency: the fields aksid reads, checked by hand
    if lowered in ("microsoft.authorization/roleassignments", "microsoft.authorization/roledefinitions"):
        from azure.mgmt.authorization import AuthorizationManagementClient

        # The API version the client uses for role_assignments / role_definitions (2022-04-01 in 4.0.0).
        models = AuthorizationManagementClient.models(AuthorizationManagementClient.DEFAULT_API_VERSION)
        klass = models.RoleAssignment if lowered.endswith("roleassignments") else models.RoleDefinition
        return lambda r: _read_msrest(klass, r)
    return None


_SCALE_SET_IDENTITY_TYPES = ("SystemAssigned", "UserAssigned", "SystemAssigned, UserAssigned", "None")


def _read_scale_set(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A VirtualMachineScaleSet as Compute's REST API (2024-07-01) writes the parts aksid reads: `identity.type`
    (ResourceIdentityType) and `identity.userAssignedIdentities` {identity id: {principalId, clientId}}, `sku`,
    `location`, `properties`; raises on a shape the real API would not return."""
    identity = resource.get("identity")
    if identity is not None:
        if identity.get("type") not in _SCALE_SET_IDENTITY_TYPES:
            raise ValueError(f"identity.type {identity.get('type')!r} is not one of {_SCALE_SET_IDENTITY_TYPES}")
        for key, value in (identity.get("userAssignedIdentities") or {}).items():
            if "/providers/microsoft.managedidentity/userassignedidentities/" not in key.lower():
                raise ValueError(f"identity.userAssignedIdentities key {key!r} is not a user-assigned identity id")
            if not isinstance(value, Mapping) or set(value) - {"principalId", "clientId"}:
                raise ValueError(f"identity.userAssignedIdentities[{key!r}] holds more than principalId and clientId")
        if "UserAssigned" in identity["type"] and not identity.get("userAssignedIdentities"):
            raise ValueError("identity.type names UserAssigned but userAssignedIdentities is empty")
    for key, kind in (("location", str), ("sku", Mapping), ("properties", Mapping)):
        if not isinstance(resource.get(key), kind):
            raise ValueError(f"{key} is missing or not a {kind.__name__}")
    return dict(resource)


def _read_msrest(klass: Any, resource: Mapping[str, Any]) -> dict[str, Any]:
    """Deserialize as the client does (`Deserializer(models)(name, body)`), then back to REST form."""
    model = klass.deserialize(json.loads(json.dumps(resource)))
    return json.loads(json.dumps(model.serialize(keep_readonly=True), default=str))


def _read_managed_cluster(resource: Mapping[str, Any], allow_unknown_fields: bool = False) -> dict[str, Any]:
    """`_deserialize(ManagedCluster, response.json())`, as the typespec client does; touch every typed field.

    Typespec models keep the raw JSON and convert on attribute access, so a misspelt key survives
    `as_dict()` and a wrong type only shows when a check reads it: both are looked for here.
    """
    from azure.mgmt.containerservice import models as csmodels
    from azure.mgmt.containerservice._utils.model_base import _deserialize

    model = _deserialize(csmodels.ManagedCluster, json.loads(json.dumps(resource)))
    unknown: list[str] = []
    wrong: list[str] = []
    _touch(model, "", unknown, wrong)
    found = wrong + ([] if allow_unknown_fields else [f"{path}: a field no SDK model declares" for path in unknown])
    if found:
        raise ValueError("; ".join(found))
    profile = model.properties.pod_identity_profile if model.properties else None
    if resource.get("properties", {}).get("podIdentityProfile") is not None and profile is None:
        raise ValueError("properties.podIdentityProfile is lost by the SDK model")
    back = json.loads(json.dumps(model.as_dict(), default=str))
    if back.get("properties", {}).get("podIdentityProfile") != resource.get("properties", {}).get("podIdentityProfile"):
        raise ValueError("properties.podIdentityProfile does not survive as_dict()")
    return back


_PRIMITIVES = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def _declared_types(klass: type) -> dict[str, Any]:
    import sys

    from azure.mgmt.containerservice import models as csmodels

    module = sys.modules[klass.__module__]
    try:
        return typing.get_type_hints(klass, globalns=vars(module), localns={"_models": csmodels})
    except Exception:  # noqa: BLE001 - an unresolvable hint only means less checking
        return {}


def _type_problem(value: Any, hint: Any) -> str | None:
    """For primitive-typed fields (Optional[bool], Union[str, SomeEnum]...): is the raw JSON value of that type?"""
    import enum

    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    primitives = [a for a in args if a in _PRIMITIVES]
    richer = [a for a in args if a not in _PRIMITIVES and not (isinstance(a, type) and issubclass(a, enum.Enum))]
    if not primitives or richer:
        return None  # a model, list or dict: the nested walk and the SDK deal with it
    declared = "/".join(p.__name__ for p in primitives)
    if isinstance(value, bool) and bool not in primitives:
        return f"{value!r} is a bool, declared {declared}"
    if not isinstance(value, tuple(t for p in primitives for t in _PRIMITIVES[p])):
        return f"{value!r} is a {type(value).__name__}, declared {declared}"
    return None


def _touch(model: Any, path: str, unknown: list[str], wrong: list[str]) -> None:
    """Read every attribute of a typespec model; collect undeclared REST keys and primitive type mismatches."""
    fields = getattr(model, "_attr_to_rest_field", None)
    if fields is None:
        return
    declared = {rest_field._rest_name for rest_field in fields.values()}
    unknown.extend(_join(path, key) for key in model if key not in declared)
    hints = _declared_types(type(model))
    for attr, rest_field in fields.items():
        where = _join(path, rest_field._rest_name)
        raw = model.get(rest_field._rest_name)
        if raw is not None and attr in hints:
            problem = _type_problem(raw, hints[attr])
            if problem:
                wrong.append(f"{where}: {problem}")
                continue
        try:
            value = getattr(model, attr)
        except Exception as exc:  # noqa: BLE001
            wrong.append(f"{where}: {type(exc).__name__}: {exc}")
            continue
        if isinstance(value, Mapping) and not hasattr(value, "_attr_to_rest_field"):
            items = [(f"{where}.{key}", item) for key, item in value.items()]
        elif isinstance(value, list):
            items = [(f"{where}[{i}]", item) for i, item in enumerate(value)]
        else:
            items = [(where, value)]
        for item_path, item in items:
            if hasattr(item, "_attr_to_rest_field"):
                _touch(item, item_path, unknown, wrong)


def _diff(original: Any, back: Any, path: str) -> Iterator[str]:
    """Keys the SDK model dropped or changed on the way through (typos, wrong nesting, wrong types)."""
    if isinstance(original, Mapping):
        if not isinstance(back, Mapping):
            yield f"{path or '<root>'}: the SDK model turned a mapping into {back!r}"
            return
        for key, value in original.items():
            if value is None:
                continue
            if key not in back:
                yield f"{_join(path, key)}: dropped by the SDK model (unknown field or wrong place)"
            else:
                yield from _diff(value, back[key], _join(path, key))
    elif isinstance(original, list):
        if not isinstance(back, list) or len(back) != len(original):
            yield f"{path}: the SDK model changed the list to {back!r}"
            return
        for i, (a, b) in enumerate(zip(original, back, strict=True)):
            yield from _diff(a, b, f"{path}[{i}]")
    elif original != back and not _same_instant(original, back):
        yield f"{path}: the SDK model read {original!r} as {back!r}"


def _same_instant(a: Any, b: Any) -> bool:
    """msrest rewrites timestamps (…Z vs …+00:00, fractional digits); the same instant is not a change."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    from datetime import datetime

    def parse(text: str) -> datetime | None:
        text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None

    left, right = parse(a), parse(b)
    return left is not None and left == right


def main(argv: list[str]) -> int:
    """Check scenario files given by path (only their own kube.add / azure.add, not a base's)."""
    import yaml

    status = 0
    for path in argv:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        for section, check in (("kube", assert_kube_objects_deserialize), ("azure", assert_arm_resources_deserialize)):
            items = ((document.get(section) or {}).get("add")) or []
            try:
                check(items)
            except AssertionError as exc:
                print(f"{path} {section}: {exc}")
                status = 1
            else:
                print(f"{path} {section}: {len(items)} object(s) read back cleanly")
    return status


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
