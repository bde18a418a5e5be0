"""The target: one validated description of the environment under test, and where each value came from.

Sources, in rising precedence: YAML profile < env.sh file < process environment < command line.
Every problem is found here, before any network call, and reported in one sentence.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aksid.envfile import EnvFileError, Unrun, read_env_file
from aksid.suggest import or_listing
from aksid.userfiles import UserFileError, read_yaml, reported_as

ACME_ISSUERS = ("letsencrypt-staging", "letsencrypt-prod")
LETSENCRYPT_PROD = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one sentence for the user."""


# -- validators: return an error phrase, or None when the value is acceptable ------------------

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}(?<!\.)$")
_CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9][-_a-zA-Z0-9]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _dns_name(value: str) -> str | None:
    labels = value.rstrip(".").lower().split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.match(label) for label in labels):
        return "is not a valid DNS domain name"
    return None


def _dns_label(value: str) -> str | None:
    return None if _DNS_LABEL.match(value) else "is not a valid DNS label / Kubernetes name"


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[str], str | None]:
    return lambda value: None if regex.match(value) else f"is not a valid {what}"


def _one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _https_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https:// URL"
    return None


def _existing_file(value: str) -> str | None:
    if Path(value).is_dir():
        return "names a folder, not a file"
    return None if Path(value).is_file() else "names a file that does not exist"


def _pem_bundle(value: str) -> str | None:
    """A file of PEM certificates, checked when the target is resolved: a folder, an empty file or a DER/text file
    would otherwise be found only by TLS-001, after the whole collection."""
    if Path(value).is_dir():
        return "names a folder: give the PEM bundle file itself (the certificates of a folder are not read)"
    if problem := _existing_file(value):
        return problem
    from aksid.trust import store_problem  # cryptography: only when a trust store is configured

    return store_problem(value)


