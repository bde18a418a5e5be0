"""The fake ARM, exercised through the real azure-mgmt-* clients over HTTPS.

Self-contained: its fixtures live here (no conftest), so it runs with `--noconftest`.
"""

from __future__ import annotations

import http.client
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.dns import DnsManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient

from aksid.azure_credentials import StaticTokenCredential
from aksid.sandbox.armapi import ArmStore, make_arm_handler
from aksid.sandbox.https import start_https_server
from aksid.sandbox.tls import SandboxCA

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
TENANT = "8a3f4c1e-5b2d-4e6f-9a7b-1c2d3e4f5a6b"
AKS_RG, DNS_RG, OTHER_RG = "rg-aks", "rg-dns", "rg-other"
NODE_RG = "MC_rg-aks_aks1_westeurope"
ZONE = "example.com"
SUB_ID = f"/subscriptions/{SUB}"
ZONE_ID = f"{SUB_ID}/resourceGroups/{DNS_RG}/providers/Microsoft.Network/dnszones/{ZONE}"
CLUSTER_ID = f"{SUB_ID}/resourcegroups/{AKS_RG}/providers/Microsoft.ContainerService/managedClusters/aks1"
EXTERNAL_DNS_OID = "3c1d8b53-1111-4a4a-9c9c-000000000001"
KUBELET_OID = "3c1d8b53-2222-4a4a-9c9c-000000000002"
STRANGER_OID = "3c1d8b53-3333-4a4a-9c9c-000000000003"
DNS_ZONE_CONTRIBUTOR = "befefa01-2a29-4197-83a8-272ff33ce314"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
TXT_WRITER = "5d6e7f80-aaaa-4bbb-8ccc-123456789abc"
ARM_SCOPE = "https://management.azure.com/.default"


def identity_id(group: str, name: str) -> str:
    return f"{SUB_ID}/resourcegroups/{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"


def role_definition_id(guid: str) -> str:
    return f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def identity(group: str, name: str, principal: str) -> dict[str, Any]:
    return {
        "id": identity_id(group, name), "name": name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": "westeurope", "tags": {},
        "properties": {"tenantId": TENANT, "principalId": principal, "clientId": f"{secrets.token_hex(4)}-c1d2-4e3f-8a9b-0123"},
    }


def record_set(kind: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    fqdn = f"{ZONE}." if name == "@" else f"{name}.{ZONE}."
    return {
        "id": f"{ZONE_ID}/{kind}/{name}", "name": name, "type": f"Microsoft.Network/dnszones/{kind}",
        "etag": secrets.token_hex(8), "properties": {"TTL": 300, "fqdn": fqdn, "provisioningState": "Succeeded", **properties},
    }


def role_definition(guid: str, name: str, kind: str, actions: list[str]) -> dict[str, Any]:
    return {
        "id": role_definition_id(guid), "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": name, "type": kind, "description": name,
            "assignableScopes": ["/"] if kind == "BuiltInRole" else [SUB_ID],
            "permissions": [{"actions": actions, "notActions": [], "dataActions": [], "notDataActions": []}],
        },
    }


def assignment(guid: str, scope: str, principal: str, role: str) -> dict[str, Any]:
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}", "name": guid,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": role_definition_id(role), "principalId": principal, "principalType": "ServicePrincipal",
            "scope": scope, "createdOn": "2024-05-01T10:00:00.0000000Z",
        },
    }


