"""The migration to workload identity (aksid/migration.py, suites/test_mig.py): each workload's state along the steps of
AKS's guide (workload-identity-migrate-from-pod-identity), and MIG-001/003/004 red where the step is wrong.

The built-in scenarios are the guide's steps: healthy (before) → benign-wi-half-migrated (external-dns moved,
cert-manager forgotten) → mig-ready (cert-manager's trust prepared) → mig-side-by-side → wi-pod-identity-leftovers
(labels removed) → healthy-wi (cut over). A walk from mig-side-by-side edits the scenario step by step as an operator
would with kubectl and az, and reads each step's states from results.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aksid.sandbox.scenario import builtin_dir

from .harness import aksid

CM, EDNS = "deployment/kube-addons/cert-manager", "deployment/kube-addons/external-dns"
CLUSTER_ID = ("/subscriptions/5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13/resourcegroups/rg-aks/providers/"
              "Microsoft.ContainerService/managedClusters/hello-aks")


def run_mig(scenario: str | Path, reports: Path, *settings: str) -> dict[str, Any]:
    """`aksid demo` of a scenario, MIG checks and WI-005 only: {"states": {workload: state}, "outcomes": {(id, subject): outcome},
    "messages": {id: messages}, "migration": results.json's section, "stdout": ...}."""
    extra = [arg for setting in settings for arg in ("--aksid-set", setting)]
    run = aksid("demo", "--scenario", str(scenario), "--reports-dir", str(reports), "--", "-k", "MIG or WI-005", *extra,
                reports=reports)
    results = run.results
    section = results["migration"]
    messages: dict[str, str] = {}
    for c in results["checks"]:
        messages[c["id"]] = (messages.get(c["id"], "") + " " + c["message"]).strip()
    return {"states": {w["workload"]: w["state"] for w in section["workloads"]}, "migration": section,
            "outcomes": {(c["id"], c["subject"]): c["outcome"] for c in results["checks"]}, "messages": messages,
            "stdout": run.stdout}


def outcome(found: dict[str, Any], check_id: str) -> set[str]:
    return {o for (i, _), o in found["outcomes"].items() if i == check_id}


# -- the guide's steps as built-in scenarios ------------------------------------------------------------------

STEPS = [
    ("healthy", {CM: "pod identity only", EDNS: "pod identity only"},
     {"MIG-001": "skipped", "MIG-003": "skipped", "MIG-004": "skipped"}),
    ("benign-wi-half-migrated", {CM: "pod identity only", EDNS: "migrated"}, {"MIG-001": "failed"}),
    ("mig-ready", {CM: "ready", EDNS: "migrated"}, {"MIG-001": "failed"}),
    ("mig-side-by-side", {CM: "side by side", EDNS: "migrated"}, {"MIG-001": "passed", "MIG-004": "skipped"}),
    ("mig-sidecar-in-use", {CM: "side by side", EDNS: "migrated"}, {"MIG-003": "passed"}),
    ("wi-pod-identity-leftovers", {CM: "migrated", EDNS: "migrated"}, {"MIG-001": "skipped", "MIG-004": "skipped"}),
    ("healthy-wi", {CM: "migrated", EDNS: "migrated"}, {"MIG-001": "skipped", "MIG-003": "skipped", "MIG-004": "passed"}),
    ("mig-sidecar-left-behind", {CM: "migrated", EDNS: "migrated"}, {"MIG-003": "failed", "MIG-004": "passed"}),
    ("mig-cutover-label-left", {CM: "migrated", EDNS: "migrated"}, {"MIG-004": "failed"}),
]


@pytest.mark.parametrize("scenario, states, outcomes", STEPS, ids=[s[0] for s in STEPS])
def test_each_step_of_the_guide(scenario: str, states: dict[str, str], outcomes: dict[str, str],
                                tmp_path: Path) -> None:
    found = run_mig(scenario, tmp_path)
    assert found["states"] == states, found["states"]
    for check_id, wanted in outcomes.items():
        got = outcome(found, check_id)  # one outcome per subject: red when any subject is
        assert (wanted in got) if wanted == "failed" else (got == {wanted}), (check_id, got, found["messages"].get(check_id))
    if scenario == "healthy":  # not started: MIG-001 names what each workload lacks, and the setting that judges it
        said = found["messages"]["MIG-001"]
        assert "set `migration_required` to judge" in said and CM in said and EDNS in said
        assert "azure.workload.identity/client-id" in said and "federated credential" in said
        assert "migration to workload identity:" in found["stdout"] and "pod identity only" in found["stdout"]
        assert (tmp_path / "summary.md").read_text(encoding="utf-8").count("| pod identity only |") == 2
        assert 'id="migration"' in (tmp_path / "report.html").read_text(encoding="utf-8")
    if scenario == "mig-ready":  # the one piece left is the switch the guide flips last
        assert "azure.workload.identity/use" in found["messages"]["MIG-001"]
        [cm] = [w for w in found["migration"]["workloads"] if w["workload"] == CM]
        assert cm["to"]["federated_credential"]["subject"] == "system:serviceaccount:kube-addons:cert-manager"
        assert cm["to"]["identity"] == "same identity" and cm["from"][0]["binding"] == "kube-addons/cert-manager-binding"


def test_migration_required_judges_a_cluster_that_has_not_started(tmp_path: Path) -> None:
    found = run_mig("healthy", tmp_path, "migration_required=true")
    assert outcome(found, "MIG-001") == {"failed"}
    assert found["migration"]["migration_required"] is True
    assert "ServiceAccount kube-addons/external-dns has no azure.workload.identity/client-id" in found["messages"]["MIG-001"]


# -- walking the side-by-side scenario through the guide's last steps, by scenario edits ---------------------

def _labels(value: Any) -> dict[str, Any]:
    return {"labels": {"aadpodidbinding": value}}


def _cert_manager_label(value: Any) -> list[dict[str, Any]]:
    """kubectl patch of cert-manager's pod template (and the objects its controllers copy it to)."""
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "kube-addons", "name": "cert-manager",
         "merge": {"spec": {"template": {"metadata": _labels(value)}}}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "namespace": "kube-addons", "name": "cert-manager-6d8f7c9b54",
         "merge": {"metadata": _labels(value), "spec": {"template": {"metadata": _labels(value)}}}},
        {"apiVersion": "v1", "kind": "Pod", "namespace": "kube-addons", "name": "cert-manager-6d8f7c9b54-r8p2f",
         "merge": {"metadata": _labels(value)}},
    ]