_BIND_ENTRY = re.compile(r"^(?:[a-z0-9-]+/)?[a-z0-9.-]+=[A-Za-z0-9._-]+$")
# ROLE is a role GUID or name; SCOPE is zone, dns-resource-group, aks-resource-group, subscription or an id
# Kubernetes names: a namespace is a DNS label, a ServiceAccount a DNS subdomain.
_WI_ENTRY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# access_allowed: Kubernetes subjects as RBAC names them (User:NAME, Group:NAME, ServiceAccount:NAMESPACE/NAME) and
# Azure principals by object id (azure:GUID, or a bare GUID).
_ACCESS_ENTRY = re.compile(
    r"^((User|Group):[^,\s]+|ServiceAccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
    r"|(azure:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.IGNORECASE)
_RBAC_ENTRY = re.compile(r"^[^@,]+@(zone|dns-resource-group|aks-resource-group|subscription|/[^@,]+)$")
READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def parse_dns_address(text: str) -> tuple[str, int]:
    """"ip", "ip:port", "[v6]:port" or a bare IPv6 address (port 53 when none); names are not resolved."""
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(f"'{text}' is not an address (expected ip, ip:port or [ipv6]:port)") from None
    if not 0 < number < 65536:
        raise ValueError(f"'{text}' has an invalid port")
    return host, number


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _dns_addresses(value: str) -> str | None:
    items = _split(value)
    if not items:
        return "must list at least one address (ip:port)"
    for item in items:
        try:
            parse_dns_address(item)
        except ValueError as exc:
            return f"has an entry {exc}"
    return None


def _dns_server_map(value: str) -> str | None:
    items = _split(value)
    if not items:
        return "must map at least one name server (NAME=ip:port)"
    for item in items:
        name, sep, address = item.partition("=")
        if not sep or _dns_name(name.strip()):
            return f"has an entry '{item}' not of the form NS-NAME=ip:port"
        try:
            parse_dns_address(address)
        except ValueError as exc:
            return f"has an entry for {name.strip()} that {str(exc).split(' ', 1)[1]}"
    return None


def _seconds_up_to(limit: float) -> Callable[[str], str | None]:
    def validate(value: str) -> str | None:
        try:
            seconds = float(value)
        except ValueError:
            return "is not a number of seconds"
        return None if 0 < seconds <= limit else f"must be more than 0 and at most {limit:g} seconds"
    return validate


_seconds = _seconds_up_to(60)  # one network answer
_wait_seconds = _seconds_up_to(86400)  # all of provision mode's waits
_request_seconds = _seconds_up_to(300)  # one HTTP request to an API


def _port(value: str) -> str | None:
    return None if value.isdigit() and 0 < int(value) < 65536 else "is not a TCP port (1-65535)"


def _days(value: str) -> str | None:
    return None if value.isdigit() and int(value) <= 3650 else "is not a whole number of days (0-3650)"


def _ip_address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return "is not an IP address (names are not resolved: give the address to connect to)"
    return None


_HTTPS_ENTRY = re.compile(r"^https://[^\s,]+$")
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _boolean(value: str) -> str | None:
    return None if value.strip().lower() in _TRUE + _FALSE else "is not true or false"


def _list_problem(value: str, entry: re.Pattern[str], form: str, allow_empty: bool = False) -> str | None:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items and not allow_empty:
        return f"must list at least one {form}"
    bad = [item for item in items if not entry.match(item)]
    return f"has entries not of the form {form}: {', '.join(bad)}" if bad else None


@dataclass(frozen=True)
class FieldSpec:
    name: str
    env: tuple[str, ...] = ()
    required: bool = False
    default: str | None = None
    validate: Callable[[str], str | None] | None = None
    is_path: bool = False
    help: str = ""


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("domain", ("AZ_DNS_DOMAIN",), required=True, validate=_dns_name, help="the Azure DNS zone"),
    FieldSpec("dns_resource_group", ("AZ_DNS_RESOURCE_GROUP", "AZ_RESOURCE_GROUP"), required=True,
              validate=_pattern(_RESOURCE_GROUP, "resource group name")),
    FieldSpec("aks_resource_group", ("AZ_AKS_RESOURCE_GROUP", "AZ_RESOURCE_GROUP"), required=True,
              validate=_pattern(_RESOURCE_GROUP, "resource group name")),
    FieldSpec("cluster_name", ("AZ_AKS_CLUSTER_NAME",), required=True,
              validate=_pattern(_CLUSTER_NAME, "AKS cluster name")),
    FieldSpec("subscription_id", ("AZ_SUBSCRIPTION_ID",), required=True,
              validate=_pattern(_GUID, "subscription id (a GUID)")),
    FieldSpec("tenant_id", ("AZ_TENANT_ID",), validate=_pattern(_GUID, "tenant id (a GUID)")),
    FieldSpec("acme_issuer", ("ACME_ISSUER",), default="letsencrypt-prod", validate=_one_of(*ACME_ISSUERS)),
    FieldSpec("acme_issuer_email", ("ACME_ISSUER_EMAIL",), validate=_pattern(_EMAIL, "e-mail address")),
    FieldSpec("acme_prod_server", ("AKSID_ACME_PROD_SERVER",), default=LETSENCRYPT_PROD, validate=_https_url),
    FieldSpec("acme_staging_server", ("AKSID_ACME_STAGING_SERVER",), default=LETSENCRYPT_STAGING, validate=_https_url),
    FieldSpec("addon_namespace", ("AKSID_ADDON_NAMESPACE",), default="kube-addons", validate=_dns_label),
    FieldSpec("demo_host", ("AKSID_DEMO_HOST",), default="hello", validate=_dns_label),
    FieldSpec("identity_name", ("IDENTITY_NAME",), validate=_pattern(_RESOURCE_GROUP, "identity name")),
    FieldSpec("bind_allowed", ("AKSID_BIND_ALLOWED",), default="cert-manager=cert-manager,external-dns=external-dns",
              validate=lambda v: _list_problem(v, _BIND_ENTRY, "DEPLOYMENT=SELECTOR or NAMESPACE/DEPLOYMENT=SELECTOR")),
    # Workload identity's counterpart of bind_allowed: the ServiceAccounts that may use the DNS identity
    # (federated credential subject system:serviceaccount:NAMESPACE:SERVICEACCOUNT, client-id annotation).
    FieldSpec("wi_allowed", ("AKSID_WI_ALLOWED",), default="kube-addons/external-dns,kube-addons/cert-manager",
              validate=lambda v: _list_problem(v, _WI_ENTRY, "NAMESPACE/SERVICEACCOUNT"),
              help="ServiceAccounts allowed to use the DNS identity through workload identity"),
    # Issuers (besides this cluster's) whose tokens may be exchanged for the DNS identity: the multi-cluster pattern,
    # one federated credential per cluster for the same allowed ServiceAccount (exact URLs, as Entra ID compares).
    FieldSpec("wi_trusted_issuers", ("AKSID_WI_TRUSTED_ISSUERS",),
              validate=lambda v: _list_problem(v, _HTTPS_ENTRY, "https://ISSUER-URL", allow_empty=True),
              help="other clusters' OIDC issuer URLs allowed in the DNS identity's federated credentials"),
    FieldSpec("rbac_allowed", ("AKSID_RBAC_ALLOWED",), default=f"{READER_ROLE}@dns-resource-group",
              validate=lambda v: _list_problem(v, _RBAC_ENTRY, "ROLE@SCOPE", allow_empty=True)),
    # ACCESS-001/002: who else may act as the DNS identity, or re-point it, beyond what is allowed by default.
    FieldSpec("access_allowed", ("AKSID_ACCESS_ALLOWED",),
              validate=lambda v: _list_problem(v, _ACCESS_ENTRY, "User:NAME, Group:NAME, ServiceAccount:NAMESPACE/NAME "
                                               "or azure:PRINCIPAL-ID", allow_empty=True),
              help="other principals allowed to act as the DNS identity or re-point it (ACCESS-001/002)"),
    # MIG-001: judge readiness for the cutover to workload identity even before any workload uses it.
    FieldSpec("migration_required", ("AKSID_MIGRATION_REQUIRED",), default="false", validate=_boolean,
              help="judge MIG-001 (every pod-identity workload has a workload identity path) before migrating starts"),
    FieldSpec("kubeconfig", ("KUBECONFIG",), validate=_existing_file, is_path=True),
    FieldSpec("kube_context", ("AKSID_KUBE_CONTEXT",)),
    FieldSpec("arm_endpoint", ("AKSID_ARM_ENDPOINT",), default=DEFAULT_ARM_ENDPOINT, validate=_https_url),
    FieldSpec("arm_ca_bundle", ("AKSID_ARM_CA_BUNDLE",), validate=_existing_file, is_path=True),
    FieldSpec("azure_credential", ("AKSID_AZURE_CREDENTIAL",), default="default",
              validate=_one_of("default", "token-file")),
    FieldSpec("azure_token_file", ("AKSID_AZURE_TOKEN_FILE",), validate=_existing_file, is_path=True),
    FieldSpec("network", ("AKSID_NETWORK",), default="any", validate=_one_of("any", "loopback-only")),
    # Where DNS queries go. Unset (real runs): the parent's servers and the zone's name servers are found
    # through the system resolver. Lists are comma-separated text: "ip:port,..." and "NS-NAME=ip:port,...".
    FieldSpec("dns_parent_servers", ("AKSID_DNS_PARENT_SERVERS",), validate=_dns_addresses,
              help="servers of the zone's parent, asked for the delegation"),
    FieldSpec("dns_server_addresses", ("AKSID_DNS_SERVER_ADDRESSES",), validate=_dns_server_map,
              help="address of each of the zone's name servers, by NS name"),
    FieldSpec("dns_timeout", ("AKSID_DNS_TIMEOUT",), default="2", validate=_seconds,
              help="seconds to wait for each DNS answer"),
    # The demo host as a browser sees it. The trust store defaults to Mozilla's (as certifi ships it); the
    # address defaults to what the zone's name servers answered for the host (DNS evidence).
    FieldSpec("trust_store", ("AKSID_TRUST_STORE",), validate=_pem_bundle, is_path=True,
              help="PEM bundle of trusted roots (default: Mozilla's store, from certifi)"),
    FieldSpec("tls_address", ("AKSID_TLS_ADDRESS",), validate=_ip_address,
              help="address to connect to for the demo host (default: its A record, as the zone's servers answer it)"),
    FieldSpec("tls_https_port", ("AKSID_TLS_HTTPS_PORT",), default="443", validate=_port),
    FieldSpec("tls_http_port", ("AKSID_TLS_HTTP_PORT",), default="80", validate=_port),
    FieldSpec("tls_min_days", ("AKSID_TLS_MIN_DAYS",), default="14", validate=_days,
              help="minimum remaining lifetime of the served leaf, in days"),
    FieldSpec("tls_timeout", ("AKSID_TLS_TIMEOUT",), default="5", validate=_seconds,
              help="seconds to wait for each TLS/HTTP connection and answer"),
    # Provision mode: what it creates and how long it waits for the cluster's controllers.
    FieldSpec("probe_image", ("AKSID_PROBE_IMAGE",), default="mcr.microsoft.com/azurelinux/base/python:3.12",
              help="image of the identity probes (any image with python3)"),
    FieldSpec("canary_image", ("AKSID_CANARY_IMAGE",), default="paulbouwer/hello-kubernetes:1.10",
              help="image of the canary app"),
    FieldSpec("canary_host", ("AKSID_CANARY_HOST",), default="aksid-canary", validate=_dns_label,
              help="the canary's host name in the zone (one per target: external-dns upsert-only keeps one record)"),
    FieldSpec("provision_timeout", ("AKSID_PROVISION_TIMEOUT",), default="600", validate=_wait_seconds,
              help="seconds provision mode waits, in all, for the controllers (teardown not included)"),
    # Resilience: retries of transient faults draw on one deadline for the whole collection (aksid/collect/budget.py).
    FieldSpec("collect_timeout", ("AKSID_TIMEOUT",), default="300", validate=_wait_seconds,
              help="seconds the whole evidence collection may take, retries included (--aksid-timeout)"),
    FieldSpec("request_timeout", ("AKSID_REQUEST_TIMEOUT",), default="30", validate=_request_seconds,
              help="seconds to wait for one answer of the Kubernetes API or ARM"),
    FieldSpec("retry_after_max", ("AKSID_RETRY_AFTER_MAX",), default="30", validate=_wait_seconds,
              help="longest Retry-After a run waits out; a longer one gives up at once"),
)
FIELD_BY_NAME = {spec.name: spec for spec in FIELDS}
# What only a live run uses: static mode reads files, so a CI runner's stale KUBECONFIG or an unset credential
# never stops it (these keep their defaults there, unread and unchecked).
LIVE_ONLY_FIELDS = frozenset({
    "kubeconfig", "kube_context", "arm_endpoint", "arm_ca_bundle", "azure_credential", "azure_token_file", "network",
    "dns_parent_servers", "dns_server_addresses", "dns_timeout", "trust_store", "tls_address", "tls_https_port",
    "tls_http_port", "tls_timeout", "probe_image", "canary_image", "provision_timeout", "collect_timeout",
    "request_timeout", "retry_after_max",
})

