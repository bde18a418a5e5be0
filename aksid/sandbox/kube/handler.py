"""The HTTP side of the fake API server: routing, verbs, request bodies, and the handler class serve.py runs."""

from __future__ import annotations

import hmac
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from aksid.sandbox.https import KeepAliveHandler
from aksid.sandbox.kube.authz import Principal
from aksid.sandbox.kube.discovery import (
    SERVER_VERSION,
    aggregated_discovery_document,
    core_versions_document,
    group_document,
    group_list_document,
    openapi_group_version_document,
    openapi_index_document,
    openapi_v2_document,
    resource_list_document,
    root_paths_document,
)
from aksid.sandbox.kube.errors import (
    ApiError,
    conflict,
    error_details,
    invalid,
    method_not_allowed,
    no_such_path,
    not_found,
)
from aksid.sandbox.kube.negotiation import JSON_MEDIA_TYPE, choose_discovery_format, choose_object_format
from aksid.sandbox.kube.pagination import encode_list, list_meta, page_request, paginate
from aksid.sandbox.kube.patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    PatchError,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from aksid.sandbox.kube.resources import CRD_KEY, Catalog, KubeObject, Resource
from aksid.sandbox.kube.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    selectable_fields,
)
from aksid.sandbox.kube.store import KubeStore
from aksid.sandbox.kube.tables import partial_metadata, table_document
from aksid.sandbox.kube.validation import check_name_matches, check_new_object, check_updated_object
from aksid.sandbox.wire_faults import WireFault, before_answer, write_body

# kube-apiserver refuses request bodies above 3 MiB.
_MAX_BODY_BYTES = 3 * 1024 * 1024
# DELETE answers with the deleted object for these (their REST storage sets ReturnDeletedObject, or
# deletion is asynchronous); with a `Status` of Success for the others. The typed client relies on it.
_DELETE_RETURNS_OBJECT = {("", "Pod"), ("", "Service"), ("", "ServiceAccount"), ("", "Namespace"), CRD_KEY}
# A PATCH or PUT retries this often when another write slips in between its read and its write (the
# storage's GuaranteedUpdate loop); a client's own resourceVersion is never retried: that is its 409.
_UPDATE_ATTEMPTS = 5


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON_MEDIA_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any, content_type: str = JSON_MEDIA_TYPE) -> Response:
        return cls(status, (json.dumps(document, separators=(",", ":")) + "\n").encode(), content_type)

    @classmethod
    def error(cls, error: ApiError) -> Response:
        response = cls.json(error.code, error.document())
        response.headers.update(error.headers)
        return response


@dataclass(frozen=True)
class Target:
    """What a resource path names: a collection (name None) or one object, maybe a subresource of it."""

    resource: Resource
    namespace: str | None
    name: str | None = None
    subresource: str | None = None


def route_resource(parts: list[str], resources: dict[str, Resource]) -> Target:
    """Resolve the path segments after `/api/v1` or `/apis/<group>/<version>`."""
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] in resources and resources[parts[2]].namespaced:
        namespace, parts = parts[1], parts[2:]
    resource = resources.get(parts[0])
    if resource is None or len(parts) > 3:
        raise no_such_path()
    if resource.namespaced and namespace is None and len(parts) > 1:
        raise no_such_path()  # a namespaced object is only addressable under /namespaces/<ns>/
    name = parts[1] if len(parts) > 1 else None
    subresource = parts[2] if len(parts) > 2 else None
    if subresource not in (None, "status") and not (subresource == "log" and resource.kind == "Pod"):
        raise no_such_path()
    return Target(resource, namespace, name, subresource)