POD_IDENTITY_DELETE = {  # az aks pod-identity delete --namespace kube-addons --name cert-manager
    "kube": {"remove": [
        {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity", "namespace": "kube-addons",
         "name": "cert-manager"},
        {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding", "namespace": "kube-addons",
         "name": "cert-manager-binding"}]},
    "azure": {"patch": [{"id": CLUSTER_ID, "merge": {"properties": {"podIdentityProfile": {
        "userAssignedIdentities": None}}}}]},
}
DISABLE_POD_IDENTITY = {  # az aks update --disable-pod-identity: the add-on off, NMI gone
    "kube": {"remove": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "namespace": "kube-system", "name": "nmi"},
                        *({"apiVersion": "v1", "kind": "Pod", "namespace": "kube-system", "name": name}
                          for name in ("nmi-lxjcg", "nmi-p6bcc", "nmi-r9vzp"))]},
    "azure": {"patch": [{"id": CLUSTER_ID, "merge": {"properties": {"podIdentityProfile": {"enabled": False}}}}]},
}


def _step(folder: Path, name: str, base: str | Path, edit: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    document = {"name": name, "description": name, "base": str(base), "expect": {"failed": []}, **edit}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_side_by_side_walked_to_the_cutover(tmp_path: Path) -> None:
    """Verify, remove the pod-identity label, delete the pod identity, disable the add-on: cert-manager goes from side
    by side to migrated, MIG-001 stops applying once nothing is bound, MIG-004 judges once pod identity is gone."""
    walk = [
        ("side-by-side", builtin_dir() / "mig-side-by-side.yaml", None),
        ("label-removed", None, {"kube": {"patch": _cert_manager_label(None)}}),
        ("pod-identity-deleted", None, POD_IDENTITY_DELETE),
        ("add-on-disabled", None, DISABLE_POD_IDENTITY),
    ]
    seen = []
    base: Path | None = None
    for name, builtin, edit in walk:
        path = builtin if builtin is not None else _step(tmp_path, name, base, edit)  # type: ignore[arg-type]
        found = run_mig(path, tmp_path / name)
        seen.append((name, found["states"][CM], *(tuple(sorted(outcome(found, check_id)))
                                                  for check_id in ("MIG-001", "MIG-004", "WI-005"))))
        base = path
    # WI-005 leaves the deliberate side-by-side step alone, then asks for each removal the guide makes next
    assert seen == [
        ("side-by-side", "side by side", ("passed",), ("skipped",), ("passed", "skipped")),
        ("label-removed", "migrated", ("skipped",), ("skipped",), ("failed", "passed")),
        ("pod-identity-deleted", "migrated", ("skipped",), ("skipped",), ("failed", "passed")),
        ("add-on-disabled", "migrated", ("skipped",), ("passed",), ("passed",)),
    ], seen


def test_cutover_with_a_workload_forgotten(tmp_path: Path) -> None:
    """The add-on disabled while cert-manager's pods still select their binding: MIG-001 said so before (the label
    is its only path), MIG-004 says it after: it lost its identity."""
    step = _step(tmp_path, "forgotten", builtin_dir() / "benign-wi-half-migrated.yaml", DISABLE_POD_IDENTITY)
    found = run_mig(step, tmp_path / "forgotten")
    assert found["states"][CM] == "pod identity only"
    assert outcome(found, "MIG-001") == {"failed"} and outcome(found, "MIG-004") == {"failed", "passed"}
    assert "cert-manager still depends on pod identity" in found["messages"]["MIG-004"]
    assert "cert-manager-binding" in found["messages"]["MIG-004"] and "lost its Azure identity" in found["messages"]["MIG-004"]


# -- where the sidecar cannot work -------------------------------------------------------------------------

@pytest.mark.parametrize("name, edit, said", [
    ("host-network", {"kube": {"patch": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "kube-addons",
                                          "name": "cert-manager",
                                          "merge": {"spec": {"template": {"spec": {"hostNetwork": True}}}}}]}},
     "hostNetwork is set to true, cannot inject proxy sidecar"),
    ("restricted-namespace", {"kube": {"patch": [{"apiVersion": "v1", "kind": "Namespace", "name": "kube-addons",
                                                  "merge": {"metadata": {"labels": {
                                                      "pod-security.kubernetes.io/enforce": "restricted"}}}}]}},
     "enforces Pod Security level restricted"),
    ("no-use-label", {"kube": {"patch": [{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "kube-addons",
                                          "name": "cert-manager", "merge": {"spec": {"template": {"metadata": {
                                              "labels": {"azure.workload.identity/use": None}}}}}}]}},
     "the webhook never sees its pods"),
])
def test_sidecar_that_cannot_work(name: str, edit: dict[str, Any], said: str, tmp_path: Path) -> None:
    step = _step(tmp_path, name, builtin_dir() / "mig-sidecar-in-use.yaml", edit)
    found = run_mig(step, tmp_path / name)
    assert outcome(found, "MIG-003") == {"failed"}, found["messages"].get("MIG-003")
    assert said in found["messages"]["MIG-003"]