def resources() -> list[dict[str, Any]]:
    cluster = {
        "id": CLUSTER_ID, "name": "aks1", "type": "Microsoft.ContainerService/ManagedClusters", "location": "westeurope",
        "sku": {"name": "Base", "tier": "Free"},
        "identity": {"type": "SystemAssigned", "principalId": "3c1d8b53-4444-4a4a-9c9c-000000000004", "tenantId": TENANT},
        "properties": {
            "provisioningState": "Succeeded", "kubernetesVersion": "1.29.4", "dnsPrefix": "aks1", "nodeResourceGroup": NODE_RG,
            "podIdentityProfile": {
                "enabled": True,
                "userAssignedIdentities": [{
                    "name": "external-dns", "namespace": "external-dns", "provisioningState": "Assigned",
                    "identity": {
                        "resourceId": identity_id(AKS_RG, "id-external-dns"), "clientId": "c-1", "objectId": EXTERNAL_DNS_OID,
                    },
                }],
            },
            "identityProfile": {"kubeletidentity": {
                "resourceId": identity_id(NODE_RG, "aks1-agentpool"), "clientId": "c-2", "objectId": KUBELET_OID,
            }},
        },
    }
    zone = {
        "id": ZONE_ID, "name": ZONE, "type": "Microsoft.Network/dnszones", "location": "global", "etag": "00000002-0000",
        "tags": {}, "properties": {
            "maxNumberOfRecordSets": 10000, "numberOfRecordSets": 6, "zoneType": "Public",
            "nameServers": ["ns1-01.azure-dns.com.", "ns2-01.azure-dns.net.", "ns3-01.azure-dns.org.", "ns4-01.azure-dns.info."],
        },
    }
    records = [
        record_set("NS", "@", {"NSRecords": [{"nsdname": "ns1-01.azure-dns.com."}, {"nsdname": "ns2-01.azure-dns.net."}]}),
        record_set("SOA", "@", {"SOARecord": {
            "email": "azuredns-hostmaster.microsoft.com", "expireTime": 2419200, "host": "ns1-01.azure-dns.com.",
            "minimumTTL": 300, "refreshTime": 3600, "retryTime": 300, "serialNumber": 1,
        }}),
        record_set("A", "www", {"ARecords": [{"ipv4Address": "20.0.0.10"}]}),
        record_set("A", "api", {"ARecords": [{"ipv4Address": "20.0.0.11"}]}),
        record_set("TXT", "external-dns-a-www", {"TXTRecords": [{"value": ["heritage=external-dns,external-dns/owner=aks1"]}]}),
        record_set("TXT", "external-dns-a-api", {"TXTRecords": [{"value": ["heritage=external-dns,external-dns/owner=aks1"]}]}),
    ]
    identities = [
        identity(AKS_RG, "id-external-dns", EXTERNAL_DNS_OID),
        identity(AKS_RG, "id-unused", STRANGER_OID),
        identity(AKS_RG, "id-spare", "3c1d8b53-5555-4a4a-9c9c-000000000005"),
        identity(NODE_RG, "aks1-agentpool", KUBELET_OID),
    ]
    definitions = [
        role_definition(DNS_ZONE_CONTRIBUTOR, "DNS Zone Contributor", "BuiltInRole", ["Microsoft.Network/dnsZones/*"]),
        role_definition(READER, "Reader", "BuiltInRole", ["*/read"]),
        role_definition(TXT_WRITER, "DNS TXT Writer", "CustomRole", ["Microsoft.Network/dnsZones/TXT/*"]),
    ]
    rg = f"{SUB_ID}/resourceGroups"
    assignments = [
        assignment("a0000000-0000-0000-0000-000000000001", ZONE_ID, EXTERNAL_DNS_OID, DNS_ZONE_CONTRIBUTOR),
        assignment("a0000000-0000-0000-0000-000000000002", f"{rg}/{DNS_RG}", EXTERNAL_DNS_OID, READER),
        assignment("a0000000-0000-0000-0000-000000000003", SUB_ID, EXTERNAL_DNS_OID, READER),
        assignment("a0000000-0000-0000-0000-000000000004", f"{rg}/{AKS_RG}", EXTERNAL_DNS_OID, TXT_WRITER),
        assignment("a0000000-0000-0000-0000-000000000005", f"{rg}/{AKS_RG}", KUBELET_OID, READER),
        assignment("a0000000-0000-0000-0000-000000000006", f"{rg}/{OTHER_RG}", STRANGER_OID, READER),
    ]
    return [cluster, zone, *records, *identities, *definitions, *assignments]