def _parse_body(body: bytes, content_type: str | None) -> KubeObject:
    """A JSON or YAML request body; protobuf (kubectl's default for built-ins) is refused with 415, as
    kube-apiserver refuses formats it does not know, and client-go then retries in JSON."""
    media = (content_type or JSON_MEDIA_TYPE).split(";", 1)[0].strip().lower()
    if media not in (JSON_MEDIA_TYPE, "application/yaml"):
        raise ApiError(415, f'the body of the request was in an unknown format - accepted media types include: '
                            f'{JSON_MEDIA_TYPE}, application/yaml', details={})
    try:
        document = yaml.safe_load(body) if media == "application/yaml" else json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, f"couldn't get version/kind; json parse error: {exc}") from None
    if not isinstance(document, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return document


def _flat_query(raw_query: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(raw_query, keep_blank_values=True).items()}


class KubeRequestHandler(KeepAliveHandler):
    """Serves one KubeStore; `make_kube_handler` binds the store, token and log."""

    server_version = "aksid-sandbox-kube-apiserver"
    sys_version = ""
    # Idle keep-alive connections are dropped after this many seconds, so threads do not pile up.
    timeout = 120

    store: KubeStore
    token: str
    principals: tuple[Principal, ...] = ()  # restricted tokens, authorized by RBAC (the admin token is not)
    request_log: Callable[[dict[str, Any]], None]
    pod_log: Callable[[str, str], str | None] | None = None
    admit: Callable[[KubeObject], KubeObject] | None = None  # mutating admission (webhooks) before a create
    # mutating admission of an update (new object, stored object): webhooks registered for UPDATE; None: none is
    admit_update: Callable[[KubeObject, KubeObject], KubeObject] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: every request goes to `request_log` instead of stderr."""

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True  # the client went away; nothing to answer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_OPTIONS(self) -> None:
        self._serve("OPTIONS")

    # -- plumbing --

    def _serve(self, method: str) -> None:
        self.written_labels: dict[str, str] | None = None
        self.wire_fault: WireFault | None = None
        self.principal: Principal | None = None
        try:
            response = self._respond(method, self._read_body())
        except ApiError as error:
            response = Response.error(error)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            raise  # the client went away mid-request: nobody to answer (see handle)
        except Exception as exc:  # a bug in the fake must still answer, like kube-apiserver's panic handler
            response = Response.error(ApiError(500, f"Internal error occurred: {type(exc).__name__}: {exc}"))
        # Logged once the answer is decided and before it is sent: a client holding its response can
        # rely on finding the request in the log already.
        record = {"server": "kube", "method": method, "path": self.path, "status": response.status,
                  "user_agent": self.headers.get("User-Agent", "")}
        if self.written_labels is not None:  # what a write touched: tests prove whose objects they were
            record["labels"] = self.written_labels
        if self.wire_fault is not None:
            record["fault"] = self.wire_fault.kind
        if self.principal is not None:  # a restricted identity's request (the admin's carry no user)
            record["user"] = self.principal.user
        self.request_log(record)
        if self.wire_fault is not None and before_answer(self, self.wire_fault):
            return
        try:
            self._write(method, response)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, f"invalid Content-Length {raw_length!r}") from None
        if length > _MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread: this connection cannot be reused
            raise ApiError(413, "Request entity too large: limit is 3145728")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            if len(body) + size > _MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "Request entity too large: limit is 3145728")
            body += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _write(self, method: str, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache, private")
        if self.close_connection:
            self.send_header("Connection", "close")  # e.g. an unread oversized body is still on the wire
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            write_body(self, self.wire_fault, response.body)
        self.wfile.flush()

    def _authenticate(self) -> Principal | None:
        """None for the admin token (everything allowed, as cluster-admin); the Principal of a restricted one."""
        scheme, _, presented = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer":
            offered = presented.strip().encode()
            if hmac.compare_digest(offered, self.token.encode()):
                return None
            for principal in self.principals:
                if hmac.compare_digest(offered, principal.token.encode()):
                    return principal
        raise ApiError(401, "Unauthorized")

    # -- routing --

    def _respond(self, method: str, body: bytes) -> Response:
        principal = self.principal = self._authenticate()
        if principal is not None:
            principal.authorize(method, self.path)  # authorization comes before anything else, as in kube-apiserver
        fault = self.store.take_fault(method, self.path)
        if fault is not None and fault.wire is None:
            raise fault.error()
        if fault is not None:
            self.wire_fault = fault.wire  # answered as usual, then delivered as the fault says (see _serve)
        url = urlsplit(self.path)
        parts = [unquote(part) for part in url.path.split("/") if part]
        query = _flat_query(url.query)
        if parts[:1] not in (["api"], ["apis"]):
            return self._respond_other(method, parts)
        catalog = self.store.catalog()
        if parts[0] == "api":
            group, version, rest = "", (parts[1] if len(parts) > 1 else None), parts[2:]
        else:
            group = parts[1] if len(parts) > 1 else None
            version, rest = (parts[2] if len(parts) > 2 else None), parts[3:]
        if version is None or not rest:
            _require_get(method)
            return self._discovery(catalog, group, version)
        resources = catalog.resources(group or "", version)
        if resources is None:
            raise no_such_path()
        if rest[0] == "watch" or query.get("watch", "").lower() in ("true", "1"):
            raise ApiError(405, "watch is not supported by the aksid sandbox API server", details={})
        return self._resource(method, route_resource(rest, resources), query, body)

    def _respond_other(self, method: str, parts: list[str]) -> Response:
        _require_get(method)
        if not parts:
            return Response.json(200, root_paths_document(self.store.catalog()))
        if parts == ["version"]:
            return Response.json(200, SERVER_VERSION)
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi(parts[2:])
        if parts == ["openapi", "v2"]:  # kubectl up to 1.26 validates with it; newer ones fall back to it
            body, content_type = openapi_v2_document(self.headers.get("Accept"))
            return Response(200, body, content_type)
        raise no_such_path()

    def _openapi(self, gv_parts: list[str]) -> Response:
        catalog = self.store.catalog()
        if not gv_parts:
            return Response.json(200, openapi_index_document(catalog))
        document = None
        if gv_parts[0] == "api" and len(gv_parts) == 2:
            document = openapi_group_version_document(catalog, "", gv_parts[1])
        elif gv_parts[0] == "apis" and len(gv_parts) == 3:
            document = openapi_group_version_document(catalog, gv_parts[1], gv_parts[2])
        if document is None:
            raise no_such_path()
        return Response.json(200, document)

    def _discovery(self, catalog: Catalog, group: str | None, version: str | None) -> Response:
        aggregated = choose_discovery_format(self.headers.get("Accept"))
        if group == "" and version is None:  # /api
            if aggregated:
                return _aggregated(aggregated_discovery_document(catalog, [""], aggregated), aggregated)
            host, port = self.server.server_address[:2]
            return Response.json(200, core_versions_document(f"{host}:{port}"))
        if group is None:  # /apis
            if aggregated:
                return _aggregated(aggregated_discovery_document(catalog, catalog.groups(), aggregated), aggregated)
            return Response.json(200, group_list_document(catalog))
        document = resource_list_document(catalog, group, version) if version else group_document(catalog, group)
        if document is None:
            raise no_such_path()
        return Response.json(200, document)

    def _resource(self, method: str, target: Target, query: dict[str, str], body: bytes) -> Response:
        dry_run = query.get("dryRun") == "All"
        if method in ("GET", "HEAD") and target.subresource == "log":
            return self._log(target)
        if method in ("GET", "HEAD"):
            return self._get(target, query) if target.name else self._list(target, query)
        # Namespaced kinds are created under /namespaces/<ns>/ only; the cluster-wide path lists.
        if method == "POST" and target.name is None and (target.namespace or not target.resource.namespaced):
            posted = _parse_body(body, self.headers.get("Content-Type"))
            obj = check_new_object(target.resource, target.namespace, posted)
            if self.admit is not None:
                obj = self.admit(obj)
            created = self.store.create_object(target.resource, obj, dry_run)
            self.written_labels = dict(created["metadata"].get("labels") or {})
            return Response.json(201, created)
        if method == "DELETE" and target.name and target.subresource is None:
            return self._delete(target, dry_run)
        if method in ("PUT", "PATCH") and target.name and target.subresource in (None, "status"):
            if target.subresource == "status" and not target.resource.has_status:
                raise no_such_path()
            if method == "PUT":
                return self._replace(target, _parse_body(body, self.headers.get("Content-Type")), dry_run)
            return self._patch(target, body, query, dry_run)
        raise method_not_allowed()

    def _log(self, target: Target) -> Response:
        """`kubectl logs`: the pod's output as the kubelet model recorded it (text/plain, as the API serves it)."""
        assert target.name is not None
        if self.store.get_object(target.resource, target.namespace, target.name) is None:
            raise not_found(target.resource, target.name)
        text = self.pod_log(target.namespace or "", target.name) if self.pod_log else None
        return Response(200, (text or "").encode(), "text/plain")

    # -- verbs --

    def _get(self, target: Target, query: dict[str, str]) -> Response:
        assert target.name is not None
        obj = self.store.get_object(target.resource, target.namespace, target.name)
        if obj is None:
            raise not_found(target.resource, target.name)
        form, version = choose_object_format(self.headers.get("Accept"))
        if form == "table":
            include = query.get("includeObject", "Metadata")
            return Response.json(200, table_document(target.resource, [obj], {}, version, include))
        if form == "partial":
            return Response.json(200, partial_metadata(obj, version))
        return Response.json(200, obj)

    def _list(self, target: Target, query: dict[str, str]) -> Response:
        """A JSON list is joined from the store's encoded items (the clients' LISTs, at any scale); the Table
        and PartialObjectMetadata forms, which only kubectl asks for, are built from copies."""
        resource = target.resource
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), selectable_fields(resource))
        except SelectorError as exc:
            raise ApiError(400, str(exc)) from None
        filtered = not (labels.empty and fields.empty)
        form, version = choose_object_format(self.headers.get("Accept"))
        if form != "json":
            return self._list_form(target, query, labels, fields, form, version)
        after, limit = page_request(resource, query)
        page = self.store.list_page(resource, target.namespace, after, limit, _matcher(resource, labels, fields))
        meta = list_meta(resource, page.revision, page.last, page.more, page.remaining, filtered)
        return Response(200, encode_list(resource, meta, page.items))

    def _list_form(self, target: Target, query: dict[str, str], labels: LabelSelector, fields: FieldSelector,
                   form: str, version: str) -> Response:
        resource = target.resource
        items, revision = self.store.list_objects(resource, target.namespace)
        items = [obj for obj in items if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj)]
        page, meta = paginate(resource, items, query, revision, filtered=not (labels.empty and fields.empty))
        if form == "table":
            return Response.json(200, table_document(resource, page, meta, version,
                                                     query.get("includeObject", "Metadata")))
        return Response.json(200, {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{version}",
                                   "metadata": meta, "items": [partial_metadata(o, version) for o in page]})

    def _replace(self, target: Target, sent: KubeObject, dry_run: bool) -> Response:
        """PUT: the object (or its status) replaced by the body; its resourceVersion, when set, must be the
        stored one (409 Conflict), otherwise the update is unconditional."""
        assert target.name is not None
        check_name_matches(target.resource, target.namespace, target.name, sent)
        precondition = str((sent.get("metadata") or {}).get("resourceVersion") or "")
        return self._update(target, lambda _current: sent, precondition, dry_run)

    def _patch(self, target: Target, body: bytes, query: dict[str, str], dry_run: bool) -> Response:
        """PATCH in the four formats kube-apiserver accepts (strategic merge for built-in kinds only)."""
        assert target.name is not None
        resource = target.resource
        media = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        accepted = [JSON_PATCH, MERGE_PATCH, *([] if resource.custom else [STRATEGIC_MERGE_PATCH]), APPLY_PATCH]
        if media not in accepted:
            raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                                + ", ".join(accepted), details={})
        if "force" in query and media != APPLY_PATCH:
            raise invalid("PatchOptions.meta.k8s.io", "", "force", "Forbidden: may not be specified for "
                          "non-apply patch", "FieldValueForbidden")
        try:
            document = yaml.safe_load(body) if media == APPLY_PATCH else json.loads(body or b"null")
        except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, f"error decoding patch: {exc}") from None
        if media == APPLY_PATCH:
            return self._apply(target, document, query, dry_run)
        if media != JSON_PATCH and not isinstance(document, dict):
            raise ApiError(400, "Invalid JSON Patch" if media == MERGE_PATCH else "invalid JSON document")

        def patched(current: KubeObject) -> KubeObject:
            try:
                if media == JSON_PATCH:
                    result = json_patch(current, document)
                elif media == MERGE_PATCH:
                    result = merge_patch(current, document)
                else:
                    result = strategic_merge_patch(current, document, resource.group, resource.kind)
            except PatchError as exc:
                raise _patch_error(exc) from None
            if not isinstance(result, dict):
                raise ApiError(400, "the patched document is not a JSON object")
            check_name_matches(resource, target.namespace, target.name or "", result)
            return result

        return self._update(target, patched, None, dry_run)

    def _apply(self, target: Target, applied: Any, query: dict[str, str], dry_run: bool) -> Response:
        """Server-side apply, simplified (see aksid.sandbox.kube.patch): creates the object when absent (which
        needs the `create` verb too), merges the configuration into it otherwise; no field ownership conflicts."""
        assert target.name is not None
        resource = target.resource
        if not query.get("fieldManager"):
            raise invalid("PatchOptions.meta.k8s.io", "", "fieldManager", "Required value: is required for apply "
                          "patch", "FieldValueRequired")
        if not isinstance(applied, dict):
            raise ApiError(400, "error decoding YAML: the applied configuration is not an object")
        for field_name in ("apiVersion", "kind"):
            if not applied.get(field_name):
                raise ApiError(400, f"{field_name} must be set in the applied configuration")
        check_name_matches(resource, target.namespace, target.name, applied)
        if target.subresource is None and self.store.get_object(resource, target.namespace, target.name) is None:
            if self.principal is not None:
                self.principal.authorize_as("create", self.path)
            obj = check_new_object(resource, target.namespace, json.loads(json.dumps(applied)))
            if self.admit is not None:
                obj = self.admit(obj)
            try:
                created = self.store.create_object(resource, obj, dry_run)
            except ApiError as error:
                if error.code != 409:
                    raise
            else:
                self.written_labels = dict(created["metadata"].get("labels") or {})
                return Response.json(201, created)
        precondition = str((applied.get("metadata") or {}).get("resourceVersion") or "")

        def merged(current: KubeObject) -> KubeObject:
            try:
                return apply_patch(current, applied, resource.group, "" if resource.custom else resource.kind)
            except PatchError as exc:
                raise _patch_error(exc) from None

        return self._update(target, merged, precondition or None, dry_run)

    def _update(self, target: Target, change: Callable[[KubeObject], KubeObject], precondition: str | None,
                dry_run: bool) -> Response:
        """Read, change, check, admit and write one object, as the API server's GuaranteedUpdate does.

        `precondition`: the client's resourceVersion ("" for none: an unconditional PUT), or None when the
        changed object's own resourceVersion is the precondition (a patch, applied to the stored object)."""
        assert target.name is not None
        resource = target.resource
        for attempt in range(_UPDATE_ATTEMPTS):
            current = self.store.get_object(resource, target.namespace, target.name)
            if current is None:
                raise not_found(resource, target.name)
            new = json.loads(json.dumps(change(current)))  # never the caller's document itself
            meta = new.get("metadata") if isinstance(new.get("metadata"), dict) else {}
            # A patch is applied to the stored object: its result keeps the stored resourceVersion unless the
            # patch set one, which must then be the stored one, as a PUT's.
            expected = str(meta.get("resourceVersion") or "") if precondition is None else precondition
            if expected and expected != current["metadata"].get("resourceVersion"):
                raise conflict(resource, target.name)
            new = check_updated_object(resource, target.namespace, current, new, target.subresource == "status")
            if self.admit_update is not None:
                new = self.admit_update(new, current)
            try:
                stored = self.store.replace_object(resource, new, current["metadata"]["resourceVersion"], dry_run)
            except ApiError as error:
                # another write came between our read and our write: read again, unless the client's own
                # resourceVersion (a PUT's) is the precondition
                if error.code == 409 and not precondition and attempt + 1 < _UPDATE_ATTEMPTS:
                    continue
                raise
            self.written_labels = dict(stored["metadata"].get("labels") or {})
            return Response.json(200, stored)
        raise conflict(resource, target.name)  # not reached: the last attempt raises

    def _delete(self, target: Target, dry_run: bool) -> Response:
        assert target.name is not None
        resource = target.resource
        deleted = self.store.delete_object(resource, target.namespace, target.name, dry_run)
        if deleted is None:
            raise not_found(resource, target.name)
        self.written_labels = dict(deleted["metadata"].get("labels") or {})
        if resource.custom or (resource.group, resource.kind) in _DELETE_RETURNS_OBJECT:
            return Response.json(200, deleted)
        details = {**error_details(resource, target.name), "uid": deleted["metadata"]["uid"]}
        return Response.json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                   "details": details})