# -- where the workload's own software no longer needs the sidecar -------------------------------------------------

def _with_image(tmp_path: Path, image: str) -> Path:
    """mig-sidecar-in-use with cert-manager's controller upgraded (Deployment, ReplicaSet and Pod), as `helm upgrade`
    leaves it: the sidecar annotation stays where the operator put it."""
    from aksid.sandbox.scenario import load_scenario

    patches = []
    for obj in load_scenario("mig-sidecar-in-use").kube_objects:
        if obj["metadata"].get("namespace") != "kube-addons" or not obj["metadata"]["name"].startswith(
                "cert-manager-6d8f7c9b54") and (obj["kind"], obj["metadata"]["name"]) != ("Deployment", "cert-manager"):
            continue
        spec = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
        containers = [dict(c, image=image) if "cert-manager-controller" in c["image"] else c for c in spec["containers"]]
        merge = {"spec": {"containers": containers}} if obj["kind"] == "Pod" else {
            "spec": {"template": {"spec": {"containers": containers}}}}
        patches.append({"apiVersion": obj["apiVersion"], "kind": obj["kind"], "namespace": "kube-addons",
                        "name": obj["metadata"]["name"], "merge": merge})
    assert len(patches) == 3, patches
    return _step(tmp_path, image.rsplit(":", 1)[-1], builtin_dir() / "mig-sidecar-in-use.yaml", {"kube": {"patch": patches}})