@dataclass
class Arm:
    base_url: str
    ca_path: Path
    token: str
    token_file: Path
    store: ArmStore
    records: list[dict[str, Any]]

    def kwargs(self, **overrides: Any) -> dict[str, Any]:
        """What aksid's collector passes to every client."""
        return {
            "base_url": self.base_url, "credential_scopes": [ARM_SCOPE], "connection_verify": str(self.ca_path),
            "retry_total": 0, "connection_timeout": 5, "read_timeout": 10, "user_agent": "aksid-test", **overrides,
        }

    def client(self, cls: type, credential: Any = None, **overrides: Any) -> Any:
        return cls(credential or StaticTokenCredential(self.token_file), SUB, **self.kwargs(**overrides))

    def get(self, path: str, token: str | None = "default", method: str = "GET", **kwargs: Any) -> requests.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {self.token if token == 'default' else token}"}
        return requests.request(method, self.base_url + path, headers=headers, verify=str(self.ca_path), timeout=10, **kwargs)

    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def connection(self) -> http.client.HTTPSConnection:
        """A raw keep-alive connection that sends paths verbatim."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        return http.client.HTTPSConnection("127.0.0.1", int(self.base_url.rsplit(":", 1)[1]), context=context, timeout=5)

    def logged(self, count: int) -> list[dict[str, Any]]:
        """The last `count` records; the server logs after answering, so wait for the log to catch up."""
        deadline = time.monotonic() + 5
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.records)


@pytest.fixture(scope="module")
def arm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arm]:
    directory = tmp_path_factory.mktemp("arm")
    ca = SandboxCA.create(directory)
    cert, key = ca.issue_server_cert(directory, "arm")
    token = secrets.token_urlsafe(32)
    token_file = directory / "arm-token"
    token_file.write_text(token + "\n", encoding="utf-8")
    records: list[dict[str, Any]] = []
    store = ArmStore(resources())
    server = start_https_server(make_arm_handler(store, token, records.append), cert, key)
    try:
        yield Arm(f"https://127.0.0.1:{server.server_address[1]}", ca.cert_path, token, token_file, store, records)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def arm(arm_server: Arm) -> Iterator[Arm]:
    """The shared server with pristine resources, no faults and an empty log."""
    arm_server.store.reset(resources())
    arm_server.records.clear()
    yield arm_server
    arm_server.store.reset(resources())


def rest(model: Any) -> dict[str, Any]:
    """REST shape of a model: typespec models' as_dict() is; msrest models need serialize()."""
    if isinstance(model, MutableMapping):
        return json.loads(json.dumps(model.as_dict()))
    return model.serialize(keep_readonly=True)


def requests_to(records: list[dict[str, Any]], fragment: str) -> list[dict[str, Any]]:
    return [record for record in records if fragment.lower() in record["path"].lower()]


# --------------------------------------------------------------------------- the SDK operations


def test_managed_cluster_get_returns_the_stored_cluster(arm: Arm) -> None:
    cluster = arm.client(ContainerServiceClient).managed_clusters.get(AKS_RG, "aks1")
    raw = rest(cluster)
    assert raw["id"] == CLUSTER_ID  # stored casing (resourcegroups) kept
    profile = raw["properties"]["podIdentityProfile"]
    assert profile["enabled"] is True
    assert profile["userAssignedIdentities"][0]["identity"]["objectId"] == EXTERNAL_DNS_OID
    assert raw["properties"]["identityProfile"]["kubeletidentity"]["objectId"] == KUBELET_OID
    assert cluster.as_dict()["properties"]["kubernetesVersion"] == "1.29.4"  # typespec model: as_dict is REST-shaped


def test_dns_zone_get_in_another_resource_group(arm: Arm) -> None:
    zone = arm.client(DnsManagementClient).zones.get(DNS_RG, ZONE)
    assert zone.name_servers[0] == "ns1-01.azure-dns.com."
    raw = rest(zone)
    assert raw["id"] == ZONE_ID
    assert raw["properties"]["nameServers"] == resources()[1]["properties"]["nameServers"]


@pytest.mark.parametrize("operation", ["list_all_by_dns_zone", "list_by_dns_zone"])
def test_record_set_lists_follow_next_links(arm: Arm, operation: str) -> None:
    client = arm.client(DnsManagementClient)
    records = [rest(r) for r in getattr(client.record_sets, operation)(DNS_RG, ZONE)]
    assert [(r["type"].rsplit("/", 1)[-1], r["name"]) for r in records] == [
        ("NS", "@"), ("SOA", "@"), ("A", "www"), ("A", "api"), ("TXT", "external-dns-a-www"), ("TXT", "external-dns-a-api"),
    ]
    assert records[2]["properties"]["ARecords"] == [{"ipv4Address": "20.0.0.10"}]
    assert records[4]["properties"]["TXTRecords"][0]["value"] == ["heritage=external-dns,external-dns/owner=aks1"]
    assert records[1]["properties"]["SOARecord"]["host"] == "ns1-01.azure-dns.com."
    suffix = "/all" if operation == "list_all_by_dns_zone" else "/recordsets"
    pages = requests_to(arm.logged(3), suffix)
    assert len(pages) == 3 and all(page["status"] == 200 for page in pages)  # 6 record sets, 2 a page


