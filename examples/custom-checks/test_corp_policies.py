"""A team's own checks, run beside aksid's in the same pytest run and judged from the same snapshot.

`pytest --aksid-profile profile.yaml examples/custom-checks` runs aksid's checks and these; so does
`aksid run --aksid-profile profile.yaml examples/custom-checks`, and `aksid checks examples/custom-checks`
lists them in the catalogue. The ID prefix (CORP) is the team's own.
"""

from __future__ import annotations

from typing import Any

from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.snapshot import Snapshot

MIN_READY = 2  # our policy: what serves users survives the loss of one node
DEMO_NAMESPACE = "hello"  # where the tutorial deploys hello-kubernetes


def demo_deployments(snapshot: Snapshot, target: Target) -> dict[str, dict[str, Any]]:
    """One subject per Deployment of the demo app's namespace."""
    found = snapshot.kube.deployments(DEMO_NAMESPACE)
    if not found:
        raise NotApplicable(f"no Deployment in namespace {DEMO_NAMESPACE} of cluster {target.cluster_name}")
    return {f"deployment/{d['metadata']['namespace']}/{d['metadata']['name']}": d for d in found}


@check(
    "CORP-001", "the demo app keeps at least two ready replicas", "medium",
    remediation="Scale the Deployment to two or more replicas (`kubectl -n <ns> scale deploy <name> --replicas=2`) "
                "and spread them over nodes with a topology spread constraint.",
    subjects=demo_deployments,
    reads=("kube:Deployment",),  # what it reads (aksid/units.py): a missing unit names it in the coverage
)
def test_demo_app_has_two_ready_replicas(subject: dict[str, Any], evidence: Evidence) -> None:
    name = f"{subject['metadata']['namespace']}/{subject['metadata']['name']}"
    evidence.kube(subject, "spec.replicas", "status.readyReplicas")  # what was compared, where it sits in the snapshot
    evidence.fix(f"kubectl -n {subject['metadata']['namespace']} scale deploy {subject['metadata']['name']} "
                 f"--replicas={MIN_READY}")
    wanted = subject.get("spec", {}).get("replicas", 1)
    ready = subject.get("status", {}).get("readyReplicas", 0)
    assert wanted >= MIN_READY and ready >= MIN_READY, (
        f"Deployment {name} asks for {wanted} replica(s) and has {ready} ready; our policy needs {MIN_READY}: "
        f"kubectl -n {subject['metadata']['namespace']} scale deploy {subject['metadata']['name']} --replicas={MIN_READY}"
    )
