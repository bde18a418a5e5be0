"""Record changes on the real knot servers, as Azure DNS propagates a change to all of its name servers."""

from __future__ import annotations

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update

from aksid.config import parse_dns_address

TIMEOUT = 3.0


class UpdateRefused(RuntimeError):
    """A server did not take the change; the message names it."""


def replace(zone: str, servers: list[str], key: dict[str, str], name: str, rdtype: str, ttl: int,
            values: list[str]) -> None:
    """Set (or, with no values, delete) one RRset on every server."""
    origin = dns.name.from_text(zone.rstrip(".") + ".")
    for server in servers:
        update = dns.update.UpdateMessage(
            origin, keyring=dns.tsigkeyring.from_text({key["name"]: key["secret"]}),
            keyname=dns.name.from_text(key["name"]), keyalgorithm=dns.name.from_text(key.get("algorithm", "hmac-sha256")))
        update.delete(name, rdtype)
        for value in values:
            update.add(name, ttl, rdtype, value)
        host, port = parse_dns_address(server)
        try:
            response = dns.query.tcp(update, host, port=port, timeout=TIMEOUT)
        except (OSError, dns.exception.DNSException) as exc:
            raise UpdateRefused(f"{server} did not take {name} {rdtype}: {exc}") from None
        if response.rcode() != dns.rcode.NOERROR:
            raise UpdateRefused(f"{server} refused {name} {rdtype}: {dns.rcode.to_text(response.rcode())}")