def test_record_sets_by_type_and_by_name(arm: Arm) -> None:
    client = arm.client(DnsManagementClient)
    assert sorted(r.name for r in client.record_sets.list_by_type(DNS_RG, ZONE, "A")) == ["api", "www"]
    assert [r.name for r in client.record_sets.list_by_type(DNS_RG, ZONE, "CNAME")] == []
    soa = client.record_sets.get(DNS_RG, ZONE, "@", "SOA")  # `@` travels percent-encoded
    assert soa.soa_record.serial_number == 1


def test_user_assigned_identities_list_and_get(arm: Arm) -> None:
    client = arm.client(ManagedServiceIdentityClient)
    listed = [rest(i) for i in client.user_assigned_identities.list_by_resource_group(AKS_RG)]
    assert [i["name"] for i in listed] == ["id-external-dns", "id-unused", "id-spare"]  # over two pages
    assert listed[0]["properties"]["principalId"] == EXTERNAL_DNS_OID
    kubelet = rest(client.user_assigned_identities.get(NODE_RG, "aks1-agentpool"))
    assert kubelet["id"] == identity_id(NODE_RG, "aks1-agentpool")
    assert kubelet["properties"]["tenantId"] == TENANT


# --------------------------------------------------------------------------- role assignments


def assignment_scopes(listed: Any) -> list[str]:
    return sorted(rest(a)["properties"]["scope"] for a in listed)


def test_principal_filter_returns_assignments_at_above_and_below(arm: Arm) -> None:
    auth = arm.client(AuthorizationManagementClient)
    rg = f"{SUB_ID}/resourceGroups"
    at_subscription = auth.role_assignments.list_for_scope(SUB_ID, filter=f"principalId eq '{EXTERNAL_DNS_OID}'")
    assert assignment_scopes(at_subscription) == sorted([ZONE_ID, f"{rg}/{DNS_RG}", SUB_ID, f"{rg}/{AKS_RG}"])
    at_group = auth.role_assignments.list_for_scope(f"{rg}/{DNS_RG}", filter=f"principalId eq '{EXTERNAL_DNS_OID}'")
    assert assignment_scopes(at_group) == sorted([ZONE_ID, f"{rg}/{DNS_RG}", SUB_ID])  # not the sibling group


def test_at_scope_excludes_assignments_below(arm: Arm) -> None:
    auth = arm.client(AuthorizationManagementClient)
    group = f"{SUB_ID}/resourceGroups/{DNS_RG}"
    listed = auth.role_assignments.list_for_scope(group, filter=f"atScope() and principalId eq '{EXTERNAL_DNS_OID}'")
    assert assignment_scopes(listed) == sorted([group, SUB_ID])
    everyone_at_or_above = auth.role_assignments.list_for_scope(ZONE_ID, filter="atScope()")
    assert assignment_scopes(everyone_at_or_above) == sorted([ZONE_ID, group, SUB_ID])


def test_assigned_to_and_no_filter(arm: Arm) -> None:
    auth = arm.client(AuthorizationManagementClient)
    assigned = auth.role_assignments.list_for_scope(SUB_ID, filter=f"assignedTo('{KUBELET_OID}')")
    assert [rest(a)["properties"]["principalId"] for a in assigned] == [KUBELET_OID]
    assert len(list(auth.role_assignments.list_for_scope(SUB_ID))) == 6  # everything at and below, paged by 2
    assert len(list(auth.role_assignments.list_for_subscription(filter=f"principalId eq '{EXTERNAL_DNS_OID}'"))) == 4
    assert len(list(auth.role_assignments.list_for_subscription())) == 6


def test_filter_survives_paging(arm: Arm) -> None:
    auth = arm.client(AuthorizationManagementClient)
    listed = list(auth.role_assignments.list_for_scope(SUB_ID, filter=f"principalId eq '{EXTERNAL_DNS_OID}'"))
    assert {a.principal_id for a in listed} == {EXTERNAL_DNS_OID}
    pages = requests_to(arm.logged(2), "/roleAssignments")
    assert len(pages) == 2
    follow_up = parse_qs(urlsplit(pages[1]["path"]).query)
    assert follow_up["$filter"] == [f"principalId eq '{EXTERNAL_DNS_OID}'"] and follow_up["$skiptoken"] == ["2"]


