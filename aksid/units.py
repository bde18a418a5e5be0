"""The names a check declares: the units of evidence it reads and the arrows of the chain picture it judges.

A unit is what aksid/coverage.py counts and a snapshot keeps one entry for, named `<section>:<name>`:
- `kube:<Kind>`: one Kubernetes kind as listed (aksid/collect/kinds.py), e.g. `kube:DaemonSet`;
- `azure:<entry>`: one ARM read (the snapshot's `azure` keys), e.g. `azure:roleAssignments`;
- `dns:parent` (what the parent zone's servers say about the delegation), `dns:servers` (the zone's name servers'
  answers);
- `tls:<probe>`: `tls:handshake` (the served chain, the protocol), `tls:legacy`, `tls:http`, `tls:page`;
- `provision:<part>`: what provision mode created and observed: `provision:probes`, `provision:canary`,
  `provision:teardown` (not counted by the coverage: a run either provisions or not).

An arrow is `<node> → <node>` of aksid/reporting/chain.py's picture (`->` is accepted for the arrow), or a branch's
(`kubelet identity → zone`); the canary's chain, drawn beside it in provision mode, names its arrows
`canary: <node> → <node>`.

Imports nothing heavy: the `check` marker validates against these names when a suite is imported.
"""

from __future__ import annotations

from aksid.collect.kinds import KINDS

KUBE_KINDS: tuple[str, ...] = tuple(spec.kind for spec in KINDS)
# The snapshot's `azure` keys: aksid.collect.arm.ARM_ENTRIES, and the federated credentials read per identity.
AZURE_ENTRIES: tuple[str, ...] = ("managedCluster", "dnsZone", "recordSets", "identities", "roleAssignments",
                                  "roleDefinitions", "federatedCredentials", "scaleSets", "accessAssignments")
DNS_ENTRIES: tuple[str, ...] = ("parent", "servers")
TLS_ENTRIES: tuple[str, ...] = ("handshake", "legacy", "http", "page")
PROVISION_ENTRIES: tuple[str, ...] = ("probes", "canary", "teardown")

SECTIONS: dict[str, tuple[str, ...]] = {"kube": KUBE_KINDS, "azure": AZURE_ENTRIES, "dns": DNS_ENTRIES,
                                        "tls": TLS_ENTRIES, "provision": PROVISION_ENTRIES}
UNITS: tuple[str, ...] = tuple(f"{section}:{name}" for section, names in SECTIONS.items() for name in names)

# The evidence chain report.html draws (aksid/reporting/chain.py), one node per link, and the canary's.
NODES: tuple[str, ...] = ("pod", "binding", "identity", "role", "zone", "record", "ingress IP", "certificate",
                          "served chain", "padlock")
CANARY_NODES: tuple[str, ...] = ("canary Ingress", "Azure DNS record", "name servers", "certificate", "served chain",
                                 "teardown")
CANARY = "canary: "


def arrows(nodes: tuple[str, ...], prefix: str = "") -> tuple[str, ...]:
    """`pod → binding`, ...: the arrow from each node to the next."""
    return tuple(f"{prefix}{source} → {target}" for source, target in zip(nodes[:-1], nodes[1:], strict=True))


# Principals other than the DNS identity that a check may find able to write the zone: drawn beside the chain,
# with their own arrow into the node they reach, only when that check is red (RBAC-003: the kubelet identity).
BRANCH_ARROWS: tuple[str, ...] = ("kubelet identity → zone",)
MAIN_ARROWS: tuple[str, ...] = arrows(NODES)
ARROWS: tuple[str, ...] = MAIN_ARROWS + BRANCH_ARROWS
CANARY_ARROWS: tuple[str, ...] = arrows(CANARY_NODES, CANARY)


def arrow(name: str) -> str:
    """An arrow as declared (`identity -> role`, extra spaces) in the one spelling the chain uses (`identity → role`)."""
    source, separator, target = name.replace("->", "→").partition("→")
    return f"{source.strip()} → {target.strip()}" if separator else name.strip()


def unit_of(section: str, key: str) -> str:
    """The unit of one entry of a snapshot's section, as aksid/coverage.py names it: `apps/v1/DaemonSet` in `kube` is
    `kube:DaemonSet`; `servers ns1-01.azure-dns.com.` in `dns` (one server of the entry) is `dns:servers`."""
    if section == "kube":
        return f"kube:{key.rsplit('/', 1)[-1]}"
    if section == "dns":
        return f"dns:{key.split(' ', 1)[0]}"
    return f"{section}:{key}"