# Profile sections map onto the flat field names.
_PROFILE_SECTIONS: dict[str, dict[str, str]] = {
    "target": {name: name for name in (
        "domain", "dns_resource_group", "aks_resource_group", "cluster_name", "subscription_id",
        "tenant_id", "acme_issuer", "acme_issuer_email", "acme_prod_server", "acme_staging_server",
        "addon_namespace", "demo_host", "identity_name",
        "bind_allowed", "wi_allowed", "wi_trusted_issuers", "rbac_allowed", "access_allowed",
    )},
    "kube": {"kubeconfig": "kubeconfig", "context": "kube_context"},
    "azure": {"endpoint": "arm_endpoint", "ca_bundle": "arm_ca_bundle", "credential": "azure_credential",
              "token_file": "azure_token_file"},
    "dns": {"parent_servers": "dns_parent_servers", "server_addresses": "dns_server_addresses", "timeout": "dns_timeout"},
    "tls": {"trust_store": "trust_store", "address": "tls_address", "https_port": "tls_https_port",
            "http_port": "tls_http_port", "min_days": "tls_min_days", "timeout": "tls_timeout"},
    "provision": {"probe_image": "probe_image", "canary_image": "canary_image", "canary_host": "canary_host",
                  "timeout": "provision_timeout"},
    "collect": {"timeout": "collect_timeout", "request_timeout": "request_timeout", "retry_after_max": "retry_after_max"},
}
# Profile settings that may be YAML lists / mappings; they are stored as the comma-separated text of their field.
_PROFILE_LISTS = {"dns_parent_servers"}
_PROFILE_MAPPINGS = {"dns_server_addresses"}
_PROFILE_SCALARS = {"network": "network"}


