"""The patch formats kube-apiserver accepts, applied to objects as plain JSON documents.

- JSON merge patch (RFC 7386, `application/merge-patch+json`): maps merge, `null` deletes, lists are replaced.
- JSON patch (RFC 6902, `application/json-patch+json`): add, remove, replace, move, copy, test.
- Strategic merge patch (`application/strategic-merge-patch+json`, built-in kinds only): like a merge patch, but
  the lists the Go types declare `patchStrategy:"merge"` merge by their `patchMergeKey` (containers by `name`,
  ports by `containerPort`...), and the directives `$patch` (`delete`, `replace`, `merge`),
  `$deleteFromPrimitiveList/<list>`, `$retainKeys` and `$setElementOrder/<list>` are honoured.
- Server-side apply (`application/apply-patch+yaml`), simplified: the applied configuration is merged into the
  live object as a strategic merge would (list-map keys are the merge keys); there is no field ownership, so no
  conflicts and no removal of fields a manager stopped applying.

A malformed patch raises PatchError carrying the HTTP status kube-apiserver answers with.
"""

from __future__ import annotations

import copy
import json
from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# kube-apiserver refuses JSON patches with more operations than this (maxJSONPatchOperations).
MAX_JSON_PATCH_OPERATIONS = 10000


class PatchError(Exception):
    """A patch that cannot be applied: `code` is kube-apiserver's status for it (400, 422, 500)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- RFC 7386 ---------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch: a new document, `target` unchanged."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- RFC 6902 ---------------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(400, f"invalid JSON pointer: {path!r}")
    if path == "":
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(422, f"invalid array index {token!r} in {path}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(422, f"array index out of bounds: {path}")
    return index


def _resolve(document: Any, tokens: list[str], path: str) -> Any:
    node = document
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, allow_end=False)]
        else:
            raise PatchError(422, f"doc is missing path: \"{path}\": missing value")
    return node


def _parent(document: Any, tokens: list[str], path: str) -> Any:
    parent = _resolve(document, tokens[:-1], path)
    if not isinstance(parent, (dict, list)):
        raise PatchError(422, f"doc is missing path: \"{path}\": missing value")
    return parent


def _add(document: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(document, tokens, path)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    else:
        parent.insert(_index(parent, tokens[-1], path, allow_end=True), value)
    return document


def _remove(document: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError(422, "unable to remove the whole document")
    parent = _parent(document, tokens, path)
    if isinstance(parent, dict):
        if tokens[-1] not in parent:
            raise PatchError(422, f"Unable to remove nonexistent key: {tokens[-1]}: missing value")
        return document, parent.pop(tokens[-1])
    return document, parent.pop(_index(parent, tokens[-1], path, allow_end=False))


def _equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902: apply `operations` in order to a copy of `document`; PatchError as kube-apiserver answers."""
    if not isinstance(operations, list):
        raise PatchError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(413, f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
                              f"got {len(operations)}")
    result = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict):
            raise PatchError(400, "json: cannot unmarshal non-object into Go value of type jsonpatch.Operation")
        op, path = operation.get("op"), operation.get("path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(422, f"missing value for {op} operation on {path}")
        if op == "add":
            result = _add(result, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            result, _ = _remove(result, path)
        elif op == "replace":
            tokens = _pointer(path)
            if tokens:
                _resolve(result, tokens, path)  # replace needs an existing target
                result, _ = _remove(result, path)
                result = _add(result, path, copy.deepcopy(operation["value"]))
            else:
                result = copy.deepcopy(operation["value"])
        elif op in ("move", "copy"):
            source = operation.get("from")
            value = copy.deepcopy(_resolve(result, _pointer(source), str(source)))
            if op == "move":
                result, value = _remove(result, str(source))
            result = _add(result, path, value)
        elif op == "test":
            try:
                actual = _resolve(result, _pointer(path), str(path))
            except PatchError:
                actual = None
            if not _equal(actual, operation["value"]):
                raise PatchError(422, f"testing value {path} failed: test failed")
        else:
            raise PatchError(400, f"Unexpected kind: {op}")
    return result


# -- strategic merge --------------------------------------------------------------------------------

# Where a pod spec sits in each kind holding one.
_POD_SPEC_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}
# The lists of a PodSpec and of a Container that merge, by their patchMergeKey (None: a set of primitives).
_POD_SPEC_LISTS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
                   "volumes": "name", "imagePullSecrets": "name", "hostAliases": "ip",
                   "topologySpreadConstraints": "topologyKey", "resourceClaims": "name", "schedulingGates": "name"}
