"""Run every live collector once and assemble the snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from azure.core.credentials import TokenCredential

from aksid.collect.arm import ArmCollector
from aksid.collect.kube import collect_kube
from aksid.config import Target
from aksid.snapshot import Snapshot, new_document


def _identity_ids_in_cluster(kube: dict[str, Any]) -> list[str]:
    """AzureIdentity objects may name identities outside the resource groups the ARM collector lists."""
    entry = kube.get("aadpodidentity.k8s.io/v1/AzureIdentity") or {}
    return [item["spec"]["resourceID"] for item in entry.get("value") or [] if (item.get("spec") or {}).get("resourceID")]


def collect_live(
    target: Target,
    kube_configuration: Any,
    credential: TokenCredential,
    progress: Callable[[str], None],
    read_secrets: bool = False,
) -> Snapshot:
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document = new_document(target.public_view(), "attach", created)
    document["kube"] = collect_kube(target, kube_configuration, progress, read_secrets)
    document["azure"] = ArmCollector(target, credential, progress).collect(_identity_ids_in_cluster(document["kube"]))
    return Snapshot(document)