def _matcher(resource: Resource, labels: LabelSelector, fields: FieldSelector) -> Callable[[KubeObject], bool] | None:
    """The selectors as a test of objects as stored; None when nothing is selected (every object matches)."""
    if labels.empty and fields.empty:
        return None
    labels_match = labels.predicate()

    def matches(obj: KubeObject) -> bool:
        if not labels_match(obj["metadata"].get("labels")):
            return False
        # Field getters see the object as served, in the requested version (a shallow view: nothing is copied).
        return fields.empty or fields.matches({**obj, "apiVersion": resource.group_version})

    return matches


def _patch_error(exc: PatchError) -> ApiError:
    """kube-apiserver's answers to a patch it cannot apply (handlers/patch.go)."""
    if exc.code == 422:  # errors.NewGenericServerResponse(422, ...): the cause carries the patch library's words
        return ApiError(422, "the server rejected our request due to an error in our request", "Invalid",
                        {"causes": [{"reason": "UnexpectedServerResponse", "message": exc.message}]})
    if exc.code == 500:
        return ApiError(500, exc.message)
    return ApiError(exc.code, exc.message)


def _require_get(method: str) -> None:
    if method not in ("GET", "HEAD"):
        raise method_not_allowed()


def _aggregated(document: KubeObject, version: str) -> Response:
    content_type = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    return Response.json(200, document, content_type)