_CONTAINER_LISTS = {"ports": "containerPort", "env": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath"}
_CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")
# Elsewhere in the built-in kinds: the object path (list items are not counted) and its merge key.
_OTHER_LISTS: dict[tuple[str, ...], str | None] = {
    ("metadata", "finalizers"): None,
    ("metadata", "ownerReferences"): "uid",
    ("status", "conditions"): "type",
}
_KIND_LISTS: dict[tuple[str, str], dict[tuple[str, ...], str | None]] = {
    ("", "Pod"): {("status", "podIPs"): "ip", ("status", "hostIPs"): "ip"},
    ("", "Node"): {("status", "addresses"): "type", ("spec", "podCIDRs"): None},
    ("", "Service"): {("spec", "ports"): "port"},
    ("", "ServiceAccount"): {("secrets",): "name"},
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): {("webhooks",): "name"},
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): {("webhooks",): "name"},
}
_MISSING = object()  # what a `$patch: delete` leaves of a map


def merge_key(group: str, kind: str, path: tuple[str, ...]) -> tuple[bool, str | None]:
    """For the list at `path` (field names, list items not counted) of a built-in kind: (merges, merge key).

    (False, None): the list is replaced as a whole (atomic); (True, None): a set of primitives, merged.
    """
    lists = {**_OTHER_LISTS, **_KIND_LISTS.get((group, kind), {})}
    if path in lists:
        return True, lists[path]
    pod_spec = _POD_SPEC_PATHS.get((group, kind))
    if pod_spec is not None and path[:len(pod_spec)] == pod_spec:
        rest = path[len(pod_spec):]
        if len(rest) == 1 and rest[0] in _POD_SPEC_LISTS:
            return True, _POD_SPEC_LISTS[rest[0]]
        if len(rest) == 2 and rest[0] in _CONTAINER_FIELDS and rest[1] in _CONTAINER_LISTS:
            return True, _CONTAINER_LISTS[rest[1]]
    return False, None


