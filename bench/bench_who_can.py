"""`aksid who-can` at scale: the answer from a saved snapshot, beyond collection (issue #26's target: under 2 s).

    .venv/bin/python bench/bench_who_can.py [--pods 20000] [--namespaces 2000] [--rolebindings 5000] [--roles 1000]
                                            [--assignments 500] [--repeat 3] [--out bench/results/who-can.json]

The healthy sandbox's snapshot (one `aksid demo`, on loopback) grown with generated objects: namespaces (a third
labelled Pod Security `baseline`), pods spread over them, Roles (each a few rules: read pods, some create pods or
deployments, some exec), RoleBindings (users, groups and ServiceAccounts bound to those Roles or to the edit/view
ClusterRoles), and Azure role assignments of other principals at the subscription and resource groups (each
role the snapshot holds a definition of, in turn). Measured per run, as `aksid who-can --format json`
in a fresh process (what a user waits for): wall time (median of --repeat), peak RSS of that process; and in-process,
the phases: loading the snapshot, the Azure side, the Kubernetes side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RBAC = "rbac.authorization.k8s.io/v1"
SUB = "/subscriptions/5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
# `aksid who-can --format json` as the command runs it, then the process's own peak RSS (KiB) on stderr
WHO_CAN = ("import resource, sys\nfrom aksid.cli import main\ncode = main(['who-can', '--snapshot', sys.argv[1], "
           "'--format', 'json'])\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
           "sys.exit(code)")


def _guid(n: int, prefix: str = "0b") -> str:
    return f"{prefix}{n:06x}aa-0000-4000-8000-{n:012x}"[:36]


def grow(document: dict[str, Any], pods: int, namespaces: int, rolebindings: int, roles: int,
         assignments: int) -> dict[str, Any]:
    kube, azure = document["kube"], document["azure"]
    names = [f"team-{i:04d}" for i in range(namespaces)]
    kube["v1/Namespace"]["value"] += [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "kubernetes.io/metadata.name": ns,
            **({"pod-security.kubernetes.io/enforce": "baseline"} if i % 3 == 0 else {})}}}
        for i, ns in enumerate(names)]
    kube["v1/Pod"]["value"] += [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"app-{i}", "namespace": names[i % namespaces],
                                                          "labels": {"app": f"app-{i % 50}"}},
         "spec": {"serviceAccountName": "default", "containers": [{"name": "app", "image": "app:1"}]},
         "status": {"phase": "Running"}}
        for i in range(pods)]
    role_rules = [
        [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list", "watch"]}],
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]}],
        [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}],
        [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
         {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    ]
    kube[f"{RBAC}/Role"]["value"] += [
        {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": f"role-{i}", "namespace": names[i % namespaces]},
         "rules": role_rules[i % len(role_rules)]}
        for i in range(roles)]
    bindings = []
    for i in range(rolebindings):
        ns = names[i % namespaces]
        if i % 5 == 0:
            ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ("edit", "view")[i % 2]}
        else:
            role = i % roles
            ns = names[role % namespaces]
            ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"role-{role}"}
        subject = ({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"user-{i % 3000}@corp.test"},
                   {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": f"group-{i % 400}"},
                   {"kind": "ServiceAccount", "name": f"sa-{i % 7}", "namespace": ns})[i % 3]
        bindings.append({"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": f"rb-{i}", "namespace": ns},
                         "roleRef": ref, "subjects": [subject]})
    kube[f"{RBAC}/RoleBinding"]["value"] += bindings
    extra = []
    # the roles the snapshot holds definitions of (the collector reads those its assignments use)
    held = [d["id"].rsplit("/", 1)[-1] for d in azure["roleDefinitions"]["value"]]
    for i in range(assignments):
        scope = (SUB, f"{SUB}/resourceGroups/rg-aks", f"{SUB}/resourceGroups/rg-dns")[i % 3]
        role = held[i % len(held)]
        extra.append({"id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{_guid(i)}", "name": _guid(i),
                      "type": "Microsoft.Authorization/roleAssignments", "properties": {
                          "roleDefinitionId": f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                          "principalId": _guid(i, "0c"), "principalType": "User", "scope": scope}})
    azure["accessAssignments"]["value"] += extra
    return document


def phases(snapshot_path: Path) -> dict[str, float]:
    from aksid.access.who_can import azure_side, find_identity, kube_side
    from aksid.snapshot import Snapshot
    from aksid.snapshot_target import target_from_snapshot

    started = time.perf_counter()
    snapshot = Snapshot.load(snapshot_path)
    loaded = time.perf_counter()
    identity = find_identity(snapshot, None, target_from_snapshot(snapshot).identity_name)
    azure = azure_side(snapshot, identity, True)
    azure_done = time.perf_counter()
    kube = kube_side(snapshot, identity)
    kube_done = time.perf_counter()
    return {"load_s": loaded - started, "azure_s": azure_done - loaded, "kube_s": kube_done - azure_done,
            "azure_principals": len(azure["principals"]), "kube_principals": len(kube["principals"]),
            "kube_unavailable": kube.get("unavailable")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--namespaces", type=int, default=2000)
    parser.add_argument("--rolebindings", type=int, default=5000)
    parser.add_argument("--roles", type=int, default=1000)
    parser.add_argument("--assignments", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "who-can.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aksid-bench-who-can-") as tmp:
        folder = Path(tmp)
        demo = subprocess.run([sys.executable, "-m", "aksid", "demo", "--reports-dir", str(folder / "base")],
                              cwd=REPO, capture_output=True, text=True)
        if demo.returncode != 0:
            print(demo.stdout + demo.stderr, file=sys.stderr)
            return 1
        document = json.loads((folder / "base" / "snapshot.json").read_text(encoding="utf-8"))
        grown = grow(document, args.pods, args.namespaces, args.rolebindings, args.roles, args.assignments)
        snapshot_path = folder / "snapshot.json"
        snapshot_path.write_text(json.dumps(grown), encoding="utf-8")
        walls, rss = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            run = subprocess.run([sys.executable, "-c", WHO_CAN, str(snapshot_path)], cwd=REPO, capture_output=True,
                                 text=True)
            walls.append(time.perf_counter() - started)
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                return 1
            rss.append(int(run.stderr.strip().splitlines()[-1]) / 1024)
        result = {
            "sizes": {"pods": args.pods, "namespaces": args.namespaces, "rolebindings": args.rolebindings,
                      "roles": args.roles, "azure_assignments": args.assignments},
            "snapshot_mb": round(snapshot_path.stat().st_size / 2**20, 1),
            "who_can_wall_s": round(statistics.median(walls), 3), "who_can_walls_s": [round(w, 3) for w in walls],
            "peak_rss_mb": round(max(rss), 1), "target_s": 2.0,
            "phases": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in phases(snapshot_path).items()},
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
