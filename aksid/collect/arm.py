"""Live ARM collector: the managed cluster, the DNS zone and record sets, identities, role assignments.

The number of calls is bounded by the number of principals of interest (the DNS identity, the
kubelet identity, the control plane), never by the number of pods or assignments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.rest import HttpRequest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.dns import DnsManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient

from aksid.collect.budget import Budget, DeadlinePassed, RetryAfterTooLong
from aksid.collect.retry_policies import ArmRetryPolicy
from aksid.config import Target
from aksid.snapshot import absent, error, ok

ARM_SCOPE = "https://management.azure.com/.default"
ARM_ENTRIES = ("managedCluster", "dnsZone", "recordSets", "identities", "scaleSets", "roleAssignments",
               "accessAssignments", "roleDefinitions")
# Compute's REST API version for the node pools' scale sets, read through the DNS client's ARM pipeline (no
# azure-mgmt-compute dependency): VirtualMachineScaleSets_List, GET .../virtualMachineScaleSets?api-version=...
COMPUTE_API_VERSION = "2024-07-01"
# The managed cluster, read the same way (ManagedClusters_Get): its JSON as ARM sends it. An SDK model would keep only
# the fields its own API version declares (a preview field such as networkProfile.podLinkLocalAccess, which MIG-002
# reads, was dropped on the way), and azure-mgmt-containerservice took a fifth of a run's imports for one GET.
CONTAINER_SERVICE_API_VERSION = "2026-08-01"


def azure_credential(target: Target) -> TokenCredential:
    """DefaultAzureCredential for real runs; a token file when the profile says so (the sandbox)."""
    if target.azure_credential == "token-file":
        from aksid.azure_credentials import StaticTokenCredential

        return StaticTokenCredential(target.azure_token_file or "")
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class _Unreachable(Exception):
    """ARM cannot be reached at all; stop asking and mark the rest as errors."""


def _raw(model: Any) -> dict[str, Any]:
    """The REST shape of an SDK model (camelCase keys, nested `properties`)."""
    if isinstance(model, MutableMapping):  # typespec-generated models wrap the raw JSON
        return json.loads(json.dumps(model.as_dict()))
    return model.serialize(keep_readonly=True)


def _describe(exc: Exception, what: str, attempts: int = 1) -> str:
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    if isinstance(exc, ClientAuthenticationError):
        return f"Azure refused the credentials while reading {what} ({_first_line(exc)})"
    if isinstance(exc, (RetryAfterTooLong, DeadlinePassed)):
        return f"reading {what}: {exc}{tries}"
    if isinstance(exc, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)):
        return f"ARM did not answer while reading {what} before the collection deadline{tries}"
    if isinstance(exc, HttpResponseError) and exc.status_code == 429:
        retry = exc.response.headers.get("Retry-After") if exc.response is not None else None
        hint = f"; retry after {retry} s" if retry else ""
        return f"ARM throttled the request for {what} (429 Too Many Requests{hint}){tries}"
    if isinstance(exc, HttpResponseError) and exc.status_code is None:  # the body broke off (IncompleteReadError)
        return f"ARM's answer was cut short while reading {what} ({_first_line(exc)}){tries}"
    if isinstance(exc, HttpResponseError):
        code = getattr(getattr(exc, "error", None), "code", None) or exc.reason
        return f"ARM answered {exc.status_code} {code} while reading {what}: {_first_line(exc)}{tries}"
    return f"ARM is unreachable while reading {what} ({_first_line(exc)}){tries}"


def _first_line(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__


class ArmCollector:
    def __init__(
        self, target: Target, credential: TokenCredential, progress: Callable[[str], None] = lambda _: None,
        budget: Budget | None = None,
    ) -> None:
        self.target = target
        self.progress = progress
        self.budget = budget or Budget.for_target(target)
        kwargs: dict[str, Any] = {
            "base_url": target.arm_endpoint,
            "credential_scopes": [ARM_SCOPE],
            # azure-core's own RetryPolicy, bound to the collection's deadline and Retry-After cap
            "retry_policy": ArmRetryPolicy(self.budget),
            "connection_timeout": 10,
            "read_timeout": target.request_timeout_seconds,
            "user_agent": "aksid/0.1 (read-only)",
        }
        if target.arm_ca_bundle:
            kwargs["connection_verify"] = target.arm_ca_bundle
        sub = target.subscription_id
        self.dns = DnsManagementClient(credential, sub, **kwargs)
        self.msi = ManagedServiceIdentityClient(credential, sub, **kwargs)
        self.auth = AuthorizationManagementClient(credential, sub, **kwargs)
        self.unreachable: str | None = None

    def _fetch(self, what: str, call: Callable[[], Any]) -> dict[str, Any]:
        if self.unreachable:
            return error(self.unreachable)
        if self.budget.expired():
            return error(f"not read: the collection deadline ({self.budget.seconds:g} s) passed before {what}")
        self.progress(f"azure: reading {what} from {self.target.arm_endpoint}")
        retried_before = self.budget.retries_of_family("arm")  # ARM reads run one after another

        def attempts() -> int:
            return self.budget.retries_of_family("arm") - retried_before + 1

        try:
            return ok(call())
        except ResourceNotFoundError as exc:
            return absent(f"{what} does not exist ({_first_line(exc)})")
        except (ServiceRequestError, ServiceResponseError) as exc:
            self.unreachable = _describe(exc, what, attempts())
            return error(self.unreachable)
        except ClientAuthenticationError as exc:  # not retried, and every further read would be refused too
            self.unreachable = _describe(exc, what)
            return error(self.unreachable)
        except HttpResponseError as exc:
            if exc.status_code == 401:
                self.unreachable = f"ARM rejected the credentials (401 Unauthorized) while reading {what}"
                return error(self.unreachable)
            return error(_describe(exc, what, attempts()))
        except Exception as exc:  # noqa: BLE001 - credential chains raise many types; keep the cause
            return error(_describe(exc, what, attempts()))

    def collect(self, extra_identity_ids: list[str] | tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        """`extra_identity_ids`: identities referenced in the cluster, read one by one if not listed otherwise."""
        t = self.target
        entries: dict[str, dict[str, Any]] = {}
        entries["managedCluster"] = self._fetch(
            f"managed cluster {t.aks_resource_group}/{t.cluster_name}",
            lambda: self._get(f"/subscriptions/{t.subscription_id}/resourceGroups/{t.aks_resource_group}/providers/"
                              f"Microsoft.ContainerService/managedClusters/{t.cluster_name}"
                              f"?api-version={CONTAINER_SERVICE_API_VERSION}"),
        )
        entries["dnsZone"] = self._fetch(
            f"DNS zone {t.dns_resource_group}/{t.domain}",
            lambda: _raw(self.dns.zones.get(t.dns_resource_group, t.domain)),
        )
        if entries["dnsZone"]["status"] == "ok":
            entries["recordSets"] = self._fetch(
                f"record sets of {t.domain}",
                lambda: [_raw(r) for r in self.dns.record_sets.list_all_by_dns_zone(t.dns_resource_group, t.domain)],
            )
        else:
            entries["recordSets"] = dict(entries["dnsZone"], value=None)
        entries["identities"] = self._fetch("user-assigned identities",
                                            lambda: self._identities(entries, extra_identity_ids))
        if entries["identities"]["status"] == "ok":
            identities = entries["identities"]["value"]
            entries["federatedCredentials"] = self._fetch(
                f"federated identity credentials of {len(identities)} identities", lambda: self._federated(identities))
        else:
            entries["federatedCredentials"] = error("not read: the identities could not be read")
        entries["scaleSets"] = self._scale_sets(entries)
        if entries["identities"]["status"] == "ok":
            principals = sorted(_principals_of_interest(entries, self.target.identity_name))
            entries["roleAssignments"] = self._fetch(
                f"role assignments of {len(principals)} principals", lambda: self._assignments(principals)
            )
        else:
            entries["roleAssignments"] = error(f"not read: the identities could not be read "
                                               f"({entries['identities'].get('reason')})")
        # ACCESS-002: who holds a role at the DNS identity's scope or the zone's, or above them (atScope()).
        scopes = _access_scopes(entries, self.target)
        entries["accessAssignments"] = self._fetch(
            f"role assignments at {len(scopes)} scopes and above", lambda: self._assignments_at(scopes))
        if entries["roleAssignments"]["status"] == "ok":
            definition_ids = sorted({a["properties"]["roleDefinitionId"] for a in entries["roleAssignments"]["value"]}
                                    | {a["properties"]["roleDefinitionId"]
                                       for a in entries["accessAssignments"].get("value") or []})
            entries["roleDefinitions"] = self._fetch(
                "role definitions", lambda: [_raw(self.auth.role_definitions.get_by_id(i)) for i in definition_ids]
            )
        else:
            entries["roleDefinitions"] = error(f"not read: the role assignments could not be read "
                                               f"({entries['roleAssignments'].get('reason')})")
        return entries

    def _scale_sets(self, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The node pools' virtual machine scale sets in the cluster's node resource group, with the identities
        assigned to them (`identity.userAssignedIdentities`): what IMDS hands out on their nodes (MIG-002)."""
        if entries["managedCluster"]["status"] != "ok":
            return error(f"not read: the managed cluster could not be read ({entries['managedCluster'].get('reason')})")
        node_group = _cluster_properties(entries).get("nodeResourceGroup")
        if not node_group:
            return absent(f"managed cluster {self.target.cluster_name} names no node resource group")
        return self._fetch(f"virtual machine scale sets of {node_group}", lambda: self._list_scale_sets(node_group))

    def _list_scale_sets(self, group: str) -> list[dict[str, Any]]:
        # A generic GET through an azure-mgmt client's own pipeline: its retry policy (the budget), bearer token
        # and timeouts apply as to every other read; nextLink pages are followed as the SDKs' pagers do.
        url: str | None = (f"/subscriptions/{self.target.subscription_id}/resourceGroups/{group}/providers/"
                           f"Microsoft.Compute/virtualMachineScaleSets?api-version={COMPUTE_API_VERSION}")
        found: list[dict[str, Any]] = []
        while url:
            page = self._get(url)
            found += page.get("value") or []
            url = page.get("nextLink")
        return found

    def _get(self, url: str) -> dict[str, Any]:
        """One GET through the DNS client's own ARM pipeline (its retry policy bound to the budget, bearer token,
        timeouts), for the resources aksid reads without an SDK of their own; ARM's errors raised as the SDKs raise them."""
        response = self.dns._send_request(HttpRequest("GET", url))
        if response.status_code == 404:
            raise ResourceNotFoundError(response=response, error_format=ARMErrorFormat)
        if response.status_code >= 400:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        return response.json()

    def _identities(self, entries: dict[str, dict[str, Any]], extra_ids: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for group in dict.fromkeys((self.target.aks_resource_group, self.target.dns_resource_group)):
            for identity in self.msi.user_assigned_identities.list_by_resource_group(group):
                raw = _raw(identity)
                found[raw["id"].lower()] = raw
        # Identities referenced elsewhere (the kubelet's lives in the MC_ group) are read one by one.
        self._read_missing(found, [*_referenced_identity_ids(entries), *extra_ids])
        return list(found.values())

    def _read_missing(self, found: dict[str, dict[str, Any]], resource_ids: Iterable[str]) -> None:
        for resource_id in resource_ids:
            if resource_id.lower() in found:
                continue
            try:
                group, name = _group_and_name(resource_id)
            except ValueError:
                continue  # not a resource id at all: BIND-001 reports it
            try:
                raw = _raw(self.msi.user_assigned_identities.get(group, name))
            except ResourceNotFoundError:
                continue  # a dangling reference is evidence for BIND-001, not a collection error
            found[raw["id"].lower()] = raw

    def add_identities(self, entries: dict[str, dict[str, Any]], resource_ids: Iterable[str]) -> None:
        """Identities the cluster's AzureIdentity objects name, read once the kube side is known (the ARM reads
        run beside the kube LISTs); they add no principal of interest, so the role assignments stay as read."""
        if entries.get("identities", {}).get("status") != "ok" or self.unreachable:
            return
        found = {i["id"].lower(): i for i in entries["identities"]["value"]}
        try:
            self._read_missing(found, resource_ids)
        except Exception as exc:  # noqa: BLE001 - keep the cause, as _fetch does
            entries["identities"] = error(_describe(exc, "user-assigned identities"))
            return
        entries["identities"]["value"] = list(found.values())

    def _federated(self, identities: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """{identity id (lowercase): its federated identity credentials}; workload identity's trust (WI-003)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for identity in identities:
            try:
                group, name = _group_and_name(identity["id"])
                found[identity["id"].lower()] = [
                    _raw(c) for c in self.msi.federated_identity_credentials.list(group, name)]
            except (ValueError, ResourceNotFoundError):
                found[identity["id"].lower()] = []  # deleted meanwhile: it trusts nobody
        return found

    def _assignments(self, principals: Iterable[str]) -> list[dict[str, Any]]:
        scope = f"/subscriptions/{self.target.subscription_id}"
        found: dict[str, dict[str, Any]] = {}
        for principal in principals:
            # With a principalId filter at subscription scope ARM returns assignments at, above and below.
            for assignment in self.auth.role_assignments.list_for_scope(scope, filter=f"principalId eq '{principal}'"):
                raw = _raw(assignment)
                found[raw["id"].lower()] = raw
        return list(found.values())

    def _assignments_at(self, scopes: Iterable[str]) -> list[dict[str, Any]]:
        """Role assignments at each scope and above it (its resource group, subscription, management groups,
        root): `$filter=atScope()`, as `az role assignment list --scope <id>` without `--include-inherited` would
        not give. Group assignments are listed as the group; its members are not read."""
        found: dict[str, dict[str, Any]] = {}
        for scope in scopes:
            for assignment in self.auth.role_assignments.list_for_scope(scope, filter="atScope()"):
                raw = _raw(assignment)
                found[raw["id"].lower()] = raw
        return list(found.values())


def _access_scopes(entries: dict[str, dict[str, Any]], target: Target) -> list[str]:
    """The DNS identity's resource id (when it was read) and the zone's: ACCESS-002 judges who can act on them."""
    named = [i["id"] for i in entries.get("identities", {}).get("value") or []
             if i.get("name", "").lower() == target.identity_name.lower() and i.get("id")]
    return [*named[:1], target.zone_id]


def _cluster_properties(entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    cluster = entries.get("managedCluster", {}).get("value") or {}
    return cluster.get("properties") or {}


def _referenced_identity_ids(entries: dict[str, dict[str, Any]]) -> list[str]:
    props = _cluster_properties(entries)
    ids = [
        (entry.get("identity") or {}).get("resourceId")
        for entry in (props.get("podIdentityProfile") or {}).get("userAssignedIdentities") or []
    ]
    ids.append(((props.get("identityProfile") or {}).get("kubeletidentity") or {}).get("resourceId"))
    return [i for i in ids if i]


def _principals_of_interest(entries: dict[str, dict[str, Any]], identity_name: str) -> set[str]:
    """The DNS identities, the kubelet identity and the control plane: whose rights the checks judge."""
    props = _cluster_properties(entries)
    principals: set[str] = set()
    for entry in (props.get("podIdentityProfile") or {}).get("userAssignedIdentities") or []:
        if (entry.get("identity") or {}).get("objectId"):
            principals.add(entry["identity"]["objectId"])
    kubelet = (props.get("identityProfile") or {}).get("kubeletidentity") or {}
    if kubelet.get("objectId"):
        principals.add(kubelet["objectId"])
    cluster = entries.get("managedCluster", {}).get("value") or {}
    if (cluster.get("identity") or {}).get("principalId"):
        principals.add(cluster["identity"]["principalId"])
    for scale_set in entries.get("scaleSets", {}).get("value") or []:  # whatever IMDS hands out there (MIG-002)
        for assigned in ((scale_set.get("identity") or {}).get("userAssignedIdentities") or {}).values():
            if (assigned or {}).get("principalId"):
                principals.add(assigned["principalId"])
    for identity in entries.get("identities", {}).get("value") or []:
        if identity.get("name", "").lower() == identity_name.lower() and (identity.get("properties") or {}).get("principalId"):
            principals.add(identity["properties"]["principalId"])
    return principals


def _group_and_name(resource_id: str) -> tuple[str, str]:
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index("resourcegroups") + 1], parts[-1]
