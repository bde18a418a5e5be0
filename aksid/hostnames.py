"""Host names matched as TLS clients and ingress-nginx match them: exact, or a wildcard for one left-most label.

RFC 6125 (section 6.4.3) as browsers, Go's `VerifyHostname` and the CA/Browser Forum rules apply it: names
compare case-insensitively, a trailing dot ignored; `*` is only ever the whole left-most label and matches
exactly one non-empty label, so `*.example.test` covers `hello.example.test` and neither `example.test` nor
`a.b.example.test`; a partial wildcard (`f*.example.test`), a `*` elsewhere than the left-most label and a
wildcard directly over a single label (`*.test`, which no CA issues) match nothing but their own spelling.

The same rule serves every place a check looks for the demo host: an Ingress rule's `host` (ingress-nginx
accepts `*.example.test` there), an Ingress TLS entry's `hosts`, a Certificate's `dnsNames`/`commonName`,
and the served leaf's subjectAltName. Where a name is listed exactly and by a wildcard, the exact one is
preferred (nginx's server_name, and ingress-nginx's TLS lookup, try the exact name first): see `best`.
ingress-nginx itself compares a TLS entry's hosts exactly and then falls back to the entry whose Secret's
certificate covers the host (Go's VerifyHostname, this same rule); matching the entry's hosts by the rule here
gives its answer for cert-manager's setups, where the Secret holds exactly what the entry lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

EXACT = 2
WILDCARD = 1
NONE = 0


def normalize(name: Any) -> str:
    """Lower case, without the trailing dot of an absolute name; '' for a missing name."""
    return str(name or "").strip().lower().rstrip(".")


def is_wildcard(pattern: Any) -> bool:
    """Whether `pattern` is a wildcard that can cover names: `*.` then at least two labels."""
    name = normalize(pattern)
    if not name.startswith("*."):
        return False
    rest = name[2:].split(".")
    return len(rest) >= 2 and all(rest) and "*" not in name[2:]


def strength(pattern: Any, host: Any) -> int:
    """How `pattern` covers `host`: EXACT (2), WILDCARD (1) or NONE (0)."""
    name, wanted = normalize(pattern), normalize(host)
    if not name or not wanted:
        return NONE
    if name == wanted:
        return EXACT
    if not is_wildcard(name) or "*" in wanted:
        return NONE
    first, dot, rest = wanted.partition(".")
    return WILDCARD if dot and first and rest == name[2:] else NONE


def matches(pattern: Any, host: Any) -> bool:
    """Whether the presented name `pattern` (exact or `*.` wildcard) covers `host`."""
    return strength(pattern, host) > NONE


def covers(patterns: Iterable[Any] | None, host: Any) -> bool:
    """Whether any of `patterns` covers `host`."""
    return any(matches(pattern, host) for pattern in patterns or ())


def covering(patterns: Iterable[Any] | None, host: Any) -> list[str]:
    """The names among `patterns` that cover `host`, as spelled there."""
    return [str(pattern) for pattern in patterns or () if matches(pattern, host)]


def best_strength(patterns: Iterable[Any] | None, host: Any) -> int:
    return max((strength(pattern, host) for pattern in patterns or ()), default=NONE)


def best(items: Iterable[T], names_of: Callable[[T], Iterable[Any] | None], host: Any) -> T | None:
    """The first item whose names cover `host` exactly, else the first that covers it by a wildcard, else None."""
    found: T | None = None
    for item in items:
        level = best_strength(names_of(item), host)
        if level == EXACT:
            return item
        if level == WILDCARD and found is None:
            found = item
    return found


def ranked(items: Iterable[T], names_of: Callable[[T], Iterable[Any] | None], host: Any) -> list[T]:
    """The items whose names cover `host`: exact matches first, then wildcard ones, each in their order."""
    levels = [(best_strength(names_of(item), host), item) for item in items]
    return [item for level, item in levels if level == EXACT] + [item for level, item in levels if level == WILDCARD]


def rule_hosts(ingress: dict[str, Any]) -> list[str]:
    """The hosts of an Ingress's rules (a rule without a host serves every name: not listed)."""
    return [str(rule.get("host")) for rule in (ingress.get("spec") or {}).get("rules") or [] if rule.get("host")]


def tls_hosts(entry: dict[str, Any]) -> list[str]:
    return [str(host) for host in entry.get("hosts") or [] if host]


def certificate_names(certificate: dict[str, Any] | None) -> list[str]:
    """A cert-manager Certificate's dnsNames and commonName."""
    spec = (certificate or {}).get("spec") or {}
    names = [str(name) for name in spec.get("dnsNames") or [] if name]
    if spec.get("commonName"):
        names.append(str(spec["commonName"]))
    return names


def ingresses_for(ingresses: Iterable[dict[str, Any]], host: Any) -> list[dict[str, Any]]:
    """The Ingresses with a rule for `host` (exact rules first, then wildcard ones), as ingress-nginx routes it."""
    return ranked(ingresses, rule_hosts, host)


def tls_entry_for(ingresses: Iterable[dict[str, Any]], host: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(Ingress, TLS entry with a secretName) whose hosts cover `host`: an exact entry before a wildcard one, and
    among equals the Ingresses with a rule for `host` first (ingress-nginx takes a host's TLS from its Ingress)."""
    listed = list(ingresses)
    routing = ingresses_for(listed, host)
    ordered = routing + [ingress for ingress in listed if not any(ingress is other for other in routing)]
    entries = [(ingress, entry) for ingress in ordered for entry in (ingress.get("spec") or {}).get("tls") or []
               if entry.get("secretName")]
    return best(entries, lambda pair: tls_hosts(pair[1]), host)