def test_unsupported_filter_is_a_400(arm: Arm) -> None:
    auth = arm.client(AuthorizationManagementClient)
    with pytest.raises(HttpResponseError) as caught:
        list(auth.role_assignments.list_for_scope(SUB_ID, filter="roleDefinitionId eq 'x'"))
    assert caught.value.status_code == 400 and caught.value.error.code == "UnsupportedQuery"


# --------------------------------------------------------------------------- role definitions


def test_role_definition_get_by_id_in_both_forms(arm: Arm) -> None:
    auth = arm.client(AuthorizationManagementClient)
    by_subscription_id = auth.role_definitions.get_by_id(role_definition_id(DNS_ZONE_CONTRIBUTOR))
    tenant_form = f"/providers/Microsoft.Authorization/roleDefinitions/{DNS_ZONE_CONTRIBUTOR}"
    by_tenant_id = auth.role_definitions.get_by_id(tenant_form)
    assert by_subscription_id.role_name == by_tenant_id.role_name == "DNS Zone Contributor"
    assert rest(by_tenant_id)["id"] == role_definition_id(DNS_ZONE_CONTRIBUTOR)  # stored id, as stored
    assert rest(by_tenant_id)["properties"]["permissions"][0]["actions"] == ["Microsoft.Network/dnsZones/*"]


def test_role_definition_get_from_any_scope(arm: Arm) -> None:
    auth = arm.client(AuthorizationManagementClient)
    assert auth.role_definitions.get(ZONE_ID, READER).role_name == "Reader"
    assert auth.role_definitions.get(f"{SUB_ID}/resourceGroups/{AKS_RG}", TXT_WRITER).role_type == "CustomRole"
    with pytest.raises(ResourceNotFoundError) as caught:
        auth.role_definitions.get(SUB_ID, "00000000-0000-0000-0000-000000000000")
    assert caught.value.error.code == "RoleDefinitionDoesNotExist"


def test_role_definition_list_filters(arm: Arm) -> None:
    auth = arm.client(AuthorizationManagementClient)
    assert [d.name for d in auth.role_definitions.list(SUB_ID, filter="roleName eq 'DNS Zone Contributor'")] == [
        DNS_ZONE_CONTRIBUTOR
    ]
    assert [d.role_name for d in auth.role_definitions.list(ZONE_ID, filter="type eq 'CustomRole'")] == ["DNS TXT Writer"]
    assert len(list(auth.role_definitions.list(SUB_ID))) == 3


# --------------------------------------------------------------------------- errors


def test_not_found_codes(arm: Arm) -> None:
    aks, dns = arm.client(ContainerServiceClient), arm.client(DnsManagementClient)
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: aks.managed_clusters.get(AKS_RG, "missing"), "ResourceNotFound"),
        (lambda: aks.managed_clusters.get("rg-missing", "aks1"), "ResourceGroupNotFound"),
        (lambda: dns.zones.get(DNS_RG, "missing.example"), "ResourceNotFound"),
        (lambda: list(dns.record_sets.list_all_by_dns_zone(DNS_RG, "missing.example")), "ParentResourceNotFound"),
        (lambda: dns.record_sets.get(DNS_RG, ZONE, "nope", "A"), "NotFound"),
        (lambda: arm.client(ManagedServiceIdentityClient).user_assigned_identities.get(AKS_RG, "nope"), "ResourceNotFound"),
    ]
    for call, code in cases:
        with pytest.raises(ResourceNotFoundError) as caught:
            call()
        assert caught.value.status_code == 404 and caught.value.error.code == code


