"""`aksid who-can`: every principal with its shortest path, each edge's evidence resolving in the snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aksid.evidence import located

from .harness import aksid

SUB = "/subscriptions/5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
OPERATOR = "6a1d9e3f-2b7c-4e85-9f4a-1c8e5b2d7a36"  # access-azure-operator-on-identity's user
OWNER_HUMAN = "1d6f8a3b-7c2e-4e95-8f1a-4b0c9d2e6a57"
CONTROL_PLANE = "c2a85f3d-9e64-4b17-a0d8-5f3e1b9c7a46"


def _who_can(snapshot: Path, *args: str) -> Any:
    return aksid("who-can", "--snapshot", str(snapshot), *args, reports=snapshot.parent)


def test_json_names_every_azure_principal_with_a_path_whose_evidence_resolves(base_reports: Any) -> None:
    snapshot = base_reports("access-azure-operator-on-identity") / "snapshot.json"
    run = _who_can(snapshot, "--format", "json")
    assert run.code == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["identity"]["name"] == "example-test-identity" and answer["identity"]["dns_identity"]
    azure = {p["principal"]: p for p in answer["azure"]["principals"]}
    assert set(azure) == {OWNER_HUMAN, CONTROL_PLANE, OPERATOR}
    assert azure[OPERATOR]["allowed"] is None
    assert azure[OPERATOR]["can"] == ["assign the identity to compute it controls (and take its token there)"]
    assert azure[OWNER_HUMAN]["allowed"] == "Owner at subscription scope or above"
    assert azure[CONTROL_PLANE]["allowed"] == "the cluster control plane's Managed Identity Operator"
    # the shortest path: principal → role at scope → operation → identity, every edge read from the snapshot
    document = json.loads(snapshot.read_text(encoding="utf-8"))
    path = azure[OPERATOR]["path"]
    assert [e["edge"].split(" ")[0] for e in path] == ["holds", "allows", "applies"]
    for edge in path:
        assert located(document, edge["evidence"]) is not None
    # the kube side is the access graph's (aksid/access/paths.py): cluster-admin's group is among them
    kube = {p["principal"] for p in answer["kubernetes"]["principals"]}
    assert "Group system:masters" in kube
    for entry in answer["kubernetes"]["principals"]:
        assert entry["path"][-1]["to"] == "identity example-test-identity"
        assert located(document, entry["path"][-1]["evidence"]) is not None

def test_text_prints_the_path_and_its_evidence(base_reports: Any) -> None:
    snapshot = base_reports("access-azure-operator-on-identity") / "snapshot.json"
    run = _who_can(snapshot)
    assert run.code == 0, run.stderr
    assert f"User {OPERATOR}  [NOT allowed by default or access_allowed]" in run.stdout
    assert "─allows (actions entry 'Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action')→" in run.stdout
    assert "evidence: arm accessAssignments " in run.stdout
    assert "Not visible in a snapshot: Entra ID group membership" in run.stdout


def test_identity_by_client_id_name_or_resource_id(base_reports: Any) -> None:
    snapshot = base_reports("healthy") / "snapshot.json"
    ids = {}
    for key in ("3f9c2a71-6b4e-4d8a-9e1f-7c5b2d8a4e60", "EXAMPLE-TEST-IDENTITY",
                f"{SUB}/resourceGroups/rg-aks/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
                "example-test-identity"):
        run = _who_can(snapshot, key, "--format", "json")
        assert run.code == 0, run.stderr
        ids[key] = json.loads(run.stdout)["identity"]["name"]
    assert set(ids.values()) == {"example-test-identity"}
    # another identity: only the assignments from above it are known, and the answer says so
    run = _who_can(snapshot, "hello-aks-agentpool", "--format", "json")
    assert run.code == 0, run.stderr
    answer = json.loads(run.stdout)
    assert not answer["identity"]["dns_identity"] and "not in the snapshot" in answer["azure"]["note"]
    assert {p["principal"] for p in answer["azure"]["principals"]} == {OWNER_HUMAN}


def test_user_errors_are_one_sentence(tmp_path: Path, base_reports: Any) -> None:
    run = _who_can(tmp_path / "missing.json")
    assert run.code == 2 and run.stderr.startswith("aksid who-can: ") and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    run = _who_can(base_reports("healthy") / "snapshot.json", "no-such-identity")
    assert run.code == 2 and "no user-assigned identity in the snapshot" in run.stderr
    assert "example-test-identity" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_a_chain_is_shown_hop_by_hop_each_with_its_binding(base_reports: Any) -> None:
    """access-impersonation-chain: release-bots impersonates ci/builder, which mints ops/deployer's token, which
    impersonates platform-admins (cluster-admin). Every hop is its own edges (the binding, the rule, whom it acts as),
    each binding's evidence resolving in the snapshot."""
    snapshot = base_reports("access-impersonation-chain") / "snapshot.json"
    run = _who_can(snapshot, "--format", "json")
    assert run.code == 0, run.stderr
    answer = json.loads(run.stdout)
    [entry] = [p for p in answer["kubernetes"]["principals"] if p["principal"] == "Group release-bots"]
    path = entry["path"]
    acts = [(e["from"], e["to"]) for e in path if e["edge"].startswith("so acts as")]
    assert [to for _, to in acts] == ["ServiceAccount ci/builder", "ServiceAccount ops/deployer", "Group platform-admins"]
    bound = [e["edge"] for e in path if e["edge"].startswith("bound by")]
    assert bound[0] == "bound by RoleBinding ci/release-bots-impersonate-builder" and len(bound) == 4, bound
    assert path[-1]["to"] == "identity example-test-identity"
    document = json.loads(snapshot.read_text(encoding="utf-8"))
    for edge in path:
        if edge["edge"].startswith("bound by"):
            assert located(document, edge["evidence"]) is not None, edge
    text = _who_can(snapshot).stdout
    assert "─so acts as (impersonated)→ ServiceAccount ci/builder" in text
    # ACCESS-001's verdict, as the check gives it: the chain's principal is not allowed, cluster-admin's group is
    assert entry["allowed"] is None and answer["kubernetes"]["judged"] is True
    assert "Group release-bots  [NOT allowed by default or access_allowed]" in text
    assert "Group system:masters  [allowed: system:masters (kube-apiserver grants it everything before RBAC)]" in text
