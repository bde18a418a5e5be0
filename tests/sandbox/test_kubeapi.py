"""The fake Kubernetes API server, proven with real clients: the typed `kubernetes` client and kubectl.

Self-contained (no conftest): each test gets its own server on 127.0.0.1 with a throw-away CA.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aksid.sandbox.https import start_https_server
from aksid.sandbox.kube.handler import Response
from aksid.sandbox.kube.pagination import paginate
from aksid.sandbox.kube.selectors import (
    SelectorError,
    fields_for,
    parse_field_selector,
    parse_label_selector,
    selectable_fields,
)
from aksid.sandbox.kubeapi import KubeStore, Resource, make_kube_handler
from aksid.sandbox.tls import SandboxCA

TOKEN = "sandbox-token-d3f1e8"
KUBECTL = shutil.which("kubectl")
TIMESTAMP = "2025-03-01T10:00:00Z"

# --- scenario objects: complete enough for the typed client's validation --------------------------


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def node(name: str, ready: str = "True") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.azure.com/mode": "system",
                                              "node-role.kubernetes.io/agent": ""}},
        "spec": {"podCIDR": "10.244.0.0/24", "providerID": f"azure:///subscriptions/s/vm/{name}"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.224.0.4"}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady", "message": "kubelet is ready",
                            "lastHeartbeatTime": TIMESTAMP, "lastTransitionTime": TIMESTAMP}],
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "1900m", "memory": "5Gi", "pods": "110"},
            "nodeInfo": {
                "architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "5.15.0-1079-azure", "kubeProxyVersion": "v1.32.4", "kubeletVersion": "v1.32.4",
                "machineID": "m", "operatingSystem": "linux", "osImage": "Ubuntu 22.04.5 LTS", "systemUUID": "u",
            },
        },
    }


def pod(name: str, ns: str, labels: dict[str, str], node_name: str | None = "node-1", phase: str = "Running",
        restarts: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "mcr.microsoft.com/app:1.0"}]}
    if node_name:
        spec["nodeName"] = node_name
    running = phase == "Running"
    status: dict[str, Any] = {"phase": phase}
    if running:
        status.update(podIP="10.244.0.10", containerStatuses=[{
            "name": "main", "ready": True, "restartCount": restarts, "image": "mcr.microsoft.com/app:1.0",
            "imageID": "sha256:abc", "started": True, "state": {"running": {"startedAt": TIMESTAMP}},
        }])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": spec, "status": status}


def pod_template(labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "main", "image": "mcr.microsoft.com/app:1.0"}]}}


def daemonset() -> dict[str, Any]:
    labels = {"component": "nmi"}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "nmi", "namespace": "kube-system", "labels": labels},
            "spec": {"selector": {"matchLabels": labels}, "template": pod_template(labels)},
            "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 2, "numberMisscheduled": 0,
                       "numberReady": 2, "numberAvailable": 2, "updatedNumberScheduled": 2, "observedGeneration": 1}}


def deployment() -> dict[str, Any]:
    labels = {"component": "mic"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "mic", "namespace": "kube-system", "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": pod_template(labels)},
            "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 2}}


def service() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.10", "selector": {"k8s-app": "kube-dns"},
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]},
            "status": {"loadBalancer": {}}}


def ingress() -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["web.example.test"], "secretName": "web-tls"}],
                     "rules": [{"host": "web.example.test", "http": {"paths": [
                         {"path": "/", "pathType": "Prefix", "backend": backend}]}}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "20.1.2.3"}]}}}


def crd(group: str, kind: str, plural: str, scope: str = "Namespaced", short: list[str] | None = None,
        columns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    version: dict[str, Any] = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    if columns:
        version["additionalPrinterColumns"] = columns
    names: dict[str, Any] = {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"}
    if short:
        names["shortNames"] = short
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope, "names": names, "versions": [version]}}


AZURE_IDENTITY_CRD = crd("aadpodidentity.k8s.io", "AzureIdentity", "azureidentities")
CLUSTER_ISSUER_CRD = crd("cert-manager.io", "ClusterIssuer", "clusterissuers", scope="Cluster", short=["ciss"], columns=[
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
])


def azure_identity(name: str, ns: str = "kube-addons") -> dict[str, Any]:
    return {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": 0, "resourceID": f"/subscriptions/s/resourceGroups/rg/providers/x/{name}", "clientID": "c"}}


def cluster_issuer(name: str) -> dict[str, Any]:
    return {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": name},
            "spec": {"acme": {"server": "https://acme.test/directory"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


# Pods, in the API's order (namespace, then name); labels drive the selector tests.
PODS = [
    pod("web-1", "default", {"app": "web", "tier": "frontend"}, node_name="node-2"),
    pod("pending-1", "kube-addons", {"app": "batch"}, node_name=None, phase="Pending"),
    pod("coredns-a", "kube-system", {"k8s-app": "kube-dns"}),
    pod("mic-a", "kube-system", {"component": "mic", "tier": "control"}),
    pod("mic-b", "kube-system", {"component": "mic", "tier": "control"}, node_name="node-2"),
    pod("nmi-a", "kube-system", {"component": "nmi", "tier": "node"}, restarts=3),
    pod("nmi-b", "kube-system", {"component": "nmi", "tier": "node"}, node_name="node-2"),
]
ALL_POD_NAMES = [p["metadata"]["name"] for p in PODS]


def scenario_objects() -> list[dict[str, Any]]:
    return [
        namespace("default"), namespace("kube-system"), namespace("kube-addons"),
        node("node-1"), node("node-2", ready="False"),
        *PODS, daemonset(), deployment(), service(), ingress(),
        AZURE_IDENTITY_CRD, CLUSTER_ISSUER_CRD,
        azure_identity("id-a"), azure_identity("id-b"), azure_identity("id-c", ns="default"),
        cluster_issuer("letsencrypt"),
    ]


def without_crd(name: str) -> list[dict[str, Any]]:
    return [o for o in scenario_objects() if (o["kind"], o["metadata"]["name"]) != ("CustomResourceDefinition", name)]


# --- fixtures -------------------------------------------------------------------------------------


@dataclass
class Sandbox:
    store: KubeStore
    port: int
    ca_path: Path
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def configuration(self, token: str = TOKEN) -> client.Configuration:
        # An explicit Configuration, never the global default one.
        return client.Configuration(host=self.host, ssl_ca_cert=str(self.ca_path),
                                    api_key={"authorization": f"Bearer {token}"})

    def raw(self, method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None, token: str | None = TOKEN) -> tuple[int, dict[str, str], Any]:
        """One request outside any Kubernetes client: status, headers (lower-case) and decoded JSON."""
        connection = self.connection()
        try:
            status, response_headers, data = request(connection, method, path, headers, body, token)
        finally:
            connection.close()
        return status, response_headers, json.loads(data) if data and "json" in response_headers["content-type"] else data

    def connection(self) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=10)


def request(connection: http.client.HTTPSConnection, method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None, token: str | None = TOKEN) -> tuple[int, dict[str, str], bytes]:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=body, headers=all_headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    directory = tmp_path_factory.mktemp("kube-tls")
    ca = SandboxCA.create(directory)
    cert, key = ca.issue_server_cert(directory, "kube-apiserver")
    return ca.cert_path, cert, key


@pytest.fixture(scope="module")
def server(tls: tuple[Path, Path, Path]) -> Iterator[Sandbox]:
    """One server for the module (stopping one takes half a second); tests load their own objects into it."""
    ca_path, cert, key = tls
    store = KubeStore([])
    records: list[dict[str, Any]] = []
    https_server = start_https_server(make_kube_handler(store, TOKEN, records.append), cert, key)
    yield Sandbox(store, https_server.server_address[1], ca_path, records)
    https_server.shutdown()
    https_server.server_close()


@pytest.fixture
def start(server: Sandbox) -> Callable[..., Sandbox]:
    """Load objects (default: the scenario above) and faults into the server, with an empty request log."""

    def load(objects: list[dict[str, Any]] | None = None, faults: list[dict[str, Any]] | None = None) -> Sandbox:
        server.store.reset(scenario_objects() if objects is None else objects, faults)
        server.records.clear()
        return server

    return load


@pytest.fixture
def sandbox(start: Callable[..., Sandbox]) -> Sandbox:
    return start()


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[client.ApiClient]:
    with client.ApiClient(sandbox.configuration()) as api_client:
        yield api_client


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def pod_names(pod_list: client.V1PodList) -> list[str]:
    return [item.metadata.name for item in pod_list.items]


# --- typed client: LIST, selectors, pagination, GET, errors -------------------------------------------


def test_lists_pods_in_all_namespaces_in_api_order(api: client.ApiClient) -> None:
    pods = client.CoreV1Api(api).list_pod_for_all_namespaces()
    assert pod_names(pods) == ALL_POD_NAMES
    assert pods.kind == "PodList" and pods.api_version == "v1"
    assert pods.metadata.resource_version and pods.metadata._continue is None
    assert all(isinstance(item, client.V1Pod) for item in pods.items)


def test_lists_one_namespace(api: client.ApiClient) -> None:
    pods = client.CoreV1Api(api).list_namespaced_pod("kube-system")
    assert pod_names(pods) == ["coredns-a", "mic-a", "mic-b", "nmi-a", "nmi-b"]
    assert client.CoreV1Api(api).list_namespaced_pod("no-such-namespace").items == []


@pytest.mark.parametrize(("selector", "expected"), [
    ("component=nmi", ["nmi-a", "nmi-b"]),
    ("component==nmi", ["nmi-a", "nmi-b"]),
    ("component!=nmi", ["web-1", "pending-1", "coredns-a", "mic-a", "mic-b"]),  # also pods without the label
    ("component in (nmi, mic)", ["mic-a", "mic-b", "nmi-a", "nmi-b"]),
    ("component notin (nmi,mic)", ["web-1", "pending-1", "coredns-a"]),
    ("component", ["mic-a", "mic-b", "nmi-a", "nmi-b"]),
    ("!component", ["web-1", "pending-1", "coredns-a"]),
    ("tier=node,component=nmi", ["nmi-a", "nmi-b"]),
    ("tier in (control,frontend), app!=web", ["mic-a", "mic-b"]),
    ("k8s-app=kube-dns", ["coredns-a"]),
    ("component=absent", []),
    ("", ALL_POD_NAMES),
])
def test_label_selectors(api: client.ApiClient, selector: str, expected: list[str]) -> None:
    pods = client.CoreV1Api(api).list_pod_for_all_namespaces(label_selector=selector)
    assert pod_names(pods) == expected


@pytest.mark.parametrize(("selector", "expected"), [
    ("spec.nodeName=node-2", ["web-1", "mic-b", "nmi-b"]),
    ("spec.nodeName==node-2,metadata.namespace=kube-system", ["mic-b", "nmi-b"]),
    ("status.phase!=Running", ["pending-1"]),
    ("status.phase=Running,spec.nodeName!=node-2", ["coredns-a", "mic-a", "nmi-a"]),
    ("metadata.name=nmi-a", ["nmi-a"]),
    ("spec.nodeName=", ["pending-1"]),
])
def test_field_selectors(api: client.ApiClient, selector: str, expected: list[str]) -> None:
    pods = client.CoreV1Api(api).list_pod_for_all_namespaces(field_selector=selector)
    assert pod_names(pods) == expected


def test_label_and_field_selectors_combine(api: client.ApiClient) -> None:
    pods = client.CoreV1Api(api).list_pod_for_all_namespaces(label_selector="component=nmi",
                                                             field_selector="spec.nodeName=node-1")
    assert pod_names(pods) == ["nmi-a"]


def test_unsupported_field_selector_is_400(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).list_pod_for_all_namespaces(field_selector="spec.hostname=x")
    assert caught.value.status == 400
    assert status_of(caught.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "field label not supported: spec.hostname", "reason": "BadRequest", "code": 400,
    }
    # Pod-only fields are not selectable on other kinds, as on a real API server.
    with pytest.raises(ApiException) as caught:
        client.AppsV1Api(api).list_daemon_set_for_all_namespaces(field_selector="spec.nodeName=node-1")
    assert caught.value.status == 400


@pytest.mark.parametrize("selector", ["component in (nmi", "component in ()", "=nmi", "component=a b", "a,,b", "!a=b"])
def test_malformed_label_selector_is_400(api: client.ApiClient, selector: str) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).list_pod_for_all_namespaces(label_selector=selector)
    assert caught.value.status == 400
    assert status_of(caught.value)["reason"] == "BadRequest"


def test_pagination_collects_every_page(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    names: list[str] = []
    remaining: list[int | None] = []
    token = None
    while True:
        page = core.list_pod_for_all_namespaces(limit=3, _continue=token)
        assert len(page.items) <= 3
        names += pod_names(page)
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            break
    assert names == ALL_POD_NAMES
    assert remaining == [4, 1, None]


def test_pagination_with_a_selector_omits_the_remaining_count(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    first = core.list_pod_for_all_namespaces(limit=1, label_selector="component")
    assert pod_names(first) == ["mic-a"] and first.metadata._continue
    assert first.metadata.remaining_item_count is None  # upstream reports it only for unfiltered lists
    rest = core.list_pod_for_all_namespaces(limit=10, label_selector="component", _continue=first.metadata._continue)
    assert pod_names(rest) == ["mic-b", "nmi-a", "nmi-b"] and rest.metadata._continue is None


def test_invalid_continue_token_is_400(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).list_pod_for_all_namespaces(limit=1, _continue="not-a-token")
    assert caught.value.status == 400


def test_get_missing_object_is_404_not_found(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).read_namespaced_pod("x", "kube-system")
    assert caught.value.status == 404
    assert status_of(caught.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": 'pods "x" not found',
        "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404,
    }
    with pytest.raises(ApiException) as caught:
        client.AppsV1Api(api).read_namespaced_deployment("x", "kube-system")
    assert status_of(caught.value)["message"] == 'deployments.apps "x" not found'
    assert status_of(caught.value)["details"] == {"name": "x", "group": "apps", "kind": "deployments"}


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_wrong_or_missing_token_is_401(sandbox: Sandbox, token: str) -> None:
    configuration = sandbox.configuration(token)
    if not token:
        configuration.api_key = {}
    with client.ApiClient(configuration) as api_client, pytest.raises(ApiException) as caught:
        client.CoreV1Api(api_client).list_pod_for_all_namespaces()
    assert caught.value.status == 401
    assert status_of(caught.value) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                       "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


# --- typed deserialization of complete objects ------------------------------------------------------


def test_typed_reads_deserialize_complete_objects(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    nmi = core.read_namespaced_pod("nmi-a", "kube-system")
    assert nmi.spec.node_name == "node-1" and nmi.status.container_statuses[0].restart_count == 3
    assert nmi.metadata.uid == str(uuid.uuid5(uuid.UUID("6f1c2a4e-9d0b-5a43-8e2f-3b7d1c5e0a91"),
                                              "v1/Pod/kube-system/nmi-a"))
    assert nmi.metadata.creation_timestamp.isoformat() == "2025-01-01T00:00:00+00:00"
    assert nmi.kind == "Pod" and nmi.api_version == "v1"

    assert core.read_node("node-1").status.node_info.kubelet_version == "v1.32.4"
    assert [n.metadata.name for n in core.list_node().items] == ["node-1", "node-2"]
    assert apps.read_namespaced_daemon_set("nmi", "kube-system").status.number_ready == 2
    mic = apps.read_namespaced_deployment("mic", "kube-system")
    assert mic.metadata.generation == 1 and mic.status.ready_replicas == 1
    assert core.read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip == "10.0.0.10"
    web = client.NetworkingV1Api(api).read_namespaced_ingress("web", "default")
    assert web.spec.rules[0].host == "web.example.test" and web.status.load_balancer.ingress[0].ip == "20.1.2.3"
    namespace_ = core.read_namespace("kube-system")
    assert namespace_.status.phase == "Active"
    assert namespace_.metadata.labels == {"kubernetes.io/metadata.name": "kube-system"}


def test_crds_deserialize_with_the_status_the_server_adds(api: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api)
    definition = extensions.read_custom_resource_definition("azureidentities.aadpodidentity.k8s.io")
    assert definition.spec.names.plural == "azureidentities"
    assert definition.status.stored_versions == ["v1"]
    assert {c.type: c.status for c in definition.status.conditions} == {"NamesAccepted": "True", "Established": "True"}
    assert len(extensions.list_custom_resource_definition().items) == 2


def test_partial_status_gets_required_fields(start: Callable[..., Sandbox]) -> None:
    """A DaemonSet whose scenario status lacks the non-omitempty counters still deserializes."""
    partial = daemonset()
    partial["status"] = {"numberReady": 1}
    sandbox = start([namespace("kube-system"), partial])
    with client.ApiClient(sandbox.configuration()) as api_client:
        status = client.AppsV1Api(api_client).read_namespaced_daemon_set("nmi", "kube-system").status
    assert (status.number_ready, status.desired_number_scheduled, status.current_number_scheduled) == (1, 0, 0)


# --- custom resources follow their CRDs -----------------------------------------------------------


def test_custom_objects_are_served_while_their_crd_exists(sandbox: Sandbox, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    everywhere = custom.list_cluster_custom_object("aadpodidentity.k8s.io", "v1", "azureidentities")
    assert everywhere["kind"] == "AzureIdentityList"
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["id-c", "id-a", "id-b"]  # default < kube-addons
    assert everywhere["items"][0]["apiVersion"] == "aadpodidentity.k8s.io/v1"  # custom items keep their kind
    namespaced = custom.list_namespaced_custom_object("aadpodidentity.k8s.io", "v1", "kube-addons", "azureidentities")
    assert [i["metadata"]["name"] for i in namespaced["items"]] == ["id-a", "id-b"]
    issuers = custom.list_cluster_custom_object("cert-manager.io", "v1", "clusterissuers")
    assert [i["metadata"]["name"] for i in issuers["items"]] == ["letsencrypt"]
    one = custom.get_namespaced_custom_object("aadpodidentity.k8s.io", "v1", "kube-addons", "azureidentities", "id-a")
    assert one["spec"]["clientID"] == "c" and one["metadata"]["generation"] == 1

    sandbox.store.reset(without_crd("azureidentities.aadpodidentity.k8s.io"))
    with pytest.raises(ApiException) as caught:
        custom.list_cluster_custom_object("aadpodidentity.k8s.io", "v1", "azureidentities")
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == "the server could not find the requested resource"
    with pytest.raises(ApiException):
        custom.list_namespaced_custom_object("aadpodidentity.k8s.io", "v1", "kube-addons", "azureidentities")
    groups = [g.name for g in client.ApisApi(api).get_api_versions().groups]
    assert "aadpodidentity.k8s.io" not in groups and "cert-manager.io" in groups


def test_deleting_a_crd_through_the_api_removes_its_kind(api: client.ApiClient) -> None:
    client.ApiextensionsV1Api(api).delete_custom_resource_definition("azureidentities.aadpodidentity.k8s.io")
    with pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).list_cluster_custom_object("aadpodidentity.k8s.io", "v1", "azureidentities")
    assert caught.value.status == 404


# --- discovery ------------------------------------------------------------------------------------


def test_legacy_discovery(api: client.ApiClient) -> None:
    assert client.VersionApi(api).get_code().git_version == "v1.32.4"
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name: g.preferred_version.version for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "networking.k8s.io", "apiextensions.k8s.io", "rbac.authorization.k8s.io",
            "admissionregistration.k8s.io", "aadpodidentity.k8s.io", "cert-manager.io"} <= set(groups)
    core = {r.name: r for r in client.CoreV1Api(api).get_api_resources().resources}
    assert core["pods"].namespaced and core["pods"].short_names == ["po"] and "list" in core["pods"].verbs
    assert not core["nodes"].namespaced
    assert client.AppsV1Api(api).get_api_resources().group_version == "apps/v1"
    custom = client.CustomObjectsApi(api).get_api_resources("cert-manager.io", "v1")
    issuer = custom.resources[0]
    assert (issuer.name, issuer.kind, issuer.namespaced, issuer.short_names) == ("clusterissuers", "ClusterIssuer",
                                                                                 False, ["ciss"])


def test_aggregated_discovery_when_asked_first(sandbox: Sandbox) -> None:
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    status, headers, document = sandbox.raw("GET", "/apis", {"Accept": accept})
    assert status == 200
    assert headers["content-type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    groups = {item["metadata"]["name"]: item for item in document["items"]}
    identity = groups["aadpodidentity.k8s.io"]["versions"][0]["resources"][0]
    assert identity["responseKind"] == {"group": "aadpodidentity.k8s.io", "version": "v1", "kind": "AzureIdentity"}
    assert identity["scope"] == "Namespaced"
    _, headers, legacy = sandbox.raw("GET", "/apis", {"Accept": "application/json"})
    assert legacy["kind"] == "APIGroupList" and headers["content-type"] == "application/json"


# --- Table output ---------------------------------------------------------------------------------


def test_table_for_pods(sandbox: Sandbox) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    status, _, table = sandbox.raw("GET", "/api/v1/pods?labelSelector=component%3Dnmi&limit=500", {"Accept": accept})
    assert status == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    visible = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert visible == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert [row["cells"][:4] for row in table["rows"]] == [["nmi-a", "1/1", "Running", "3"], ["nmi-b", "1/1", "Running", "0"]]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["rows"][0]["object"]["metadata"]["namespace"] == "kube-system"
    _, _, plain = sandbox.raw("GET", "/api/v1/pods", {"Accept": "application/json"})
    assert plain["kind"] == "PodList" and "kind" not in plain["items"][0]  # built-in list items carry no kind


# --- kubectl ----------------------------------------------------------------------------------------


def kubectl(sandbox: Sandbox, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sandbox",
        "clusters": [{"name": "sandbox", "cluster": {"server": sandbox.host, "certificate-authority": str(sandbox.ca_path)}}],
        "users": [{"name": "user", "user": {"token": TOKEN}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "user"}}],
    }), encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}  # no user kubeconfig or cache
    # A fresh discovery cache per call: the tests change the served kinds between calls.
    cache = tempfile.mkdtemp(prefix="kubectl-cache-", dir=tmp_path)
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", cache, *args],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_kubectl_get_pods_with_label_selector(sandbox: Sandbox, tmp_path: Path) -> None:
    result = kubectl(sandbox, tmp_path, "get", "pods", "-A", "-l", "component=nmi")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no discovery warnings
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line[:5] for line in lines[1:]] == [["kube-system", "nmi-a", "1/1", "Running", "3"],
                                                ["kube-system", "nmi-b", "1/1", "Running", "0"]]


def test_kubectl_get_custom_resources(sandbox: Sandbox, tmp_path: Path) -> None:
    result = kubectl(sandbox, tmp_path, "get", "azureidentities", "-n", "kube-addons")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["NAME", "id-a", "id-b"]
    issuers = kubectl(sandbox, tmp_path, "get", "ciss")
    assert issuers.returncode == 0, issuers.stderr
    assert issuers.stdout.split()[:6] == ["NAME", "READY", "AGE", "letsencrypt", "True", issuers.stdout.split()[5]]


def test_kubectl_reports_missing_objects_and_kinds(sandbox: Sandbox, tmp_path: Path) -> None:
    missing = kubectl(sandbox, tmp_path, "get", "pod", "nope", "-n", "kube-system")
    assert missing.returncode == 1 and 'Error from server (NotFound): pods "nope" not found' in missing.stderr
    sandbox.store.reset([o for o in scenario_objects() if o["kind"] != "CustomResourceDefinition"])
    unknown = kubectl(sandbox, tmp_path, "get", "azureidentities", "-A")
    assert unknown.returncode == 1 and 'the server doesn\'t have a resource type "azureidentities"' in unknown.stderr


def test_kubectl_create_and_delete_from_a_file(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = tmp_path / "identity.yaml"
    manifest.write_text(yaml.safe_dump(azure_identity("id-new")), encoding="utf-8")
    created = kubectl(sandbox, tmp_path, "create", "-f", str(manifest))
    assert created.returncode == 0, created.stderr
    assert "id-new" in [o["metadata"]["name"] for o in sandbox.store.objects()]
    deleted = kubectl(sandbox, tmp_path, "delete", "-f", str(manifest))
    assert deleted.returncode == 0, deleted.stderr
    assert "id-new" not in [o["metadata"]["name"] for o in sandbox.store.objects()]


# --- writes ---------------------------------------------------------------------------------------


def config_map(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"owner": "aksid"}), data={"k": "v"})


def test_create_and_delete_through_the_typed_client(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map("kube-addons", config_map("settings"))
    assert created.metadata.namespace == "kube-addons" and created.metadata.uid and created.metadata.resource_version
    assert core.read_namespaced_config_map("settings", "kube-addons").data == {"k": "v"}
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("kube-addons", config_map("settings"))
    assert caught.value.status == 409
    assert status_of(caught.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'configmaps "settings" already exists', "reason": "AlreadyExists",
        "details": {"name": "settings", "kind": "configmaps"}, "code": 409,
    }
    deleted = core.delete_namespaced_config_map("settings", "kube-addons")
    assert deleted["status"] == "Success" and deleted["details"]["name"] == "settings"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("settings", "kube-addons")
    assert caught.value.status == 404


def test_create_and_delete_a_pod_returns_the_pod(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    body = client.V1Pod(metadata=client.V1ObjectMeta(generate_name="probe-"),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))
    created = core.create_namespaced_pod("default", body)
    assert created.metadata.name.startswith("probe-") and len(created.metadata.name) == len("probe-") + 5
    assert created.status.phase == "Pending"
    deleted = core.delete_namespaced_pod(created.metadata.name, "default")
    assert isinstance(deleted, client.V1Pod) and deleted.metadata.uid == created.metadata.uid


def test_create_refuses_what_the_api_server_refuses(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("no-such-namespace", config_map("c"))
    assert caught.value.status == 404 and status_of(caught.value)["message"] == 'namespaces "no-such-namespace" not found'
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", config_map("Not_Valid"))
    assert caught.value.status == 422 and status_of(caught.value)["reason"] == "Invalid"
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta()))
    assert caught.value.status == 422


def test_unsupported_verbs_are_405_and_watch_does_not_hang(sandbox: Sandbox) -> None:
    for method in ("PUT", "PATCH"):  # on a collection, as kube-apiserver (an object takes both: test_kube_writes)
        status, _, document = sandbox.raw(method, "/api/v1/namespaces/kube-system/pods", {
            "Content-Type": "application/merge-patch+json"}, b"{}")
        assert status == 405 and document["reason"] == "MethodNotAllowed"
    status, _, document = sandbox.raw("GET", "/api/v1/pods?watch=true")
    assert status == 405 and document["kind"] == "Status"


# --- faults ---------------------------------------------------------------------------------------


def test_fault_429_reaches_the_typed_client(start: Callable[..., Sandbox]) -> None:
    sandbox = start(faults=[{"match": r"^/api/v1/pods\b", "status": 429}])
    with client.ApiClient(sandbox.configuration()) as api_client:
        core = client.CoreV1Api(api_client)
        with pytest.raises(ApiException) as caught:
            core.list_pod_for_all_namespaces()
        assert caught.value.status == 429
        assert status_of(caught.value)["reason"] == "TooManyRequests"
        assert core.list_namespaced_pod("kube-system").items  # other paths are unaffected


def test_fault_headers_and_times(start: Callable[..., Sandbox]) -> None:
    sandbox = start(faults=[
        {"match": "labelSelector=component=nmi", "status": 503, "headers": {"Retry-After": "2"}, "times": 1},
        {"match": "/nodes", "status": 403, "message": 'nodes is forbidden: User "u" cannot list resource "nodes"'},
    ])
    status, headers, document = sandbox.raw("GET", "/api/v1/pods?labelSelector=component%3Dnmi")
    assert (status, headers["retry-after"]) == (503, "2")
    assert document["reason"] == "ServiceUnavailable" and document["details"] == {"retryAfterSeconds": 2}
    assert sandbox.raw("GET", "/api/v1/pods?labelSelector=component%3Dnmi")[0] == 200  # `times: 1` is spent
    status, _, document = sandbox.raw("GET", "/api/v1/nodes")
    assert (status, document["reason"], document["message"]) == (403, "Forbidden",
                                                                 'nodes is forbidden: User "u" cannot list resource "nodes"')


def test_invalid_faults_are_refused_at_load() -> None:
    with pytest.raises(ValueError, match="not a valid regex"):
        KubeStore([], [{"match": "(", "status": 500}])
    with pytest.raises(ValueError, match="match"):
        KubeStore([], [{"status": 500}])


# --- HTTP behaviour, logging, store ------------------------------------------------------------------


def test_keep_alive_with_content_length(sandbox: Sandbox) -> None:
    connection = sandbox.connection()
    try:
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ka"}}).encode()
        status, headers, _ = request(connection, "POST", "/api/v1/namespaces/default/configmaps", {
            "Content-Type": "application/json"}, body)
        assert status == 201 and "content-length" in headers
        # A chunked body is read to its end too, so the connection stays usable.
        connection.request("POST", "/api/v1/namespaces/default/configmaps", body=iter([body[:10], body[10:]]),
                           headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                           encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 409 and json.loads(response.read())["reason"] == "AlreadyExists"
        for path in ("/api/v1/namespaces/default/configmaps/ka", "/api/v1/nodes/missing", "/version"):
            status, headers, data = request(connection, "GET", path)
            assert int(headers["content-length"]) == len(data)
        assert status == 200
    finally:
        connection.close()


def test_the_log_gets_every_request_and_never_the_token(sandbox: Sandbox, api: client.ApiClient) -> None:
    client.CoreV1Api(api).list_pod_for_all_namespaces(label_selector="component=nmi")
    with pytest.raises(ApiException):
        client.CoreV1Api(api).read_namespaced_pod("x", "default")
    sandbox.raw("GET", "/api/v1/nodes", token="wrong")
    assert [(r["method"], r["path"], r["status"]) for r in sandbox.records] == [
        ("GET", "/api/v1/pods?labelSelector=component%3Dnmi", 200),
        ("GET", "/api/v1/namespaces/default/pods/x", 404),
        ("GET", "/api/v1/nodes", 401),
    ]
    assert all(r["server"] == "kube" and "user_agent" in r for r in sandbox.records)
    assert sandbox.records[0]["user_agent"].startswith("OpenAPI-Generator")
    assert TOKEN not in json.dumps(sandbox.records)


def test_store_fills_metadata_without_mutating_the_caller() -> None:
    objects = scenario_objects()
    original = copy.deepcopy(objects)
    store = KubeStore(objects)
    assert objects == original
    stored = {o["metadata"]["name"]: o for o in store.objects()}
    assert stored["nmi-a"]["metadata"]["resourceVersion"].isdigit()
    assert stored["mic"]["metadata"]["generation"] == 1 and "generation" not in stored["nmi-a"]["metadata"]
    assert stored["node-1"]["metadata"].get("namespace") is None
    again = {o["metadata"]["name"]: o for o in KubeStore(scenario_objects()).objects()}
    assert again["nmi-a"]["metadata"]["uid"] == stored["nmi-a"]["metadata"]["uid"]  # deterministic
    stored["nmi-a"]["metadata"]["name"] = "changed"
    assert "changed" not in [o["metadata"]["name"] for o in store.objects()]  # copies


def test_store_refuses_malformed_objects() -> None:
    with pytest.raises(ValueError, match="metadata.name"):
        KubeStore([{"apiVersion": "v1", "kind": "Pod", "metadata": {}}])
    with pytest.raises(ValueError, match="listed twice"):
        KubeStore([namespace("a"), namespace("a")])
    with pytest.raises(ValueError, match="strings"):
        KubeStore([{**namespace("a"), "metadata": {"name": "a", "labels": {"enabled": True}}}])


# --- the store's interface for code in the server process (controller models) ----------------------


def stored(store: KubeStore, group: str, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
    found = store.get(group, kind, namespace, name)
    assert found is not None, (group, kind, namespace, name)
    return found


def test_store_list_kind_orders_by_namespace_then_name_and_filters_by_namespace() -> None:
    store = KubeStore(scenario_objects())
    assert [p["metadata"]["name"] for p in store.list_kind("", "Pod")] == ALL_POD_NAMES
    assert [p["metadata"]["name"] for p in store.list_kind("", "Pod", "kube-addons")] == ["pending-1"]
    identities = store.list_kind("aadpodidentity.k8s.io", "AzureIdentity")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in identities] == [
        ("default", "id-c"), ("kube-addons", "id-a"), ("kube-addons", "id-b")]
    assert store.list_kind("apps", "Pod") == [] and store.list_kind("", "Pod", "nowhere") == []
    identities[0]["metadata"]["name"] = "changed"
    assert "changed" not in [i["metadata"]["name"] for i in store.list_kind("aadpodidentity.k8s.io", "AzureIdentity")]


def test_store_get_returns_a_copy_or_none() -> None:
    store = KubeStore(scenario_objects())
    found = store.get("apps", "Deployment", "kube-system", "mic")
    assert found is not None and found["spec"]["replicas"] == 2 and found["apiVersion"] == "apps/v1"
    assert store.get("", "Node", None, "node-1") == store.get("", "Node", "", "node-1") is not None  # cluster-scoped
    assert store.get("apps", "Deployment", "default", "mic") is None
    found["spec"]["replicas"] = 9
    assert stored(store, "apps", "Deployment", "kube-system", "mic")["spec"]["replicas"] == 2


def test_store_put_creates_then_replaces_bumping_the_resource_version() -> None:
    store = KubeStore(scenario_objects())
    before = int(stored(store, "", "Node", None, "node-1")["metadata"]["resourceVersion"])
    created = store.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
                         "data": {"a": "1"}})
    meta = created["metadata"]
    assert int(meta["resourceVersion"]) > before and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert store.get("", "ConfigMap", "default", "c") == created
    replaced = store.put({**created, "data": {"a": "2"}})
    assert replaced["data"] == {"a": "2"} and replaced["metadata"]["uid"] == meta["uid"]
    assert int(replaced["metadata"]["resourceVersion"]) == int(meta["resourceVersion"]) + 1
    assert replaced["metadata"]["creationTimestamp"] == meta["creationTimestamp"]
    assert [c["data"] for c in store.list_kind("", "ConfigMap")] == [{"a": "2"}]


def test_store_put_keeps_what_the_server_owns_and_counts_spec_generations() -> None:
    store = KubeStore(scenario_objects())
    mic = stored(store, "apps", "Deployment", "kube-system", "mic")
    assert mic["metadata"]["generation"] == 1
    status_only = store.put({**mic, "status": {**mic["status"], "readyReplicas": 2},
                             "metadata": {**mic["metadata"], "uid": "forged", "resourceVersion": "1"}})
    assert status_only["metadata"]["generation"] == 1 and status_only["metadata"]["uid"] == mic["metadata"]["uid"]
    assert int(status_only["metadata"]["resourceVersion"]) > int(mic["metadata"]["resourceVersion"])
    scaled = store.put({**status_only, "spec": {**status_only["spec"], "replicas": 3}})
    assert scaled["metadata"]["generation"] == 2


def test_store_put_of_a_crd_serves_its_kind_and_refuses_malformed_objects() -> None:
    store = KubeStore([namespace("default")])
    assert store.catalog().for_kind("aadpodidentity.k8s.io", "AzureIdentity") is None
    store.put(AZURE_IDENTITY_CRD)
    assert store.catalog().for_kind("aadpodidentity.k8s.io", "AzureIdentity") is not None
    store.put(azure_identity("id-a", ns="default"))
    assert stored(store, "aadpodidentity.k8s.io", "AzureIdentity", "default", "id-a")["metadata"]["generation"] == 1
    count = len(store.objects())
    with pytest.raises(ValueError, match="metadata.name"):
        store.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    assert len(store.objects()) == count


def test_store_remove_cascades_as_a_delete_does() -> None:
    store = KubeStore(scenario_objects())
    removed = store.remove("", "Pod", "default", "web-1")
    assert removed is not None and removed["metadata"]["name"] == "web-1"
    assert store.get("", "Pod", "default", "web-1") is None and store.remove("", "Pod", "default", "web-1") is None
    assert store.remove("", "Namespace", None, "kube-addons") is not None
    assert store.list_kind("", "Pod", "kube-addons") == [] and store.list_kind("", "Pod", "kube-system")
    assert store.remove("apiextensions.k8s.io", "CustomResourceDefinition", "", "azureidentities.aadpodidentity.k8s.io")
    assert store.list_kind("aadpodidentity.k8s.io", "AzureIdentity") == []
    assert store.catalog().for_kind("aadpodidentity.k8s.io", "AzureIdentity") is None


def test_store_interface_is_thread_safe() -> None:
    store = KubeStore([namespace("default")])

    def write(worker: int) -> None:
        for index in range(50):
            name = f"w{worker}-{index}"
            store.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
            if index % 2:
                store.remove("", "ConfigMap", "default", name)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    maps = store.list_kind("", "ConfigMap", "default")
    assert len(maps) == 4 * 25
    versions = [int(m["metadata"]["resourceVersion"]) for m in maps]
    assert len(set(versions)) == len(versions)  # every write got its own resourceVersion


# --- LIST pages joined from pre-encoded items --------------------------------------------------------


def list_from_copies(store: KubeStore, resource: Resource, namespace: str | None, query: dict[str, str]) -> bytes:
    """A JSON list as the handler built it before items were pre-encoded: served copies of every object,
    filtered, paginated, then the whole document encoded (the Table and metadata forms still go this way)."""
    labels = parse_label_selector(query.get("labelSelector"))
    fields = parse_field_selector(query.get("fieldSelector"), selectable_fields(resource))
    items, revision = store.list_objects(resource, namespace)
    items = [o for o in items if labels.matches(o["metadata"].get("labels")) and fields.matches(o)]
    page, meta = paginate(resource, items, query, revision, filtered=not (labels.empty and fields.empty))
    if not resource.custom:
        page = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in page]
    return Response.json(200, {"kind": resource.list_kind_name, "apiVersion": resource.group_version,
                               "metadata": meta, "items": page}).body


def list_path(resource: Resource, namespace: str | None, query: dict[str, str]) -> str:
    prefix = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{scope}/{resource.plural}" + (f"?{urlencode(query)}" if query else "")


def assert_pages_as_from_copies(sandbox: Sandbox, group: str, kind: str, namespace: str | None,
                                query: dict[str, str]) -> int:
    """Walk every page over HTTP; each response is byte for byte the list built from copies. Returns the item count."""
    resource = sandbox.store.catalog().for_kind(group, kind)
    assert resource is not None, (group, kind)
    connection, query, count = sandbox.connection(), dict(query), 0
    try:
        for _ in range(50):
            status, headers, body = request(connection, "GET", list_path(resource, namespace, query))
            assert status == 200 and headers["content-type"] == "application/json"
            assert body == list_from_copies(sandbox.store, resource, namespace, query), query
            document = json.loads(body)
            count += len(document["items"])
            if not document["metadata"].get("continue"):
                return count
            query["continue"] = document["metadata"]["continue"]
    finally:
        connection.close()
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize(("group", "kind", "namespace", "query", "items"), [
    ("", "Pod", None, {}, 7),
    ("", "Pod", None, {"limit": "1"}, 7),
    ("", "Pod", None, {"limit": "3"}, 7),
    ("", "Pod", None, {"limit": "7"}, 7),
    ("", "Pod", None, {"limit": "0"}, 7),
    ("", "Pod", "kube-system", {"limit": "2"}, 5),
    ("", "Pod", "kube-addons", {"limit": "1"}, 1),
    ("", "Pod", "nowhere", {"limit": "1"}, 0),
    ("", "Pod", None, {"limit": "1", "labelSelector": "component"}, 4),
    ("", "Pod", None, {"limit": "2", "labelSelector": "tier in (node,frontend)"}, 3),
    ("", "Pod", None, {"limit": "1", "fieldSelector": "spec.nodeName=node-2"}, 3),
    ("", "Pod", "kube-system", {"labelSelector": "component=mic", "fieldSelector": "metadata.name!=mic-a"}, 1),
    ("", "Pod", None, {"limit": "1", "labelSelector": "app=nothing"}, 0),
    ("", "Node", None, {"limit": "1"}, 2),
    ("", "Namespace", None, {}, 3),
    ("apps", "Deployment", "kube-system", {"limit": "1"}, 1),
    ("aadpodidentity.k8s.io", "AzureIdentity", None, {"limit": "2"}, 3),
    ("aadpodidentity.k8s.io", "AzureIdentity", "kube-addons", {"limit": "1"}, 2),
    ("cert-manager.io", "ClusterIssuer", None, {"limit": "1"}, 1),
    ("apiextensions.k8s.io", "CustomResourceDefinition", None, {"limit": "1"}, 2),
])
def test_pages_joined_from_encoded_items_equal_lists_built_from_copies(
        sandbox: Sandbox, group: str, kind: str, namespace: str | None, query: dict[str, str], items: int) -> None:
    assert assert_pages_as_from_copies(sandbox, group, kind, namespace, query) == items
    # The second walk is served from the items encoded by the first.
    assert assert_pages_as_from_copies(sandbox, group, kind, namespace, query) == items


def test_custom_resource_items_are_encoded_per_served_version(start: Callable[..., Sandbox]) -> None:
    two_versions = copy.deepcopy(AZURE_IDENTITY_CRD)
    two_versions["spec"]["versions"] = [{**two_versions["spec"]["versions"][0], "name": "v1", "storage": True},
                                        {**two_versions["spec"]["versions"][0], "name": "v1beta1", "storage": False}]
    sandbox = start([namespace("kube-addons"), two_versions, azure_identity("id-a")])
    resources = sandbox.store.catalog().resources("aadpodidentity.k8s.io", "v1beta1")
    assert resources is not None
    beta = resources["azureidentities"]
    for _ in range(2):
        for version in ("v1", "v1beta1", "v1"):
            status, _, body = sandbox.raw("GET", f"/apis/aadpodidentity.k8s.io/{version}/azureidentities")
            assert status == 200 and body["items"][0]["apiVersion"] == f"aadpodidentity.k8s.io/{version}"
    assert (sandbox.raw("GET", list_path(beta, None, {}))[2]
            == json.loads(list_from_copies(sandbox.store, beta, None, {})))


def test_a_write_replaces_the_encoded_item_of_what_it_wrote(sandbox: Sandbox) -> None:
    store = sandbox.store

    def names(path: str = "/api/v1/namespaces/kube-system/pods?limit=3") -> list[str]:
        status, _, body = sandbox.raw("GET", path)
        assert status == 200
        return [item["metadata"]["name"] for item in body["items"]]

    assert names() == ["coredns-a", "mic-a", "mic-b"]  # encodes these three
    coredns = stored(store, "", "Pod", "kube-system", "coredns-a")
    store.put({**coredns, "metadata": {**coredns["metadata"], "labels": {"k8s-app": "changed"}}})
    first = sandbox.raw("GET", "/api/v1/namespaces/kube-system/pods?limit=3")[2]["items"][0]
    assert first["metadata"]["labels"] == {"k8s-app": "changed"}
    assert first["metadata"]["resourceVersion"] == stored(store, "", "Pod", "kube-system", "coredns-a")[
        "metadata"]["resourceVersion"]
    assert names("/api/v1/pods?labelSelector=k8s-app%3Dchanged") == ["coredns-a"]
    assert names("/api/v1/pods?labelSelector=k8s-app%3Dkube-dns") == []
    store.remove("", "Pod", "kube-system", "mic-a")
    store.put(pod("aaa", "kube-system", {"component": "new"}))
    assert names() == ["aaa", "coredns-a", "mic-b"]
    status, _, _ = sandbox.raw("DELETE", "/api/v1/namespaces/kube-system/pods/aaa")
    assert status == 200 and names() == ["coredns-a", "mic-b", "nmi-a"]
    assert sandbox.raw("DELETE", "/api/v1/namespaces/kube-addons")[0] == 200
    assert "pending-1" not in names("/api/v1/pods")
    store.reset([namespace("kube-system"), pod("zzz", "kube-system", {})])
    assert names() == ["zzz"]
    for query in ({}, {"limit": "1"}, {"labelSelector": "component"}):
        assert_pages_as_from_copies(sandbox, "", "Pod", None, query)


def test_store_names_and_keys_without_copying_objects() -> None:
    store = KubeStore(scenario_objects())
    assert [name for _, name in store.names("", "Pod")] == ALL_POD_NAMES
    assert store.names("", "Pod", "kube-addons") == [("kube-addons", "pending-1")]
    assert store.names("", "Node") == [("", "node-1"), ("", "node-2")] and store.names("apps", "Pod") == []
    keys = store.object_keys()
    assert keys[:2] == [("", "Namespace", "", "default"), ("", "Namespace", "", "kube-system")]
    assert len(keys) == len(store.objects()) == len(scenario_objects())


# --- selector parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "labels", "matches"), [
    ("a=b", {"a": "b"}, True),
    ("a!=b", {}, True),
    ("a notin (b)", {}, True),
    ("a in (b,)", {"a": ""}, True),
    ("a=", {"a": ""}, True),
    ("a>3", {"a": "4"}, True),
    ("a<3", {"a": "x"}, False),
    ("example.com/a=b", {"example.com/a": "b"}, True),
])
def test_label_selector_semantics(text: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(text).matches(labels) is matches


@pytest.mark.parametrize("text", [
    "a", "!a", "a=b", "a==b", "a!=b", "a in (b,c)", "a notin (b,c)", "a in (b,)", "a=", "a>3", "a<3", "a,b=c",
    "a=b,c!=d,!e", "example.com/a=b",
])
def test_a_label_predicate_matches_as_the_selector_does(text: str) -> None:
    selector = parse_label_selector(text)
    predicate = selector.predicate()
    for labels in (None, {}, {"a": "b"}, {"a": ""}, {"a": "c"}, {"a": "4"}, {"a": "2"}, {"a": "x"}, {"b": "c"},
                   {"a": "b", "b": "c", "c": "x"}, {"a": "b", "c": "d"}, {"e": ""}, {"example.com/a": "b"}):
        assert predicate(labels) is selector.matches(labels), (text, labels)


def test_field_selector_escaping() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b", fields_for("", "Pod"))
    assert selector.matches({"metadata": {"name": "a,b"}})
    with pytest.raises(SelectorError, match="can't understand"):
        parse_field_selector("metadata.name", fields_for("", "Pod"))