def test_wrong_token_fails_fast_without_looping(arm: Arm, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token", encoding="utf-8")
    client = arm.client(DnsManagementClient, credential=StaticTokenCredential(wrong))
    started = time.monotonic()
    with pytest.raises(ClientAuthenticationError) as caught:
        client.zones.get(DNS_RG, ZONE)
    assert time.monotonic() - started < 3
    assert caught.value.status_code == 401 and caught.value.error.code == "InvalidAuthenticationToken"
    time.sleep(0.2)  # room for a retry, were the challenge policy to loop
    assert len(arm.logged(1)) == 1  # it gave up after one request


def test_missing_authorization_is_a_401_with_a_challenge(arm: Arm) -> None:
    response = arm.get(f"{ZONE_ID}?api-version=2018-05-01", token=None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer authorization_uri="https://login.microsoftonline.com/{TENANT}"')
    assert 'error="invalid_token"' in challenge


def test_missing_api_version_is_a_400(arm: Arm) -> None:
    response = arm.get(ZONE_ID)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["x-ms-request-id"]


def test_paths_match_case_insensitively_and_ignore_empty_segments(arm: Arm) -> None:
    response = arm.get(f"{ZONE_ID.upper().replace('EXAMPLE.COM', 'example.com')}?API-VERSION=2018-05-01")
    assert response.status_code == 200 and response.json()["id"] == ZONE_ID
    # `/{scope}` with a scope that has its own leading slash; http.client sends it verbatim (requests would not).
    connection = arm.connection()
    try:
        connection.request("GET", f"/{role_definition_id(READER)}?api-version=2022-04-01", headers=arm.auth_header())
        doubled = connection.getresponse()
        assert doubled.status == 200 and json.loads(doubled.read())["name"] == READER
    finally:
        connection.close()


def test_resource_groups_are_implied_by_their_members(arm: Arm) -> None:
    group = arm.get(f"{SUB_ID}/resourceGroups/{DNS_RG.upper()}?api-version=2021-04-01")
    assert group.status_code == 200 and group.json()["id"] == f"{SUB_ID}/resourceGroups/{DNS_RG}"
    names: list[str] = []
    url: str | None = f"{arm.base_url}{SUB_ID}/resourcegroups?api-version=2021-04-01"
    while url:
        assert url.startswith(arm.base_url + "/")  # nextLink: absolute, back to this server
        page = requests.get(url, headers={"Authorization": f"Bearer {arm.token}"}, verify=str(arm.ca_path), timeout=10).json()
        names += [group["name"] for group in page["value"]]
        url = page.get("nextLink")
    assert sorted(names) == sorted([AKS_RG, DNS_RG, NODE_RG, OTHER_RG])


def test_head_answers_like_get_without_a_body(arm: Arm) -> None:
    found, missing = (arm.get(f"{ZONE_ID}{suffix}?api-version=2018-05-01", method="HEAD") for suffix in ("", "x"))
    assert (found.status_code, found.content) == (200, b"")
    assert missing.status_code == 404


def test_throttling_fault_surfaces_429_without_sleeping(arm: Arm) -> None:
    fault = {"match": r"dnszones/example\.com\?", "status": 429, "headers": {"Retry-After": "30"}, "message": "slow down"}
    arm.store.reset(resources(), [fault])
    client = arm.client(DnsManagementClient)
    started = time.monotonic()
    with pytest.raises(HttpResponseError) as caught:
        client.zones.get(DNS_RG, ZONE)
    assert time.monotonic() - started < 3  # retry_total=0: Retry-After is not honoured
    assert caught.value.status_code == 429 and caught.value.error.code == "TooManyRequests"
    assert caught.value.response.headers["Retry-After"] == "30"
    assert [r.name for r in client.record_sets.list_by_type(DNS_RG, ZONE, "A")]  # other paths unaffected


def test_fault_with_times_fails_only_that_often(arm: Arm) -> None:
    arm.store.reset(resources(), [{"match": "managedClusters", "status": 500, "times": 1}])
    aks = arm.client(ContainerServiceClient)
    with pytest.raises(HttpResponseError) as caught:
        aks.managed_clusters.get(AKS_RG, "aks1")
    assert caught.value.status_code == 500 and caught.value.error.code == "InternalServerError"
    assert aks.managed_clusters.get(AKS_RG, "aks1").name == "aks1"


def test_writes_are_refused(arm: Arm) -> None:
    for method in ("PUT", "PATCH", "POST", "DELETE"):
        response = arm.get(f"{ZONE_ID}?api-version=2018-05-01", method=method, json={"location": "global"})
        assert response.status_code == 405, method
        assert response.json()["error"]["code"] == "MethodNotAllowed"


def test_keep_alive_connection_survives_a_refused_write(arm: Arm) -> None:
    connection = arm.connection()
    headers = {**arm.auth_header(), "Content-Type": "application/json"}
    try:
        connection.request("PUT", f"{ZONE_ID}?api-version=2018-05-01", body=b'{"location": "global"}', headers=headers)
        first = connection.getresponse()
        assert first.status == 405 and json.loads(first.read())["error"]["code"] == "MethodNotAllowed"
        connection.request("GET", f"{ZONE_ID}?api-version=2018-05-01", headers=headers)  # same connection
        second = connection.getresponse()
        assert second.status == 200 and json.loads(second.read())["name"] == ZONE
    finally:
        connection.close()


def test_the_log_records_every_request_and_never_the_token(arm: Arm) -> None:
    arm.client(DnsManagementClient).zones.get(DNS_RG, ZONE)
    arm.get(ZONE_ID)  # 400
    arm.get(f"{ZONE_ID}?api-version=1", token="wrong")  # 401
    records = arm.logged(3)
    # Threads log after answering, so records of back-to-back requests may swap places.
    records.sort(key=lambda record: record["status"])
    assert [(r["server"], r["method"], r["status"]) for r in records] == [("arm", "GET", s) for s in (200, 400, 401)]
    zone_path = f"/subscriptions/{SUB}/resourceGroups/{DNS_RG}/providers/Microsoft.Network/dnsZones/{ZONE}"
    assert records[0]["path"] == f"{zone_path}?api-version=2018-05-01"
    assert records[0]["user_agent"].startswith("aksid-test azsdk-python-mgmt-dns/")
    assert arm.token not in json.dumps(records)


def test_every_client_sends_an_api_version_the_server_accepts(arm: Arm) -> None:
    arm.client(ContainerServiceClient).managed_clusters.get(AKS_RG, "aks1")
    arm.client(DnsManagementClient).zones.get(DNS_RG, ZONE)
    list(arm.client(ManagedServiceIdentityClient).user_assigned_identities.list_by_resource_group(AKS_RG))
    arm.client(AuthorizationManagementClient).role_definitions.get_by_id(role_definition_id(READER))
    seen = {parse_qs(urlsplit(r["path"]).query)["api-version"][0] for r in arm.logged(5)}
    assert len(seen) == 4 and all(len(version) >= 10 for version in seen), seen


def test_parallel_clients_are_served(arm: Arm) -> None:
    errors: list[BaseException] = []

    def read() -> None:
        try:
            assert len(list(arm.client(DnsManagementClient).record_sets.list_all_by_dns_zone(DNS_RG, ZONE))) == 6
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors and not any(thread.is_alive() for thread in threads)


# --------------------------------------------------------------------------- the store


def test_store_rejects_bad_documents() -> None:
    zone = resources()[1]
    with pytest.raises(ValueError, match="stored twice"):
        ArmStore([zone, {**zone, "id": zone["id"].upper()}])
    with pytest.raises(ValueError, match="'type'"):
        ArmStore([{"id": "/subscriptions/x", "name": "x"}])
    with pytest.raises(ValueError, match="regex"):
        ArmStore([], [{"match": "(", "status": 500}])
    with pytest.raises(ValueError, match="page_size"):
        ArmStore([], page_size=0)


def test_page_size_is_configurable(arm_server: Arm) -> None:
    arm_server.store.reset(resources())
    arm_server.store.page_size = 100
    arm_server.records.clear()
    try:
        assert len(list(arm_server.client(DnsManagementClient).record_sets.list_all_by_dns_zone(DNS_RG, ZONE))) == 6
        assert len(arm_server.logged(1)) == 1
    finally:
        arm_server.store.page_size = ArmStore([]).page_size


# --------------------------------------------------------------------------- StaticTokenCredential


def test_static_token_credential(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  secret-value\n", encoding="utf-8")
    with StaticTokenCredential(token_file) as credential:
        token = credential.get_token(ARM_SCOPE)
        assert token.token == "secret-value" and token.expires_on > time.time() + 600
        info = credential.get_token_info(ARM_SCOPE, options={"claims": "x"})
        assert info.token == "secret-value" and info.token_type == "Bearer"
        assert "secret-value" not in repr(credential)
        token_file.write_text("rotated", encoding="utf-8")
        assert credential.get_token(ARM_SCOPE).token == "rotated"  # read on every request
        with pytest.raises(ValueError):
            credential.get_token()


@pytest.mark.parametrize("setup", ["missing", "empty", "unset"])
def test_static_token_credential_errors(tmp_path: Path, setup: str) -> None:
    path = tmp_path / "token"
    if setup == "empty":
        path.write_text("\n", encoding="utf-8")
    credential = StaticTokenCredential("" if setup == "unset" else path)
    with pytest.raises(ClientAuthenticationError):
        credential.get_token(ARM_SCOPE)