class _Strategic:
    def __init__(self, group: str, kind: str, server_side_apply: bool = False) -> None:
        self.group, self.kind = group, kind
        self.apply = server_side_apply

    def merge_map(self, original: Any, patch: dict[str, Any], path: tuple[str, ...]) -> Any:
        directive = patch.get("$patch")
        if directive == "delete":
            return _MISSING
        if directive == "replace":
            return self._clean({k: v for k, v in patch.items() if k != "$patch"}, path)
        if directive not in (None, "merge"):
            raise PatchError(400, f"Unknown patch directive in map: {directive}")
        result = copy.deepcopy(original) if isinstance(original, dict) else {}
        retain = patch.get("$retainKeys")
        for key, value in patch.items():
            if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
                continue
            if key.startswith("$deleteFromPrimitiveList/"):
                name = key.split("/", 1)[1]
                if not isinstance(value, list):
                    raise PatchError(400, "Invalid patch: $deleteFromPrimitiveList must be a list")
                if isinstance(result.get(name), list):
                    result[name] = [item for item in result[name] if item not in value]
                continue
            if value is None:
                if not self.apply:  # apply: a null field is one the configuration does not set
                    result.pop(key, None)
                continue
            merged = self.merge_value(result.get(key, _MISSING), value, (*path, key))
            if merged is _MISSING:
                result.pop(key, None)
            else:
                result[key] = merged
        if retain is not None:
            if not isinstance(retain, list):
                raise PatchError(400, "Invalid patch: $retainKeys must be a list")
            result = {k: v for k, v in result.items() if k in retain}
        for key, order in patch.items():
            if key.startswith("$setElementOrder/") and isinstance(result.get(key.split("/", 1)[1]), list):
                name = key.split("/", 1)[1]
                result[name] = self._ordered(result[name], order, (*path, name))
        return result

    def merge_value(self, original: Any, patch: Any, path: tuple[str, ...]) -> Any:
        if isinstance(patch, dict):
            return self.merge_map(original if original is not _MISSING else None, patch, path)
        if isinstance(patch, list):
            return self.merge_list(original if isinstance(original, list) else [], patch, path)
        return copy.deepcopy(patch)

    def merge_list(self, original: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
        merges, key = merge_key(self.group, self.kind, path)
        if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
            return [self._clean(item, path) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
        if not merges:
            return [self._clean(item, path) for item in patch]
        if key is None:  # a set of primitives
            result = list(original)
            for item in patch:
                if item not in result:
                    result.append(copy.deepcopy(item))
            return result
        result = copy.deepcopy(original)
        for item in patch:
            if not isinstance(item, dict):
                raise PatchError(500, f"Internal error occurred: map: {item!r} does not contain declared "
                                      f"merge key: {key}")
            if key not in item:
                raise PatchError(500, f"Internal error occurred: map: {_go_map(item)} does not contain declared "
                                      f"merge key: {key}")
            found = next((i for i, existing in enumerate(result)
                          if isinstance(existing, dict) and existing.get(key) == item[key]), None)
            if item.get("$patch") == "delete":
                if found is not None:
                    del result[found]
                continue
            if found is None:
                merged = self.merge_map({}, item, path)
                if merged is not _MISSING:
                    result.append(merged)
            else:
                merged = self.merge_map(result[found], item, path)
                if merged is _MISSING:
                    del result[found]
                else:
                    result[found] = merged
        return result

    def _ordered(self, items: list[Any], order: Any, path: tuple[str, ...]) -> list[Any]:
        """`$setElementOrder`: the listed elements in the given order; the others keep their place after them."""
        if not isinstance(order, list):
            raise PatchError(400, "Invalid patch: $setElementOrder must be a list")
        _, key = merge_key(self.group, self.kind, path)

        def identity(item: Any) -> Any:
            return json.dumps(item.get(key) if key and isinstance(item, dict) else item, sort_keys=True)

        rank = {identity(entry): position for position, entry in enumerate(order)}
        return sorted(items, key=lambda item: rank.get(identity(item), len(rank)))

    def _clean(self, value: Any, path: tuple[str, ...]) -> Any:
        """A value taken whole from the patch, its directives (meaningless without an original) dropped."""
        if isinstance(value, dict):
            merged = self.merge_map({}, value, path)
            return {} if merged is _MISSING else merged
        if isinstance(value, list):
            return [self._clean(item, path) for item in value]
        return value


def _go_map(item: dict[str, Any]) -> str:
    return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(item.items())) + "]"


def strategic_merge_patch(original: dict[str, Any], patch: Any, group: str, kind: str) -> dict[str, Any]:
    """Kubernetes strategic merge patch of a built-in kind's object (a copy; `original` unchanged)."""
    if not isinstance(patch, dict):
        raise PatchError(400, "invalid JSON document")
    merged = _Strategic(group, kind).merge_map(original, patch, ())
    return {} if merged is _MISSING else merged


def apply_patch(live: dict[str, Any] | None, applied: dict[str, Any], group: str, kind: str) -> dict[str, Any]:
    """Server-side apply, simplified: the applied configuration merged into the live object (or the object
    itself when there is none). Lists merge by the kind's merge keys; for a custom resource (no merge keys),
    every list is atomic and maps merge."""
    if live is None:
        return copy.deepcopy(applied)
    merged = _Strategic(group, kind, server_side_apply=True).merge_map(live, applied, ())
    return {} if merged is _MISSING else merged