def make_kube_handler(store: KubeStore, token: str, log: Callable[[dict], None],
                      pod_log: Callable[[str, str], str | None] | None = None,
                      principals: tuple[Principal, ...] = (),
                      admit: Callable[[KubeObject], KubeObject] | None = None,
                      admit_update: Callable[[KubeObject, KubeObject], KubeObject] | None = None,
                      ) -> type[BaseHTTPRequestHandler]:
    """A handler class serving `store` to clients presenting `Authorization: Bearer <token>`.

    `log` receives one record per request, just before its answer is sent: server, method, path (with
    query), status, user_agent, for a create, update or delete the labels of the object, and for a restricted
    principal its user name. Never the
    Authorization header, never a body. `pod_log(namespace, pod)` serves `pods/NAME/log`. `principals`: further
    tokens, each authorized by its RBAC rules (403 Forbidden otherwise); `token` itself is allowed everything.
    `admit(obj)` is mutating admission of a create (POST, or a server-side apply creating the object): it
    returns the object to store, or raises ApiError to refuse it. `admit_update(new, stored)` is that of an
    update (PUT, PATCH): webhooks registered for UPDATE operations only, so `admit` is not called for them.
    """
    if not token:
        raise ValueError("the kube API token must not be empty")
    return type("KubeHandler", (KubeRequestHandler,), {"store": store, "token": token, "request_log": staticmethod(log),
                                                       "pod_log": staticmethod(pod_log) if pod_log else None,
                                                       "principals": tuple(principals),
                                                       "admit": staticmethod(admit) if admit else None,
                                                       "admit_update": staticmethod(admit_update) if admit_update
                                                       else None})
