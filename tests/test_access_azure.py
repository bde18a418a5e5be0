"""The Azure side of the access graph (aksid/access/azure.py) and ACCESS-002.

Role definitions below are Azure's built-in roles as the Azure RBAC built-in roles reference publishes them (the
JSON block of each role, `az role definition list` shape), transcribed unchanged in their actions/notActions:
- Owner, Contributor, User Access Administrator, Role Based Access Control Administrator: MicrosoftDocs/azure-docs
  `articles/role-based-access-control/built-in-roles/privileged.md` (commit 0b8729eaf7eb0aabc6390cb17348d19761285f12);
- Managed Identity Contributor, Managed Identity Operator: same repository,
  `articles/role-based-access-control/built-in-roles/identity.md` (commit 1b4e136a1da731e1ed16444eb6ce5701bcd8c0f4);
- DNS Zone Contributor: same repository, `articles/role-based-access-control/built-in-roles/networking.md`;
- Reader: same repository, `articles/role-based-access-control/built-in-roles.md` ("General": `*/read`).
Licence of the docs' samples: MIT (the repository's LICENSE-CODE). Expectations follow learn.microsoft.com
"Understand Azure role definitions" (Actions minus NotActions, case-insensitive, `*` wildcards) and each role's
documented purpose ("Read and Assign User Assigned Identity"; "Lets you manage user access to Azure resources").

The scenario tests compare each scenario's whole set of (principal, capability, scope) paths, read from the snapshot
the sandbox's `aksid demo` collected (fake ARM answering `$filter=atScope()` at the identity and the zone).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aksid.access.azure import (
    ASSIGN,
    FEDERATE,
    GRANT,
    action_matches,
    azure_paths,
    control_plane_principals,
    granting_action,
)
from aksid.arm_ids import normalise
from aksid.snapshot import Snapshot
from aksid.snapshot_target import target_from_snapshot

_SUPPORT = ["Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*"]
BUILTIN: dict[str, tuple[str, list[str], list[str]]] = {  # name: (GUID, actions, notActions)
    "Owner": ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", ["*"], []),
    "Contributor": ("b24988ac-6180-42a0-ab88-20f7382dd24c", ["*"], [
        "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write",
        "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action",
        "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
        "Microsoft.Resources/deploymentStacks/manageDenySetting/action", "Microsoft.Subscription/cancel/action",
        "Microsoft.Subscription/enable/action"]),
    "Reader": ("acdd72a7-3385-48ef-bd42-f606fba81ae7", ["*/read"], []),
    "User Access Administrator": ("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
                                  ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"], []),
    "Role Based Access Control Administrator": ("f58310d9-a9f6-439a-9e8d-f62e7b41a168", [
        "Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete", "*/read",
        "Microsoft.Support/*"], []),
    "Managed Identity Contributor": ("e40ec5ca-96e0-45a2-b4ff-59039f2c2b59", [
        "Microsoft.ManagedIdentity/userAssignedIdentities/read", "Microsoft.ManagedIdentity/userAssignedIdentities/write",
        "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
        "Microsoft.ManagedIdentity/userAssignedIdentities/revokeTokens/action", *_SUPPORT], []),
    "Managed Identity Operator": ("f1a07417-d97a-45cb-824c-7a7467783830", [
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action", *_SUPPORT], []),
    "DNS Zone Contributor": ("befefa01-2a29-4197-83a8-272ff33ce314", [
        "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Network/dnsZones/*",
        "Microsoft.ResourceHealth/availabilityStatuses/read", "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"], []),
}


def definition(name: str) -> dict[str, Any]:
    guid, actions, not_actions = BUILTIN[name]
    return {"id": f"/providers/Microsoft.Authorization/roleDefinitions/{guid}", "name": guid,
            "properties": {"roleName": name, "type": "BuiltInRole", "permissions": [
                {"actions": actions, "notActions": not_actions, "dataActions": [], "notDataActions": []}]}}


# What each built-in allows of the three operations, from its documented purpose.
EXPECTED = {
    "Owner": {FEDERATE, ASSIGN, GRANT},
    "Contributor": {FEDERATE, ASSIGN},  # everything but Microsoft.Authorization writes
    "Reader": set(),
    "User Access Administrator": {GRANT},
    "Role Based Access Control Administrator": {GRANT},
    "Managed Identity Contributor": {FEDERATE},  # no assign/action among its actions
    "Managed Identity Operator": {ASSIGN},
    "DNS Zone Contributor": set(),
}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_roles_allow_what_azure_documents(name: str) -> None:
    allowed = {op for op in (FEDERATE, ASSIGN, GRANT) if granting_action(definition(name), op)}
    assert allowed == EXPECTED[name]


def test_wildcards_and_not_actions_as_azure_applies_them() -> None:
    assert action_matches("microsoft.authorization/*/write", GRANT)  # case-insensitive
    assert action_matches("Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action", ASSIGN)
    assert action_matches("Microsoft.ManagedIdentity/*", FEDERATE)
    assert not action_matches("*/read", FEDERATE)
    assert not action_matches("Microsoft.ManagedIdentity/userAssignedIdentities/*/read", FEDERATE)
    assert not action_matches("Microsoft.ManagedIdentity/userAssignedIdentities/write", FEDERATE)
    # NotActions subtract from the same permission only: a second permission block can grant it back.
    custom = {"id": "x/custom", "properties": {"permissions": [
        {"actions": ["*"], "notActions": ["Microsoft.ManagedIdentity/*"]},
        {"actions": ["Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"], "notActions": []}]}}
    assert granting_action(custom, FEDERATE) is None
    assert granting_action(custom, ASSIGN) == "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
    # dataActions never grant a management operation
    data_only = {"id": "x/data", "properties": {"permissions": [{"actions": [], "dataActions": ["*"]}]}}
    assert granting_action(data_only, FEDERATE) is None


SUB = "/subscriptions/5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
IDENTITY = {"id": f"{SUB}/resourcegroups/rg-aks/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-dns",
            "name": "id-dns"}
ZONE = f"{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/example.test"


def _assignment(principal: str, role: str, scope: str, n: int) -> dict[str, Any]:
    return {"id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/a{n}", "properties": {
        "principalId": principal, "principalType": "User", "scope": scope,
        "roleDefinitionId": f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{BUILTIN[role][0]}"}}


def test_paths_reach_the_identity_or_the_zone_by_scope() -> None:
    assignments = [
        _assignment("a", "Owner", SUB, 1),  # everything, allowed (Owner at subscription)
        _assignment("b", "Owner", f"{SUB}/resourceGroups/rg-aks", 2),  # everything on the identity; not the zone
        _assignment("c", "User Access Administrator", ZONE, 3),  # only the zone
        _assignment("d", "Managed Identity Operator", IDENTITY["id"], 4),  # control plane: allowed
        _assignment("e", "Contributor", "/providers/Microsoft.Management/managementGroups/corp", 5),
        _assignment("f", "DNS Zone Contributor", ZONE, 6),  # no path
    ]
    paths = azure_paths(assignments, [definition(n) for n in BUILTIN], IDENTITY, ZONE, subscription_id=SUB[15:],
                        control_plane={"d"}, allowed_ids={"e"})
    got = {(p.principal, p.capability.key, p.scope, p.allowed) for p in paths}
    assert got == {
        ("a", "federate", SUB, "Owner at subscription scope or above"),
        ("a", "assign", SUB, "Owner at subscription scope or above"),
        ("a", "grant-on-identity", SUB, "Owner at subscription scope or above"),
        ("a", "grant-on-zone", SUB, "Owner at subscription scope or above"),
        ("b", "federate", f"{SUB}/resourceGroups/rg-aks", None),
        ("b", "assign", f"{SUB}/resourceGroups/rg-aks", None),
        ("b", "grant-on-identity", f"{SUB}/resourceGroups/rg-aks", None),
        ("c", "grant-on-zone", ZONE, None),
        ("d", "assign", IDENTITY["id"], "the cluster control plane's Managed Identity Operator"),
        ("e", "federate", "/providers/Microsoft.Management/managementGroups/corp", "listed in access_allowed"),
        ("e", "assign", "/providers/Microsoft.Management/managementGroups/corp", "listed in access_allowed"),
    }
    # every edge names the snapshot entry it is read from
    assert all(edge["evidence"].startswith(("arm accessAssignments ", "arm roleDefinitions "))
               for p in paths for edge in p.edges())


def test_control_plane_principals_system_or_user_assigned() -> None:
    assert control_plane_principals({"identity": {"principalId": "ABC"}}) == {"abc"}
    assert control_plane_principals({"identity": {"userAssignedIdentities": {"x": {"principalId": "D"}}}}) == {"d"}
    assert control_plane_principals(None) == set()


# -- the scenarios: every path, from the snapshot the sandbox collected ------------------------------------------

OWNER_HUMAN = "1d6f8a3b-7c2e-4e95-8f1a-4b0c9d2e6a57"
CONTROL_PLANE = "c2a85f3d-9e64-4b17-a0d8-5f3e1b9c7a46"
IDENTITY_ID = f"{SUB}/resourcegroups/rg-aks/providers/microsoft.managedidentity/userassignedidentities/example-test-identity"
RG_AKS, RG_DNS = f"{SUB}/resourceGroups/rg-aks", f"{SUB}/resourceGroups/rg-dns"
HEALTHY = {  # (principal, capability, scope, allowed?)
    (OWNER_HUMAN, "federate", SUB, True), (OWNER_HUMAN, "assign", SUB, True),
    (OWNER_HUMAN, "grant-on-identity", SUB, True), (OWNER_HUMAN, "grant-on-zone", SUB, True),
    (CONTROL_PLANE, "assign", IDENTITY_ID, True),
}
SCENARIOS = {
    "healthy": HEALTHY,
    "access-azure-identity-contributor-on-aks-rg": HEALTHY | {
        ("4c7e2a91-8b3d-4f56-a1e9-6d0b3c8f2e74", "federate", RG_AKS, False)},
    "access-azure-operator-on-identity": HEALTHY | {
        ("6a1d9e3f-2b7c-4e85-9f4a-1c8e5b2d7a36", "assign", IDENTITY_ID, False)},
    "access-azure-user-access-admin-on-dns-rg": HEALTHY | {
        ("9e5b3c7a-1f4d-4a82-b6e9-3d7f0a2c8b51", "grant-on-zone", RG_DNS, False)},
    "access-azure-contributor-on-aks-rg": HEALTHY | {
        ("2f8c6b1e-9d3a-4c47-8e5f-7b0a4d1c9e63", "federate", RG_AKS, False),
        ("2f8c6b1e-9d3a-4c47-8e5f-7b0a4d1c9e63", "assign", RG_AKS, False)},
    "benign-access-azure-reader-on-subscription": HEALTHY,
    "benign-access-azure-contributor-unrelated-rg": HEALTHY,
    "benign-access-azure-allowed-principal": HEALTHY | {
        ("4c7e2a91-8b3d-4f56-a1e9-6d0b3c8f2e74", "federate", RG_AKS, True)},
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_paths_exactly(scenario: str, base_reports: Any) -> None:
    folder: Path = base_reports(scenario)
    snapshot = Snapshot(json.loads((folder / "snapshot.json").read_text(encoding="utf-8")))
    target = target_from_snapshot(snapshot)
    identity = snapshot.azure.identity_named(target.identity_name)
    assert identity is not None
    paths = azure_paths(snapshot.azure.access_assignments(), snapshot.azure.role_definitions(), identity,
                        target.zone_id, subscription_id=target.subscription_id,
                        control_plane=control_plane_principals(snapshot.azure.managed_cluster()),
                        allowed_ids=target.allowed_access()["azure"])
    got = {(p.principal, p.capability.key, normalise(p.scope), p.allowed is not None) for p in paths}
    assert got == {(principal, key, normalise(scope), allowed) for principal, key, scope, allowed in SCENARIOS[scenario]}
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    outcome = {c["id"]: c["outcome"] for c in results["checks"]}["ACCESS-002"]
    assert outcome == ("passed" if all(allowed for *_, allowed in SCENARIOS[scenario]) else "failed")


def test_static_mode_does_not_judge_tenant_assignments() -> None:
    """Who else holds roles is the tenant's state: static mode leaves ACCESS-002 out (modes), never red or error."""
    from aksid.catalogue import load_catalogue

    entry = next(e for e in load_catalogue() if e.id == "ACCESS-002")
    assert "static" not in entry.modes and "attach" in entry.modes
