"""Discovery as kubectl and the clients read it: legacy and aggregated, the root paths, skeleton OpenAPI."""

from __future__ import annotations

import hashlib
import json

from aksid.sandbox.kube.resources import Catalog, KubeObject, Resource

SERVER_VERSION: dict[str, str] = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:02:27Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _api_resource(resource: Resource) -> KubeObject:
    entry: KubeObject = {
        "name": resource.plural, "singularName": resource.singular_name, "namespaced": resource.namespaced,
        "kind": resource.kind, "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def resource_list_document(catalog: Catalog, group: str, version: str) -> KubeObject | None:
    resources = catalog.resources(group, version)
    if resources is None:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": [_api_resource(r) for r in sorted(resources.values(), key=lambda r: r.plural)]}


def _group_entry(catalog: Catalog, group: str) -> KubeObject:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in catalog.versions(group)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def group_document(catalog: Catalog, group: str) -> KubeObject | None:
    if not catalog.versions(group) or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(catalog, group)}


def group_list_document(catalog: Catalog) -> KubeObject:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_entry(catalog, g) for g in catalog.groups()]}


def core_versions_document(server_address: str) -> KubeObject:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _discovery_resource(resource: Resource) -> KubeObject:
    entry: KubeObject = {
        "resource": resource.plural,
        "responseKind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
        "scope": "Namespaced" if resource.namespaced else "Cluster",
        "singularResource": resource.singular_name,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def aggregated_discovery_document(catalog: Catalog, groups: list[str], version: str) -> KubeObject:
    """apidiscovery.k8s.io APIGroupDiscoveryList: what kubectl asks /api and /apis for first."""
    items = []
    for group in groups:
        versions = []
        for group_version in catalog.versions(group):
            resources = catalog.resources(group, group_version) or {}
            versions.append({
                "version": group_version,
                "resources": [_discovery_resource(r) for r in sorted(resources.values(), key=lambda r: r.plural)],
                "freshness": "Current",
            })
        metadata: KubeObject = {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
        items.append({"metadata": metadata, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _all_group_versions(catalog: Catalog) -> list[tuple[str, str]]:
    return [(group, version) for group in ["", *catalog.groups()] for version in catalog.versions(group)]


def root_paths_document(catalog: Catalog) -> KubeObject:
    """GET /: every path the server answers at its top levels, as kube-apiserver lists them."""
    paths = ["/api", "/apis", *(f"/{_gv_path(g, v)}" for g, v in _all_group_versions(catalog)),
             *(f"/apis/{g}" for g in catalog.groups()), "/healthz", "/livez", "/openapi/v2", "/openapi/v3", "/readyz", "/version"]
    return {"paths": sorted(paths)}


def openapi_index_document(catalog: Catalog) -> KubeObject:
    """/openapi/v3: one entry per group-version; the hash changes whenever the served resources do."""
    paths = {}
    for group, version in _all_group_versions(catalog):
        resources = sorted((catalog.resources(group, version) or {}).values(), key=lambda r: r.plural)
        digest = hashlib.sha256(json.dumps([_api_resource(r) for r in resources]).encode()).hexdigest()[:32].upper()
        paths[_gv_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"}
    return {"paths": paths}


def openapi_group_version_document(catalog: Catalog, group: str, version: str) -> KubeObject | None:
    """A skeleton OpenAPI v3 document: operations without schemas.

    Enough for kubectl's check that the server validates fields itself (the `fieldValidation` query
    parameter on POST/PATCH), so `kubectl create -f` works without downloading schemas; `kubectl explain`
    and client-side validation get nothing useful from it.
    """
    resources = catalog.resources(group, version)
    if resources is None:
        return None
    field_validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    paths: KubeObject = {}
    for resource in sorted(resources.values(), key=lambda r: r.plural):
        gvk = {"x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": resource.kind}}
        base = f"/{_gv_path(group, version)}/" + ("namespaces/{namespace}/" if resource.namespaced else "")
        operation = {**gvk, "parameters": [field_validation], "responses": {"200": {"description": "OK"}}}
        paths[base + resource.plural] = {"get": {**gvk, "responses": {"200": {"description": "OK"}}}, "post": operation}
        paths[base + resource.plural + "/{name}"] = {"get": {**gvk, "responses": {"200": {"description": "OK"}}},
                                                     "patch": operation, "put": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


_OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _protobuf_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def openapi_v2_document(accept: str | None) -> tuple[bytes, str]:
    """/openapi/v2 without definitions: (body, content type), protobuf when asked for it (client-go's
    OpenAPISchema always is), JSON otherwise.

    kubectl up to 1.26 validates manifests with it (`create`/`apply` fail without it) and finds no schema
    for any kind, so it leaves validation to the server; newer ones read it only when /openapi/v3 gives no
    patch schema, and then compute strategic merge patches from their compiled-in types, as they do here.
    """
    info = {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]}
    if accept and "protobuf" in accept:
        # gnostic's openapi_v2.Document: swagger = 1, info = 2 (its title = 1, version = 2), paths = 8
        info_message = _protobuf_field(1, info["title"].encode()) + _protobuf_field(2, info["version"].encode())
        body = _protobuf_field(1, b"2.0") + _protobuf_field(2, info_message) + _protobuf_field(8, b"")
        return body, _OPENAPI_V2_PROTOBUF.replace("@", ".")
    document = {"swagger": "2.0", "info": info, "paths": {}, "definitions": {}}
    return (json.dumps(document, separators=(",", ":")) + "\n").encode(), "application/json"