@dataclass(frozen=True)
class Target:
    """The resolved target; `sources` names where each value came from."""

    domain: str
    dns_resource_group: str
    aks_resource_group: str
    cluster_name: str
    subscription_id: str
    tenant_id: str | None
    acme_issuer: str
    acme_issuer_email: str | None
    acme_prod_server: str
    acme_staging_server: str
    addon_namespace: str
    demo_host: str
    identity_name: str
    bind_allowed: str
    rbac_allowed: str
    kubeconfig: str | None
    kube_context: str | None
    arm_endpoint: str
    arm_ca_bundle: str | None
    azure_credential: str
    azure_token_file: str | None
    network: str
    dns_parent_servers: str | None = None
    dns_server_addresses: str | None = None
    dns_timeout: str | None = "2"
    trust_store: str | None = None
    tls_address: str | None = None
    tls_https_port: str | None = "443"
    tls_http_port: str | None = "80"
    tls_min_days: str | None = "14"
    tls_timeout: str | None = "5"
    probe_image: str | None = "mcr.microsoft.com/azurelinux/base/python:3.12"
    canary_image: str | None = "paulbouwer/hello-kubernetes:1.10"
    canary_host: str | None = "aksid-canary"
    provision_timeout: str | None = "600"
    collect_timeout: str | None = "300"
    request_timeout: str | None = "30"
    retry_after_max: str | None = "30"
    wi_allowed: str = "kube-addons/external-dns,kube-addons/cert-manager"
    wi_trusted_issuers: str | None = None
    access_allowed: str | None = None
    migration_required: str | None = "false"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def demo_fqdn(self) -> str:
        return f"{self.demo_host}.{self.domain.rstrip('.')}"

    @property
    def zone_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.dns_resource_group}"
                f"/providers/Microsoft.Network/dnszones/{self.domain.rstrip('.')}")

    @property
    def cluster_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.aks_resource_group}"
                f"/providers/Microsoft.ContainerService/managedClusters/{self.cluster_name}")

    def acme_server_for(self, issuer: str) -> str:
        """The ACME directory an issuer of the tutorial must use (`-staging` → staging, otherwise production)."""
        return self.acme_staging_server if issuer.endswith("staging") else self.acme_prod_server

    def allowed_bindings(self) -> dict[tuple[str, str], str]:
        """{(namespace, deployment): selector} of the workloads allowed to carry identity selectors."""
        allowed = {}
        for item in filter(None, (part.strip() for part in self.bind_allowed.split(","))):
            workload, _, selector = item.partition("=")
            namespace, _, name = workload.rpartition("/")
            allowed[(namespace or self.addon_namespace, name)] = selector
        return allowed

    def allowed_service_accounts(self) -> set[tuple[str, str]]:
        """{(namespace, serviceaccount)} allowed to use the DNS identity through workload identity (wi_allowed)."""
        allowed = set()
        for item in filter(None, (part.strip() for part in self.wi_allowed.split(","))):
            namespace, _, name = item.partition("/")
            allowed.add((namespace, name))
        return allowed

    def trusted_issuers(self) -> list[str]:
        """Other clusters' issuer URLs the DNS identity's federated credentials may name (wi_trusted_issuers)."""
        return [part.strip() for part in (self.wi_trusted_issuers or "").split(",") if part.strip()]

    def allowed_access(self) -> dict[str, set[str]]:
        """access_allowed by kind: {"User", "Group", "ServiceAccount" (NAMESPACE/NAME), "azure" (object ids, lower
        case)}: the principals besides the defaults that may act as the DNS identity or re-point it."""
        allowed: dict[str, set[str]] = {"User": set(), "Group": set(), "ServiceAccount": set(), "azure": set()}
        for item in filter(None, (part.strip() for part in (self.access_allowed or "").split(","))):
            kind, _, name = item.partition(":")
            if not name:  # a bare GUID: an Azure principal
                kind, name = "azure", item
            kind = next((k for k in allowed if k.lower() == kind.lower()), kind)
            allowed.setdefault(kind, set()).add(name.lower() if kind == "azure" else name)
        return allowed

    def requires_migration(self) -> bool:
        """migration_required: MIG-001 judges readiness for the cutover even before any workload uses workload identity."""
        return str(self.migration_required or "").strip().lower() in _TRUE

    def allowed_roles(self) -> list[tuple[str, str]]:
        """[(role GUID or name, scope id)] the DNS identity may hold besides DNS Zone Contributor on the zone."""
        scopes = {
            "zone": self.zone_id,
            "dns-resource-group": f"/subscriptions/{self.subscription_id}/resourceGroups/{self.dns_resource_group}",
            "aks-resource-group": f"/subscriptions/{self.subscription_id}/resourceGroups/{self.aks_resource_group}",
            "subscription": f"/subscriptions/{self.subscription_id}",
        }
        allowed = []
        for item in filter(None, (part.strip() for part in self.rbac_allowed.split(","))):
            role, _, scope = item.rpartition("@")
            allowed.append((role, scopes.get(scope, scope)))
        return allowed

    def parent_servers(self) -> list[str] | None:
        """The configured parent servers ("ip:port"), or None: find them through the system resolver."""
        return _split(self.dns_parent_servers) if self.dns_parent_servers else None

    def server_addresses(self) -> dict[str, str] | None:
        """{zone NS name: "ip:port"} as configured, or None: resolve the NS names."""
        if not self.dns_server_addresses:
            return None
        pairs = (item.partition("=") for item in _split(self.dns_server_addresses))
        return {name.strip(): address.strip() for name, _, address in pairs}

    @property
    def dns_timeout_seconds(self) -> float:
        return float(self.dns_timeout or 2)

    @property
    def tls_https_port_number(self) -> int:
        return int(self.tls_https_port or 443)

    @property
    def tls_http_port_number(self) -> int:
        return int(self.tls_http_port or 80)

    @property
    def tls_min_days_count(self) -> int:
        """The leaf must still be valid this many days after collection (TLS-002)."""
        return int(self.tls_min_days if self.tls_min_days is not None else 14)

    @property
    def tls_timeout_seconds(self) -> float:
        return float(self.tls_timeout or 5)

    @property
    def provision_timeout_seconds(self) -> float:
        return float(self.provision_timeout or 600)

    @property
    def collect_timeout_seconds(self) -> float:
        return float(self.collect_timeout or 300)

    @property
    def request_timeout_seconds(self) -> float:
        return float(self.request_timeout or 30)

    @property
    def retry_after_max_seconds(self) -> float:
        return float(self.retry_after_max or 30)

    def public_view(self) -> dict[str, Any]:
        """The settings as shown in reports: file paths and names only, never file contents."""
        return {spec.name: getattr(self, spec.name) for spec in FIELDS}


