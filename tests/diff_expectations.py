"""What `aksid diff` must name for a scenario, compared with the scenario it patches (its `base`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from aksid.diff import as_text, diff_paths
from aksid.sandbox.scenario import builtin_dir

# Beyond "a change under one of the scenario's red checks": the words of the change itself.
CHANGE_TEXT = {
    "tls-staging-chain": ("TLS-001", "served certificate issuer changed", "<acme_staging_server>"),
    "tls-expired-leaf": ("TLS-002", "served certificate validity when collected changed: valid → expired"),
    "tls-served-leaf-differs": ("TLS-003", "served certificate is the one cert-manager issued changed: true → false"),
    "rbac-identity-contributor-on-dns-rg": ("RBAC-002", "role assignment added: Contributor for example-test-identity"),
    "rbac-zone-role-missing": ("RBAC-001", "role assignment removed: DNS Zone Contributor for example-test-identity"),
    "dns-a-record-stale": ("DNS-002", "Azure DNS record hello A changed", "127.0.0.81"),
    "dns-server-serves-old-ip": ("DNS-003", "ns2-01.azure-dns.net. to hello.example.test. A changed"),
    "bind-debug-pod-in-default": ("BIND-003", "pods of pod/default/debug-shell", "aadpodidbinding=external-dns"),
    "bind-broad-exception": ("BIND-004", "AzurePodIdentityException added"),
    "wi-credential-other-cluster-issuer": ("WI-003", "federated credential example-test-identity/external-dns changed"),
    "wi-app-serviceaccount-annotated": ("WI-004", "ServiceAccount annotation added"),
    "nmi-not-ready-on-a-node": ("NMI-002", "ready → not ready"),
}


def base_of(name: str) -> str | None:
    path = Path(builtin_dir()) / f"{name}.yaml"
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("base")


def assert_diff_names_change(name: str, base_folder: Path, reports: Path, red: set[str]) -> None:
    """The diff of the scenario's snapshot against its base's groups a change under one of its red checks."""
    diff = diff_paths(base_folder / "snapshot.json", reports / "snapshot.json")
    text = as_text(diff)
    assert red & diff.bears_on(), f"{name}: no change under {sorted(red)}:\n{text}"
    for words in CHANGE_TEXT.get(name, ())[1:]:
        assert words in text, f"{name}: the diff does not say {words!r}:\n{text}"
    if name in CHANGE_TEXT:
        lines = text.splitlines()
        heading = next(i for i, line in enumerate(lines) if line.startswith(CHANGE_TEXT[name][0]))
        end = next((i for i in range(heading + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
        assert CHANGE_TEXT[name][1] in "\n".join(lines[heading:end]), text
