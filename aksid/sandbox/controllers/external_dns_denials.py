"""What external-dns logs when Azure DNS refuses its writes: the lines a provision run reads to stop waiting.

external-dns' Azure provider (provider/azure/azure.go, `updateRecords`) logs, per record of a change, at info
"Updating <type> record named '<name>' to '<targets>' for Azure DNS zone '<zone>'." and, when the record set's
CreateOrUpdate fails, at error "Failed to update <type> record named '<name>' to '<targets>' for DNS zone '<zone>':
<the SDK's error>" (targets joined by ";", endpoint.Targets.String()). It goes on with the next record and tries
again at the next sync (--interval, 1m by default), so the error repeats once per interval.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from aksid import external_dns as edns
from aksid.sandbox.controllers.azure_errors import authorization_failed, logrus_line, response_error
from aksid.sandbox.controllers.world import World

_last_sync: dict[tuple[int, str], float] = {}  # (world, host) -> when its failed sync was last logged


def log(world: World, config: Any, zone: dict[str, Any], identity: dict[str, Any], resource: str, host: str,
        address: str, txt_names: list[str]) -> None:
    """One failed sync of `host` (its A record, then its ownership TXT records) in the external-dns pods' logs,
    at most once per --interval."""
    deployment = world.kube.get("apps", "Deployment", config.namespace, config.name) or {}
    key = (id(world), host.lower())
    now = time.monotonic()
    if key in _last_sync and now - _last_sync[key] < _interval_seconds(deployment):
        return
    _last_sync[key] = now
    relative = edns.relative(host, zone["name"])
    owner = edns.ownership_text(config.owner, resource)
    records = [("A", relative, address)] + [("TXT", name, f'"{owner}"') for name in txt_names]
    moment = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = ""
    for rdtype, name, targets in records:
        scope = f"{zone['id']}/{rdtype}/{name}"
        error = response_error("PUT", scope, "403 Forbidden", authorization_failed(
            identity, f"Microsoft.Network/dnsZones/{rdtype}/write", scope))
        text += logrus_line(moment, "info", f"Updating {rdtype} record named '{name}' to '{targets}' for Azure DNS "
                                            f"zone '{zone['name']}'.")
        text += logrus_line(moment, "error", f"Failed to update {rdtype} record named '{name}' to '{targets}' for DNS "
                                             f"zone '{zone['name']}': {error}")
    for pod in _pods(world, deployment):
        world.append_log(pod["metadata"]["namespace"], pod["metadata"]["name"], text)


def _pods(world: World, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    namespace = (deployment.get("metadata") or {}).get("namespace")
    wanted = (((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}).items()
    if not namespace or not wanted:
        return []
    return [p for p in world.kube.list_kind("", "Pod", namespace)
            if wanted <= ((p.get("metadata") or {}).get("labels") or {}).items()]


def _interval_seconds(deployment: dict[str, Any]) -> float:
    """--interval as Go's time.ParseDuration reads the usual forms (1m, 30s, 1m30s); 1m when absent or odd."""
    text, total, number = edns.setting(deployment, "interval", "1m"), 0.0, ""
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in "hms" and number:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
        else:
            return 60.0
    return total if total > 0 and not number else 60.0