def identity_name_for(domain: str) -> str:
    """`${AZ_DNS_DOMAIN/./-}-identity`: bash replaces only the first dot."""
    return domain.rstrip(".").replace(".", "-", 1) + "-identity"


# The team's own provisioning commands (profile `provision: {up, down}`), run around a provision run.
PROFILE_HOOKS = (("provision", "up"), ("provision", "down"))


def profile_hooks(path: Path | None) -> dict[str, str]:
    """{"up": CMD, "down": CMD} from a profile, read before the target (`up` may write files the profile names)."""
    if path is None or not path.is_file():
        return {}
    try:
        document = read_yaml(path, "the profile") or {}
    except UserFileError:
        return {}  # load_profile reports it in one sentence when the target is resolved
    section = document.get("provision") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        return {}
    return {name: str(section[name]) for _, name in PROFILE_HOOKS if section.get(name)}


def load_profile(path: Path) -> dict[str, tuple[str, str]]:
    """Flatten a YAML profile into {field: (value, source)}."""
    source = f"profile {path}"
    with reported_as(ConfigError):
        document = read_yaml(path, "the profile")
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"the profile {path} must be a YAML mapping with sections target/kube/azure")
    values: dict[str, tuple[str, str]] = {}
    for key, content in document.items():
        if key == "name":
            continue  # the target's name in a fleet run (aksid.fleet), not a setting
        if key in _PROFILE_SCALARS:
            values[_PROFILE_SCALARS[key]] = (_scalar(content, f"{key}", source), source)
            continue
        if key not in _PROFILE_SECTIONS:
            hint = or_listing(str(key), [*_PROFILE_SECTIONS, *_PROFILE_SCALARS])
            raise ConfigError(f"the profile {path} has an unknown section '{key}' ({hint})")
        if not isinstance(content, dict):
            raise ConfigError(f"the profile {path} section '{key}' must be a mapping")
        for sub_key, value in content.items():
            if (key, sub_key) in PROFILE_HOOKS:
                continue  # commands, not settings: read by profile_hooks() before anything else
            if sub_key not in _PROFILE_SECTIONS[key]:
                hint = or_listing(str(sub_key), _PROFILE_SECTIONS[key], f"settings of '{key}'")
                raise ConfigError(f"the profile {path} has an unknown setting '{key}.{sub_key}' ({hint})")
            name = _PROFILE_SECTIONS[key][sub_key]
            text = _profile_text(name, value, f"{key}.{sub_key}", source)
            if FIELD_BY_NAME[name].is_path and text.strip():
                text = str((path.parent / Path(text).expanduser()).resolve())
            values[name] = (text, f"{source} ({key}.{sub_key})")
    return values


