"""external-dns (Azure provider, ingress and service sources, TXT registry) as its Deployment's flags configure it.

It publishes each host of an Ingress that has a load balancer address (with `--source=ingress`), and of a
LoadBalancer Service annotated `external-dns.alpha.kubernetes.io/hostname` (with `--source=service`), in the zone
its --domain-filter allows (suffix match, as external-dns compares: `example.test` matches the zone and every host
under it), only when the identity its pods are bound to may write the zone: the A record and its ownership TXT
records (the typed name `a-hello` and the old one `hello`, as 0.12-0.17 write them, renamed by --txt-prefix /
--txt-suffix, the value sealed with the AES key under --txt-encrypt-enabled) in Azure DNS, which then serves them
from every name server (here: RFC 2136 to the knot servers). A registry other than txt writes no ownership record;
encryption without a usable key stops it, as the real one refuses to start. With --policy=sync it deletes the
records of an Ingress that is gone; upsert-only and create-only never delete.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from aksid import external_dns as edns
from aksid.sandbox.controllers import external_dns_denials as denials
from aksid.sandbox.controllers import rfc2136
from aksid.sandbox.controllers.identities import arm_of_type, can_write_zone, workload_identity
from aksid.sandbox.controllers.world import World

TTL = 300
HOSTNAME_ANNOTATION = "external-dns.alpha.kubernetes.io/hostname"


@dataclass(frozen=True)
class Flags:
    namespace: str
    name: str
    policy: str
    owner: str
    domains: tuple[str, ...]
    registry: edns.Registry
    key: bytes | None  # the AES key when --txt-encrypt-enabled (None: not encrypting)


def flags(world: World) -> Flags | None:
    """The Azure-provider external-dns Deployment and its flags (external-dns' own defaults where absent); None when
    there is none, or when it would not start (encryption without a usable key)."""
    for deployment in world.kube.list_kind("apps", "Deployment"):
        if not edns.is_external_dns(deployment):
            continue
        registry = edns.registry_of(deployment)
        if registry.provider != "azure":
            continue
        key = None
        if registry.encrypted and registry.registry == edns.TXT_REGISTRY:
            key, _, _ = edns.resolve_key(registry.namespace, edns.key_spec(deployment), lambda ns, name, item: _secret(
                world, ns, name, item))
            if key is None:
                return None  # "the AES Encryption key must be set": it exits at start
        return Flags(registry.namespace, registry.name, edns.setting(deployment, "policy", "sync"), registry.owner,
                     registry.domain_filters, registry, key)
    return None


def _secret(world: World, namespace: str, name: str, item: str) -> str | None:
    secret = world.kube.get("", "Secret", namespace, name)
    if secret is None:
        return None
    if item in (secret.get("data") or {}):
        return str(secret["data"][item])
    if item in (secret.get("stringData") or {}):
        return base64.b64encode(str(secret["stringData"][item]).encode()).decode()
    return None


def reconcile(world: World, ingresses: list[dict[str, Any]], gone: list[tuple[str, str]],
              services: list[dict[str, Any]] | None = None) -> None:
    """Publish the hosts of `ingresses` and annotated `services` (created through the API) its --source flags list;
    with sync, unpublish those of the Ingresses `gone`."""
    config = flags(world)
    zone = _zone(world, config)
    if config is None or zone is None or world.endpoints is None:
        return
    identity = workload_identity(world, config.namespace, config.name)
    writable = can_write_zone(world, identity, zone["id"])
    sources = config.registry.sources
    published: list[tuple[dict[str, Any], str, list[str]]] = []
    if "ingress" in sources:
        published += [(i, f"ingress/{i['metadata']['namespace']}/{i['metadata']['name']}", _ingress_hosts(i))
                      for i in ingresses]
    if "service" in sources:
        published += [(s, f"service/{s['metadata']['namespace']}/{s['metadata']['name']}", _service_hosts(s))
                      for s in services or [] if (s.get("spec") or {}).get("type") == "LoadBalancer"]
    for obj, resource, hosts in published:
        points = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        address = next((p.get("ip") for p in points if p.get("ip")), None)
        for host in hosts:
            if not (address and _in_zone(host, zone["name"]) and edns.domain_matches(config.domains, host)):
                continue
            if writable:
                _publish(world, zone, config, resource, host, address)
            elif identity is not None:
                denials.log(world, config, zone, identity, resource, host, address,
                            _ownership_records(config, host, zone["name"]))
    if not writable:
        return  # nothing it may delete either
    if config.policy == "sync" and "ingress" in sources:
        for namespace, name in gone:
            _unpublish(world, zone, config, f"ingress/{namespace}/{name}")


def _zone(world: World, config: Flags | None) -> dict[str, Any] | None:
    """The zone external-dns manages: one its domain filter matches (by suffix), or a filter inside it."""
    zones = arm_of_type(world, "Microsoft.Network/dnszones")
    if config is None:
        return None
    return next((z for z in zones if edns.domain_matches(config.domains, str(z.get("name")))
                 or any(_in_zone(d.lstrip("."), str(z.get("name"))) for d in config.domains)), None)


def _in_zone(host: str, zone: str) -> bool:
    host, zone = host.rstrip(".").lower(), zone.rstrip(".").lower()
    return host == zone or host.endswith("." + zone)


def _ingress_hosts(ingress: dict[str, Any]) -> list[str]:
    return [str(rule.get("host")) for rule in (ingress.get("spec") or {}).get("rules") or [] if rule.get("host")]


def _service_hosts(service: dict[str, Any]) -> list[str]:
    value = ((service.get("metadata") or {}).get("annotations") or {}).get(HOSTNAME_ANNOTATION) or ""
    return [h.strip() for h in str(value).split(",") if h.strip()]


def _relative(host: str, zone: str) -> str:
    return edns.relative(host, zone)


def _ownership(config: Flags, resource: str) -> str:
    text = edns.ownership_text(config.owner, resource)
    return f'"{edns.encrypt(text, config.key) if config.key is not None else text}"'


def _owner_fields(config: Flags, value: str) -> dict[str, str] | None:
    fields = edns.ownership_fields(value)
    if fields is None and config.key is not None:
        try:
            fields = edns.ownership_fields(edns.decrypt(value, config.key))
        except ValueError:
            return None
    return fields


def _ownership_records(config: Flags, host: str, zone: str) -> list[str]:
    """The TXT names (relative) of `host`'s ownership records: the typed `a-` one first, then the old one."""
    if config.registry.registry != edns.TXT_REGISTRY:
        return []
    return [_relative(name, zone) for name in edns.ownership_names(host, config.registry, ("a",))]


def _publish(world: World, zone: dict[str, Any], config: Flags, resource: str, host: str, address: str) -> None:
    relative = _relative(host, zone["name"])
    current = next((r for r in arm_of_type(world, "Microsoft.Network/dnszones/A")
                    if r["id"].lower() == f"{zone['id']}/A/{relative}".lower()), None)
    if current is not None and [a.get("ipv4Address") for a in current["properties"].get("ARecords") or []] == [address]:
        return
    owner = _ownership(config, resource)  # one value (one nonce) for both names, as one sync writes them
    names = _ownership_records(config, host, zone["name"])
    # the A record and its ownership records in one change, as external-dns writes them
    world.arm.put(_record_set(zone, "A", relative, host, {"ARecords": [{"ipv4Address": address}]}))
    for name in names:
        world.arm.put(_record_set(zone, "TXT", name, f"{name}.{zone['name']}" if name != "@" else zone["name"],
                                  {"TXTRecords": [{"value": [owner]}]}))
    ep = world.endpoints
    assert ep is not None
    rfc2136.replace(ep.zone, ep.dns_servers, ep.update_key, relative, "A", TTL, [address])
    for name in names:
        rfc2136.replace(ep.zone, ep.dns_servers, ep.update_key, name, "TXT", TTL, [owner])


def _unpublish(world: World, zone: dict[str, Any], config: Flags, resource: str) -> None:
    """Delete the records whose ownership TXT names `resource` and this owner (never anyone else's)."""
    ep = world.endpoints
    assert ep is not None
    owned: set[str] = set()
    for txt in arm_of_type(world, "Microsoft.Network/dnszones/TXT"):
        for value in edns.txt_values(txt):
            fields = _owner_fields(config, value) or {}
            if fields.get("external-dns/owner") == config.owner and fields.get("external-dns/resource") == resource:
                owned.add(str(txt["name"]).lower())
    if not owned:
        return
    for record in arm_of_type(world, "Microsoft.Network/dnszones/A"):
        name = str(record["name"])
        host = zone["name"] if name == "@" else f"{name}.{zone['name']}"
        names = {n.lower() for n in _ownership_records(config, host, zone["name"])}
        if not names & owned:
            continue
        for rdtype, record_name in [("TXT", n) for n in sorted(names & owned)] + [("A", name)]:
            world.arm.remove(f"{zone['id']}/{rdtype}/{record_name}")
            rfc2136.replace(ep.zone, ep.dns_servers, ep.update_key, record_name, rdtype, TTL, [])


def _record_set(zone: dict[str, Any], rdtype: str, relative: str, host: str, records: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{zone['id']}/{rdtype}/{relative}", "name": relative, "type": f"Microsoft.Network/dnszones/{rdtype}",
            "etag": str(uuid.uuid4()), "properties": {"metadata": {}, "TTL": TTL, "fqdn": f"{host}.",
                                                      "provisioningState": "Succeeded", "targetResource": {}, **records}}
