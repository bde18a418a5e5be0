"""Live Kubernetes collector: one paginated LIST per kind, raw JSON kept, never a write."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aksid.config import ConfigError, Target, is_loopback_host
from aksid.redact import redact_kube_object
from aksid.snapshot import absent, error, kind_key, not_collected, ok

PAGE_SIZE = 250
# (connect, read) seconds: an unreachable API server must not hang the run.
REQUEST_TIMEOUT = (5, 30)


@dataclass(frozen=True)
class KindSpec:
    api_version: str
    kind: str
    plural: str
    custom: bool = False  # served only when its CRD is installed; 404 means absent, not error
    sensitive: bool = False  # read only with --aksid-read-secrets

    @property
    def path(self) -> str:
        prefix = "/api" if "/" not in self.api_version else "/apis"
        return f"{prefix}/{self.api_version}/{self.plural}"


KINDS: tuple[KindSpec, ...] = (
    KindSpec("v1", "Namespace", "namespaces"),
    KindSpec("v1", "Node", "nodes"),
    KindSpec("v1", "Pod", "pods"),
    KindSpec("v1", "Service", "services"),
    KindSpec("v1", "ServiceAccount", "serviceaccounts"),
    KindSpec("v1", "Secret", "secrets", sensitive=True),
    KindSpec("apps/v1", "DaemonSet", "daemonsets"),
    KindSpec("apps/v1", "Deployment", "deployments"),
    KindSpec("apps/v1", "ReplicaSet", "replicasets"),  # the link from a pod to its Deployment (owner chains)
    KindSpec("networking.k8s.io/v1", "Ingress", "ingresses"),
    KindSpec("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions"),
    KindSpec("aadpodidentity.k8s.io/v1", "AzureIdentity", "azureidentities", custom=True),
    KindSpec("aadpodidentity.k8s.io/v1", "AzureIdentityBinding", "azureidentitybindings", custom=True),
    KindSpec("aadpodidentity.k8s.io/v1", "AzurePodIdentityException", "azurepodidentityexceptions", custom=True),
    KindSpec("aadpodidentity.k8s.io/v1", "AzureAssignedIdentity", "azureassignedidentities", custom=True),
    KindSpec("cert-manager.io/v1", "ClusterIssuer", "clusterissuers", custom=True),
    KindSpec("cert-manager.io/v1", "Issuer", "issuers", custom=True),
    KindSpec("cert-manager.io/v1", "Certificate", "certificates", custom=True),
    KindSpec("cert-manager.io/v1", "CertificateRequest", "certificaterequests", custom=True),
    KindSpec("acme.cert-manager.io/v1", "Order", "orders", custom=True),
    KindSpec("acme.cert-manager.io/v1", "Challenge", "challenges", custom=True),
)


def kube_configuration(target: Target) -> kclient.Configuration:
    """Standard resolution: explicit kubeconfig/context, else KUBECONFIG/~/.kube/config, else in-cluster.

    Reads files only; a broken kubeconfig is a ConfigError (usage error), found before any request.
    """
    configuration = kclient.Configuration()
    try:
        try:
            kconfig.load_kube_config(
                config_file=target.kubeconfig, context=target.kube_context,
                client_configuration=configuration, persist_config=False,
            )
        except ConfigException:
            if target.kubeconfig or target.kube_context:
                raise
            kconfig.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        where = target.kubeconfig or "the default kubeconfig (~/.kube/config) or in-cluster service account"
        raise ConfigError(f"no usable Kubernetes configuration in {where}: {exc}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"the kubeconfig {target.kubeconfig or '~/.kube/config'} is malformed: {exc}") from None
    # One retry for a dropped connection; never sleep on a server's Retry-After (a 429 is reported, not waited out).
    configuration.retries = urllib3.Retry(total=1, respect_retry_after_header=False, raise_on_status=False)
    host = urlsplit(configuration.host).hostname or ""
    if target.network == "loopback-only" and not is_loopback_host(host):
        raise ConfigError(f"the Kubernetes API server {configuration.host} is outside the sandbox "
                          "(network is loopback-only)")
    return configuration


def collect_kube(
    target: Target,
    configuration: kclient.Configuration,
    progress: Callable[[str], None] = lambda _: None,
    read_secrets: bool = False,
    on_page: Callable[[str, list[dict[str, Any]]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Return snapshot entries keyed by `apiVersion/Kind`; `on_page` gets each page once redacted (see HandOver)."""
    entries: dict[str, dict[str, Any]] = {}
    unreachable: str | None = None
    listed = 0
    with kclient.ApiClient(configuration) as api:
        api.user_agent = "aksid/0.1 (read-only)"
        for spec in KINDS:
            key = kind_key(spec.api_version, spec.kind)
            if spec.sensitive and not read_secrets:
                entries[key] = not_collected(f"{spec.plural} are not read without --aksid-read-secrets")
                continue
            if unreachable:
                entries[key] = error(unreachable)
                continue
            progress(f"kube: listing {spec.plural} from {configuration.host} ({listed:,} objects so far)")
            try:
                # page by page: a page's raw objects are freed once redacted, so both copies of a kind never coexist
                items: list[dict[str, Any]] = []
                for page in _pages(api, spec):
                    redacted = [redact_kube_object(_with_kind(item, spec)) for item in page]
                    items += redacted
                    if on_page is not None:
                        on_page(key, redacted)
                entries[key] = ok(items)
                listed += len(entries[key]["value"])
            except ApiException as exc:
                if exc.status == 404 and spec.custom:
                    entries[key] = absent(f"{spec.plural}.{spec.api_version.split('/')[0]} is not served "
                                          "(its CRD is not installed)")
                else:
                    entries[key] = error(_api_error(spec, exc))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                unreachable = f"the Kubernetes API server {configuration.host} is unreachable ({_root_cause(exc)})"
                entries[key] = error(unreachable)
    progress(f"kube: {len(KINDS)} kinds listed, {listed:,} objects")
    return entries


def _pages(api: kclient.ApiClient, spec: KindSpec) -> Iterator[list[dict[str, Any]]]:
    """One LIST, page after page (limit PAGE_SIZE, following `continue`)."""
    token = None
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
        if token:
            query.append(("continue", token))
        method, url, headers, _, _ = api.param_serialize(
            "GET", spec.path, query_params=query, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = api.call_api(method, url, header_params=headers, _request_timeout=REQUEST_TIMEOUT)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        page = json.loads(response.data)
        yield page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def _with_kind(item: dict[str, Any], spec: KindSpec) -> dict[str, Any]:
    """List items of built-in kinds come without apiVersion/kind; restore them for the evidence."""
    return {"apiVersion": spec.api_version, "kind": spec.kind, **item}


def _api_error(spec: KindSpec, exc: ApiException) -> str:
    message = exc.reason or ""
    try:
        message = json.loads(exc.body).get("message") or message
    except (TypeError, ValueError, AttributeError):
        pass
    return f"the Kubernetes API answered {exc.status} to listing {spec.plural}: {message}"


def _root_cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    while isinstance(reason, BaseException) and getattr(reason, "reason", None) is not None:
        reason = reason.reason
    text = str(reason or exc)
    return text.split(": ", 1)[-1] if "Errno" in text else text