def _profile_text(name: str, value: object, where: str, source: str) -> str:
    if name in _PROFILE_LISTS and isinstance(value, list):
        return ",".join(_scalar(item, where, source) for item in value)
    if name in _PROFILE_MAPPINGS and isinstance(value, dict):
        return ",".join(f"{_scalar(k, where, source)}={_scalar(v, where, source)}" for k, v in value.items())
    if name in _PROFILE_MAPPINGS and not isinstance(value, str):
        raise ConfigError(f"'{where}' in {source} must be a mapping of name server names to ip:port")
    return _scalar(value, where, source)


def _scalar(value: object, where: str, source: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"'{where}' in {source} must be a single text value")
    return str(value)


def _from_variables(variables: Mapping[str, str], source: str) -> dict[str, tuple[str, str]]:
    values: dict[str, tuple[str, str]] = {}
    for spec in FIELDS:
        for name in spec.env:
            if variables.get(name):
                values[spec.name] = (variables[name], f"{source} ({name})")
                break
    return values


# Options that set one field, so a message names the option the user typed (see activation.settings_overrides).
OPTION_FIELDS = {"--aksid-timeout": "collect_timeout"}


def parse_overrides(pairs: list[str]) -> dict[str, tuple[str, str]]:
    """`--aksid-set field=value` pairs (and `--aksid-timeout=value` for the options of OPTION_FIELDS)."""
    values: dict[str, tuple[str, str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if name in OPTION_FIELDS:
            values[OPTION_FIELDS[name]] = (value, f"command line ({name})")
            continue
        if not sep:
            raise ConfigError(f"--aksid-set expects FIELD=VALUE; got '{pair}' (no '=')")
        if name not in FIELD_BY_NAME:
            hint = or_listing(name, FIELD_BY_NAME, "settings")  # no command lists them: all, when none is close
            raise ConfigError(f"--aksid-set {pair}: '{name}' is not a setting ({hint})")
        values[name] = (value, f"command line (--aksid-set {name})")
    return values


def current_subscription(environ: Mapping[str, str]) -> str | None:
    """The Azure CLI's default subscription, read from its profile file (no network)."""
    config_dir = Path(environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")
    try:
        profile = json.loads((config_dir / "azureProfile.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    for subscription in profile.get("subscriptions", []):
        if subscription.get("isDefault"):
            return str(subscription.get("id"))
    return None


def resolve_target(
    *,
    profile: Path | None = None,
    env_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: list[str] | None = None,
    kube_context: str | None = None,
    unused: frozenset[str] = frozenset(),
) -> Target:
    """Merge every source, validate, and return the target (or raise ConfigError). Fields in `unused` (what the
    run's mode never reads) keep their defaults, whatever the sources say."""
    environ = os.environ if environ is None else environ
    # Where no option names them, the files may come from the environment (a team's checks run with plain pytest).
    if profile is None and environ.get("AKSID_PROFILE"):
        profile = Path(environ["AKSID_PROFILE"]).expanduser()
    if env_file is None and environ.get("AKSID_ENV_FILE"):
        env_file = Path(environ["AKSID_ENV_FILE"]).expanduser()
    merged: dict[str, tuple[str, str]] = {}
    if profile is not None:
        merged.update(load_profile(profile))
    unrun: dict[str, Unrun] = {}  # env file variables a shell would compute with a command: named if one is missing
    if env_file is not None:
        try:
            env = read_env_file(env_file)
        except EnvFileError as exc:
            raise ConfigError(str(exc)) from None
        merged.update(_from_variables(env.values, f"env file {env_file}"))
        unrun = env.unrun
    merged.update(_from_variables(environ, "environment"))
    merged.update(parse_overrides(overrides or []))
    if kube_context:
        merged["kube_context"] = (kube_context, "command line (--aksid-kube-context)")

    if "subscription_id" not in merged:
        current = current_subscription(environ)
        if current:
            merged["subscription_id"] = (current, "Azure CLI default subscription (azureProfile.json)")
    if "identity_name" not in merged and "domain" in merged:
        merged["identity_name"] = (identity_name_for(merged["domain"][0]), "derived from domain")

    resolved: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for spec in FIELDS:
        if spec.name in unused:
            resolved[spec.name], source = spec.default, None
            continue
        if spec.required and not merged.get(spec.name, ("",))[0].strip():
            for variable in (name for name in spec.env if name in unrun):
                raise ConfigError(_unrun_assignment(spec, variable, unrun[variable], env_file))
        value, source = _resolve_field(spec, merged.get(spec.name))
        resolved[spec.name] = value
        if source is not None:
            sources[spec.name] = source

    if "azure_credential" not in unused and resolved["azure_credential"] == "token-file" and \
            not resolved["azure_token_file"]:
        raise ConfigError("azure_credential is 'token-file' but no azure_token_file is set (profile azure.token_file)")
    if resolved["network"] == "loopback-only":
        _require_loopback(resolved, sources)
    return Target(**resolved, sources=sources)  # type: ignore[arg-type]


def _resolve_field(spec: FieldSpec, given: tuple[str, str] | None) -> tuple[str | None, str | None]:
    """(value, source) of one field; an empty value (`--aksid-set trust_store=`) stands for its default."""
    if given is not None and given[0].strip():
        value, source = given[0].strip(), given[1]
    elif spec.default is not None:
        value, source = spec.default, "default" if given is None else f"default (emptied by {given[1]})"
    elif spec.required:
        raise ConfigError(_missing(spec))
    else:
        return None, None if given is None else f"unset by {given[1]}"
    if spec.validate and (problem := spec.validate(value)):
        raise ConfigError(f"{spec.name} '{value}' from {source} {problem}")
    return value, source


def override_target(target: Target, pairs: list[str]) -> Target:
    """`target` with `--aksid-set` overrides applied and validated (replay: re-judge a snapshot with other settings)."""
    if not pairs:
        return target
    values = {spec.name: getattr(target, spec.name) for spec in FIELDS}
    sources = dict(target.sources)
    for name, given in parse_overrides(pairs).items():
        values[name], source = _resolve_field(FIELD_BY_NAME[name], given)
        sources.pop(name, None)
        if source is not None:
            sources[name] = source
    if values["network"] == "loopback-only":
        _require_loopback(values, sources)
    return Target(**values, sources=sources)  # type: ignore[arg-type]


def _missing(spec: FieldSpec) -> str:
    names = " or ".join(spec.env) if spec.env else spec.name
    return (f"{names} is not set: give it in the env file (--aksid-env-file), the environment, "
            f"the profile or with --aksid-set {spec.name}=...")


def _unrun_assignment(spec: FieldSpec, variable: str, unrun: Unrun, env_file: Path | None) -> str:
    """The env file computes this setting with a shell command, which reading the file (never running it) cannot."""
    return (f"{variable} in the env file {env_file} (line {unrun.line}) is a shell command substitution, "
            f"{unrun.text}, which aksid does not run: export {variable} in your shell first (`source {env_file}`) "
            f"or give --aksid-set {spec.name}=...")


def _require_loopback(resolved: Mapping[str, str | None], sources: Mapping[str, str]) -> None:
    """In loopback-only mode the endpoints themselves must be on loopback."""
    endpoint = resolved["arm_endpoint"] or ""
    host = urlsplit(endpoint).hostname or ""
    if not is_loopback_host(host):
        raise ConfigError(
            f"arm_endpoint '{endpoint}' from {sources.get('arm_endpoint')} is outside the sandbox "
            "(network is loopback-only)"
        )
    address = resolved.get("tls_address")
    if address and not ipaddress.ip_address(address.strip("[]")).is_loopback:
        raise ConfigError(
            f"tls_address '{address}' from {sources.get('tls_address')} is outside the sandbox (network is loopback-only)"
        )
    for name in ("dns_parent_servers", "dns_server_addresses"):
        for item in _split(resolved.get(name) or ""):
            address = item.partition("=")[2] if name == "dns_server_addresses" else item
            if not ipaddress.ip_address(parse_dns_address(address)[0]).is_loopback:
                raise ConfigError(
                    f"{name} entry '{item}' from {sources.get(name)} is outside the sandbox (network is loopback-only)"
                )


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; names are not resolved (that would be a network call)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
