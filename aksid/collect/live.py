"""Run every live collector once and assemble the snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core.credentials import TokenCredential

from aksid.collect.arm import ArmCollector
from aksid.collect.dns import answers_by_server, collect_dns
from aksid.collect.kube import collect_kube
from aksid.collect.tls import collect_tls, unavailable
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


def _answered_addresses(target: Target, dns: dict[str, Any]) -> list[str]:
    """The demo host's A answers, server by server in the zone's NS order: what a resolver would hand a browser."""
    found: list[str] = []
    for answers in answers_by_server(dns.get("servers") or {}, target.demo_fqdn).values():
        found += [address for address in answers if address not in found]
    return found


def _azure_addresses(target: Target, azure: dict[str, Any]) -> list[str]:
    """The demo host's A record set in Azure DNS (name relative to the zone, as ARM lists it)."""
    entry = azure.get("recordSets") or {}
    record_sets = (entry.get("value") or []) if entry.get("status") == "ok" else []
    for record_set in record_sets:
        properties = {str(key).lower(): value for key, value in (record_set.get("properties") or {}).items()}
        if (str(record_set.get("type", "")).lower().endswith("/a")
                and str(record_set.get("name", "")).lower() == target.demo_host.lower()):
            items = [{str(key).lower(): value for key, value in item.items()} for item in properties.get("arecords") or []]
            return [str(item["ipv4address"]) for item in items if item.get("ipv4address")]
    return []


def tls_address(target: Target, azure: dict[str, Any], dns: dict[str, Any]) -> tuple[str | None, str]:
    """(address, where it came from) for the demo host, or (None, why there is none)."""
    if target.tls_address:
        return target.tls_address, "tls_address setting"
    answered = _answered_addresses(target, dns)
    if answered:
        return answered[0], "A record served by the zone's name servers"
    in_azure = _azure_addresses(target, azure)
    if in_azure:
        return in_azure[0], "A record in Azure DNS (no name server answered one)"
    return None, (f"not connected: {target.demo_fqdn} has no address (no name server of the zone answered an A record, "
                  "Azure DNS holds none, and no tls_address is set)")


def collect_tls_evidence(target: Target, azure: dict[str, Any], dns: dict[str, Any],
                         progress: Callable[[str], None]) -> dict[str, Any]:
    address, origin = tls_address(target, azure, dns)
    if address is None:
        return unavailable(origin)
    progress(f"tls: connecting to {target.demo_fqdn} at {address} ({origin})")
    return collect_tls(target.demo_fqdn, address, https_port=target.tls_https_port_number,
                       http_port=target.tls_http_port_number, loopback_only=target.network == "loopback-only",
                       timeout=target.tls_timeout_seconds, address_origin=origin)


def collect_live(
    target: Target,
    kube_configuration: Any,
    credential: TokenCredential,
    progress: Callable[[str], None],
    read_secrets: bool = False,
    on_page: Callable[[str, list[dict[str, Any]]], None] | None = None,
) -> Snapshot:
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document = new_document(target.public_view(), "attach", created)
    arm = ArmCollector(target, credential, progress)

    def azure_dns_tls() -> None:
        """Network-bound, independent of the kube side: runs while the kube LISTs are parsed."""
        document["azure"] = arm.collect()
        document["dns"] = collect_dns_evidence(target, document["azure"], progress)
        document["tls"] = collect_tls_evidence(target, document["azure"], document["dns"], progress)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aksid-collect") as pool:
        beside = pool.submit(azure_dns_tls)
        document["kube"] = collect_kube(target, kube_configuration, progress, read_secrets, on_page)
        beside.result()
    arm.add_identities(document["azure"], _identity_ids_in_cluster(document["kube"]))
    return Snapshot(document)
