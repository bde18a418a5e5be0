"""external-dns (Azure provider, ingress source, TXT registry) as its Deployment's flags configure it.

It publishes each host of an Ingress that has a load balancer address, in the zone its --domain-filter
allows, only when the identity its pods are bound to may write the zone: the A record and its ownership
TXT records (both names, as 0.12-0.17 write them) in Azure DNS, which then serves them from every name
server (here: RFC 2136 to the knot servers). With --policy=sync it deletes the records of an Ingress
that is gone; upsert-only and create-only never delete.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aksid.sandbox.controllers import rfc2136
from aksid.sandbox.controllers.identities import arm_of_type, can_write_zone, workload_identity
from aksid.sandbox.controllers.world import World

TTL = 300


@dataclass(frozen=True)
class Flags:
    namespace: str
    name: str
    policy: str
    owner: str
    domains: tuple[str, ...]


def flags(world: World) -> Flags | None:
    """The Azure-provider external-dns Deployment and its flags (external-dns' own defaults where absent)."""
    for deployment in world.kube.list_kind("apps", "Deployment"):
        containers = deployment["spec"]["template"]["spec"].get("containers") or []
        args = [a for c in containers for a in c.get("args") or []]
        if "--provider=azure" not in args:
            continue
        value = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}
        domains = tuple(a.split("=", 1)[1].rstrip(".") for a in args if a.startswith("--domain-filter="))
        return Flags(deployment["metadata"]["namespace"], deployment["metadata"]["name"], value.get("--policy", "sync"),
                     value.get("--txt-owner-id", "default"), domains)
    return None


def reconcile(world: World, ingresses: list[dict[str, Any]], gone: list[tuple[str, str]]) -> None:
    """Publish the hosts of `ingresses` (created through the API); with sync, unpublish those of `gone`."""
    config = flags(world)
    zone = _zone(world, config)
    if config is None or zone is None or world.endpoints is None:
        return
    if not can_write_zone(world, workload_identity(world, config.namespace, config.name), zone["id"]):
        return  # the real one logs "AuthorizationFailed" on every sync and publishes nothing
    for ingress in ingresses:
        points = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        address = next((p.get("ip") for p in points if p.get("ip")), None)
        for host in _hosts(ingress, zone["name"]):
            if address:
                _publish(world, zone, config, ingress, host, address)
    if config.policy == "sync":
        for namespace, name in gone:
            _unpublish(world, zone, config, f"ingress/{namespace}/{name}")


def _zone(world: World, config: Flags | None) -> dict[str, Any] | None:
    zones = arm_of_type(world, "Microsoft.Network/dnszones")
    if config is None:
        return None
    return next((z for z in zones if not config.domains or str(z.get("name")).rstrip(".") in config.domains), None)


def _hosts(ingress: dict[str, Any], zone: str) -> list[str]:
    hosts = [str(rule.get("host")) for rule in (ingress.get("spec") or {}).get("rules") or [] if rule.get("host")]
    return [h for h in hosts if h == zone or h.endswith("." + zone)]


def _relative(host: str, zone: str) -> str:
    return "@" if host == zone else host[: -len(zone) - 1]


def _ownership(config: Flags, resource: str) -> str:
    return f'"heritage=external-dns,external-dns/owner={config.owner},external-dns/resource={resource}"'


def _publish(world: World, zone: dict[str, Any], config: Flags, ingress: dict[str, Any], host: str, address: str) -> None:
    relative = _relative(host, zone["name"])
    meta = ingress["metadata"]
    owner = _ownership(config, f"ingress/{meta['namespace']}/{meta['name']}")
    current = next((r for r in arm_of_type(world, "Microsoft.Network/dnszones/A")
                    if r["id"].lower() == f"{zone['id']}/A/{relative}".lower()), None)
    if current is not None and [a.get("ipv4Address") for a in current["properties"].get("ARecords") or []] == [address]:
        return
    # the A record and its ownership records in one change, as external-dns writes them
    world.arm.put(_record_set(zone, "A", relative, host, {"ARecords": [{"ipv4Address": address}]}))
    for name in (relative, f"a-{relative}"):
        world.arm.put(_record_set(zone, "TXT", name, host, {"TXTRecords": [{"value": [owner]}]}))
    ep = world.endpoints
    assert ep is not None
    rfc2136.replace(ep.zone, ep.dns_servers, ep.update_key, relative, "A", TTL, [address])
    for name in (relative, f"a-{relative}"):
        rfc2136.replace(ep.zone, ep.dns_servers, ep.update_key, name, "TXT", TTL, [owner])


def _unpublish(world: World, zone: dict[str, Any], config: Flags, resource: str) -> None:
    """Delete the records whose ownership TXT names `resource` and this owner (never anyone else's)."""
    owner = _ownership(config, resource)
    ep = world.endpoints
    assert ep is not None
    for txt in arm_of_type(world, "Microsoft.Network/dnszones/TXT"):
        values = [v for item in txt["properties"].get("TXTRecords") or [] for v in item.get("value") or []]
        if owner not in values:
            continue
        name = str(txt["name"])
        relative = name[2:] if name.startswith("a-") else name
        for rdtype, record in (("TXT", name), ("A", relative)):
            world.arm.remove(f"{zone['id']}/{rdtype}/{record}")
            rfc2136.replace(ep.zone, ep.dns_servers, ep.update_key, record, rdtype, TTL, [])


def _record_set(zone: dict[str, Any], rdtype: str, relative: str, host: str, records: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{zone['id']}/{rdtype}/{relative}", "name": relative, "type": f"Microsoft.Network/dnszones/{rdtype}",
            "etag": str(uuid.uuid4()), "properties": {"metadata": {}, "TTL": TTL, "fqdn": f"{host}.",
                                                      "provisioningState": "Succeeded", "targetResource": {}, **records}}
