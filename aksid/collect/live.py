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
    document["azure"] = ArmCollector(target, credential, progress).collect()
    return Snapshot(document)
