"""Run every live collector once and assemble the snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from azure.core.credentials import TokenCredential

from aksid.collect.arm import ArmCollector
from aksid.collect.dns import collect_dns
from aksid.collect.kube import collect_kube
from aksid.config import Target
from aksid.snapshot import Snapshot, error, new_document


def _identity_ids_in_cluster(kube: dict[str, Any]) -> list[str]:
    """AzureIdentity objects may name identities outside the resource groups the ARM collector lists."""
    entry = kube.get("aadpodidentity.k8s.io/v1/AzureIdentity") or {}
    return [item["spec"]["resourceID"] for item in entry.get("value") or [] if (item.get("spec") or {}).get("resourceID")]


def _zone_name_servers(target: Target, azure: dict[str, Any]) -> tuple[list[str], str | None]:
    """The zone's `nameServers` from the ARM evidence, or why there are none to ask."""
    what = f"the DNS zone {target.dns_resource_group}/{target.domain}"
    entry = azure.get("dnsZone") or error("it was not collected")
    if entry["status"] == "absent":
        return [], f"not queried: {what} does not exist in Azure"
    if entry["status"] != "ok":
        return [], f"not queried: {what} could not be read from Azure ({entry.get('reason')})"
    name_servers = ((entry["value"] or {}).get("properties") or {}).get("nameServers") or []
    if not name_servers:
        return [], f"not queried: Azure lists no name servers for {what}"
    return [str(name) for name in name_servers], None


def collect_dns_evidence(target: Target, azure: dict[str, Any], progress: Callable[[str], None]) -> dict[str, Any]:
    """The parent's delegation and every zone name server's answers for the demo host (see collect/dns.py)."""
    name_servers, reason = _zone_name_servers(target, azure)
    if reason is not None:
        return {"parent": error(reason), "servers": error(reason)}
    domain = target.domain.rstrip(".")
    progress(f"dns: asking the parent of {domain} and its {len(name_servers)} name servers")
    return collect_dns(
        zone=domain,
        host=target.demo_fqdn,
        name_servers=name_servers,
        parent_servers=target.parent_servers(),
        server_addresses=target.server_addresses(),
        loopback_only=target.network == "loopback-only",
        timeout=target.dns_timeout_seconds,
        # external-dns ownership records: `hello` (before 0.12, and 0.12-0.17) and `a-hello` (0.12 on)
        txt_names=(target.demo_fqdn, f"a-{target.demo_host}.{domain}"),
    )


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
    document["dns"] = collect_dns_evidence(target, document["azure"], progress)
    return Snapshot(document)
