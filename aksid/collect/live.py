"""Run every live collector once and assemble the snapshot."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from azure.core.credentials import TokenCredential

from aksid.collect.arm import ARM_ENTRIES, ArmCollector
from aksid.collect.budget import Budget
from aksid.collect.dns import answers_by_server, collect_dns
from aksid.collect.kube import KINDS, collect_kube
from aksid.collect.tls import collect_tls, unavailable
from aksid.config import Target
from aksid.external_dns import OwnershipDecryption
from aksid.recorded_trust import record as record_trust_store
from aksid.snapshot import Snapshot, error, kind_key, new_document

# Seconds a collector may overrun the deadline before the run stops waiting for it: every request's
# timeout is already capped by what is left, so only a server that trickles bytes forever needs this.
GRACE_SECONDS = 2.0


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


def collect_dns_evidence(target: Target, azure: dict[str, Any], progress: Callable[[str], None],
                         budget: Budget | None = None) -> dict[str, Any]:
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
        budget=budget,
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
                         progress: Callable[[str], None], budget: Budget | None = None) -> dict[str, Any]:
    address, origin = tls_address(target, azure, dns)
    if address is None:
        return unavailable(origin)
    progress(f"tls: connecting to {target.demo_fqdn} at {address} ({origin})")
    return collect_tls(target.demo_fqdn, address, https_port=target.tls_https_port_number,
                       http_port=target.tls_http_port_number, loopback_only=target.network == "loopback-only",
                       timeout=target.tls_timeout_seconds, address_origin=origin, budget=budget)


def collect_live(
    target: Target,
    kube_configuration: Any,
    credential: TokenCredential,
    progress: Callable[[str], None],
    read_secrets: bool = False,
    on_page: Callable[[str, list[dict[str, Any]]], None] | None = None,
) -> Snapshot:
    """Every live collector once, under one deadline (`collect_timeout`): what is not read by then is `error`."""
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document = new_document(target.public_view(), "attach", created)
    budget = Budget.for_target(target)
    arm = ArmCollector(target, credential, progress, budget)
    kube: dict[str, Any] = {}
    beside: dict[str, Any] = {}

    def azure_dns_tls() -> None:
        """Network-bound, independent of the kube side: runs while the kube LISTs are parsed."""
        beside["azure"] = arm.collect()
        beside["dns"] = collect_dns_evidence(target, beside["azure"], progress, budget)
        beside["tls"] = collect_tls_evidence(target, beside["azure"], beside["dns"], progress, budget)

    late_pages = threading.Event()  # set at the deadline: pages still arriving then are not handed over

    def forward(key: str, page: list[dict[str, Any]]) -> None:
        if on_page is not None and not late_pages.is_set():
            on_page(key, page)

    decryption = OwnershipDecryption(read_secrets)
    workers = [_Worker(azure_dns_tls), _Worker(lambda: collect_kube(target, kube_configuration, progress, read_secrets,
                                                                        budget, entries=kube, on_page=forward,
                                                                        see_raw=decryption.see))]
    for worker in workers:
        worker.join(budget.remaining() + GRACE_SECONDS)
    late_pages.set()
    late = f"not collected: the collection deadline ({budget.seconds:g} s) passed first"
    document["kube"] = {**{kind_key(s.api_version, s.kind): error(late) for s in KINDS}, **dict(kube)}
    document["azure"] = beside.get("azure") or {key: error(late) for key in ARM_ENTRIES}
    document["dns"] = beside.get("dns") or {"parent": error(late), "servers": error(late)}
    document["tls"] = beside.get("tls") or unavailable(late)
    # external-dns' encrypted ownership records, decrypted while the key is in hand (the snapshot never holds it)
    document["decrypted"] = {"externalDnsOwnership": decryption.entry(document["azure"])}
    recorded_store = record_trust_store(target.trust_store)
    if recorded_store is not None:  # a replay after the file is gone still judges TLS-001 (aksid.recorded_trust)
        document["trust_store"] = recorded_store
    if not budget.expired():
        arm.add_identities(document["azure"], _identity_ids_in_cluster(document["kube"]))
    document["collection"] = budget.summary()
    return Snapshot(document)


class _Worker:
    """A daemon thread: a collector stuck past the deadline must not keep the run (or the interpreter) alive."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,), name="aksid-collect", daemon=True)
        self.thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by join
            self.failure = exc

    def join(self, timeout: float) -> None:
        self.thread.join(max(0.0, timeout))
        if self.failure is not None:
            raise self.failure