def test_sidecar_on_software_that_speaks_workload_identity_itself(tmp_path: Path) -> None:
    """cert-manager from v1.11 takes the federated token itself (its AzureDNS docs): a sidecar asked for it is left over
    from an old SDK, even side by side. The scenario's v1.10.2 still needs it (green)."""
    found = run_mig(_with_image(tmp_path, "quay.io/jetstack/cert-manager-controller:v1.14.5"), tmp_path / "new")
    assert outcome(found, "MIG-003") == {"failed"}, found["messages"].get("MIG-003")
    assert "cert-manager-controller:v1.14.5 takes workload identity's token itself" in found["messages"]["MIG-003"]
    found = run_mig(builtin_dir() / "mig-sidecar-in-use.yaml", tmp_path / "old")
    assert outcome(found, "MIG-003") == {"passed"}, found["messages"].get("MIG-003")


@pytest.mark.parametrize("image, settings, speaks", [
    ("registry.k8s.io/external-dns/external-dns:v0.14.2", {"useWorkloadIdentityExtension": True}, True),
    ("registry.k8s.io/external-dns/external-dns:v0.14.2", {"useManagedIdentityExtension": True}, False),
    ("registry.k8s.io/external-dns/external-dns:v0.14.2", None, False),  # azure.json not read: cannot tell
    ("quay.io/jetstack/cert-manager-controller:v1.11.0", None, True),
    ("quay.io/jetstack/cert-manager-controller:v1.10.2", None, False),
])
def test_whose_own_software_takes_the_federated_token(image: str, settings: dict | None, speaks: bool) -> None:
    """MIG-003's test of "no longer needs the sidecar": external-dns by its azure.json (useWorkloadIdentityExtension,
    external-dns' Azure tutorial), cert-manager by its version (AzureDNS docs: workload identity from v1.11.0)."""
    from aksid.allowed_path import speaks_workload_identity
    from aksid.snapshot import Snapshot, new_document, ok

    name = "external-dns" if "external-dns" in image else "cert-manager"
    volumes = [{"name": "azure-config-file", "secret": {"secretName": "azure-config-file"}}] if name == "external-dns" else []
    workload = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "kube-addons", "name": name},
                "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}], "volumes": volumes}}}}
    document = new_document({}, "attach", "2026-12-07T00:00:00+00:00")
    secrets = [] if settings is None else [{"apiVersion": "v1", "kind": "Secret", "metadata": {
        "namespace": "kube-addons", "name": "azure-config-file"}, "data": {"azure.json": {"redactedJson": settings}}}]
    document["kube"] = {"v1/Secret": ok(secrets) if settings is not None else {"status": "not_collected",
                                                                                  "reason": "--aksid-read-secrets"}}
    said = speaks_workload_identity(Snapshot(document), workload)
    assert (said is not None) == speaks, said
