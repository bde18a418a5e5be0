"""Live Kubernetes collector: one paginated LIST per kind, raw JSON kept, never a write."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aksid.collect.budget import Budget, DeadlinePassed, GaveUp, RetryAfterTooLong, retrying
from aksid.collect.kinds import KINDS, KindSpec  # noqa: F401  (re-exported: the kinds the collector lists)
from aksid.collect.retry_policies import KubeRetry
from aksid.config import ConfigError, Target, is_loopback_host
from aksid.jsonfile import parsed
from aksid.redact import redact_kube_object
from aksid.snapshot import absent, error, kind_key, not_collected, ok
from aksid.suggest import or_listing

PAGE_SIZE = 250
CONNECT_TIMEOUT = 5  # seconds; the read timeout is the target's request_timeout, never past the deadline


def kube_configuration(target: Target) -> kclient.Configuration:
    """Standard resolution: explicit kubeconfig/context, else KUBECONFIG/~/.kube/config, else in-cluster.

    Reads files only; a broken kubeconfig is a ConfigError (usage error), found before any request.
    """
    configuration = kclient.Configuration()
    if target.kube_context:
        _require_context(target)
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
    # Provision mode's writes: one retry for a dropped connection. A collection replaces this with its budget's
    # KubeRetry (reads only: retries with backoff, Retry-After honoured up to a cap, see collect/budget.py).
    configuration.retries = urllib3.Retry(total=1, respect_retry_after_header=False, raise_on_status=False)
    host = urlsplit(configuration.host).hostname or ""
    if target.network == "loopback-only" and not is_loopback_host(host):
        raise ConfigError(f"the Kubernetes API server {configuration.host} is outside the sandbox "
                          "(network is loopback-only)")
    return configuration


def _require_context(target: Target) -> None:
    """A context the kubeconfig lacks is named with the ones it has (the client's own message names neither)."""
    try:
        contexts, _ = kconfig.list_kube_config_contexts(target.kubeconfig)
    except (ConfigException, OSError, ValueError, TypeError, AttributeError):
        return  # no readable kubeconfig: kube_configuration reports that in its own sentence
    names = [str(context.get("name")) for context in contexts or [] if isinstance(context, dict)]
    if target.kube_context in names:
        return
    where = target.kubeconfig or "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
    hint = or_listing(target.kube_context or "", names, "its contexts") or "it has no contexts at all"
    raise ConfigError(f"the kubeconfig {where} has no context '{target.kube_context}' ({hint})")


def collect_kube(
    target: Target,
    configuration: kclient.Configuration,
    progress: Callable[[str], None] = lambda _: None,
    read_secrets: bool = False,
    budget: Budget | None = None,
    entries: dict[str, dict[str, Any]] | None = None,
    on_page: Callable[[str, list[dict[str, Any]]], None] | None = None,
    see_raw: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Return snapshot entries keyed by `apiVersion/Kind` (filled into `entries` as each kind is listed, so a
    caller that stops waiting at the deadline keeps what was read); `on_page` gets each page once redacted
    (see HandOver); `see_raw` gets each object of a kind it asks for (Secret, Deployment) before it is redacted, and
    keeps what it needs in memory only (external-dns' AES key: see aksid/external_dns.py)."""
    budget = budget or Budget.for_target(target)
    configuration.retries = KubeRetry.for_budget(budget)
    entries = {} if entries is None else entries
    stop: str | None = None  # a cause that every further LIST would meet too (unreachable, credentials, deadline)
    listed = 0
    with kclient.ApiClient(configuration) as api:
        api.user_agent = "aksid/0.1 (read-only)"
        for spec in KINDS:
            key = kind_key(spec.api_version, spec.kind)
            if spec.sensitive and not read_secrets:
                entries[key] = not_collected(f"{spec.plural} are not read without --aksid-read-secrets")
                continue
            if stop is None and budget.expired():
                stop = f"not listed: the collection deadline ({budget.seconds:g} s) passed"
            if stop:
                entries[key] = error(stop)
                continue
            progress(f"kube: listing {spec.plural} from {configuration.host} ({listed:,} objects so far)")
            retried_before = budget.retries_of_family("kube")  # LISTs run one after another: the difference is ours

            def attempts(before: int = retried_before) -> str:
                return _attempts(budget.retries_of_family("kube") - before)
            try:
                # page by page, each object redacted where it stands as soon as it is parsed (no second copy)
                items: list[dict[str, Any]] = []
                for page in _pages(api, spec, budget):
                    if see_raw is not None and spec.kind in ("Secret", "Deployment"):
                        for item in page:
                            see_raw(spec.kind, item)
                    redacted = [redact_kube_object(_with_kind(item, spec), owned=True) for item in page]
                    items += redacted
                    if on_page is not None:
                        on_page(key, redacted)
                entries[key] = ok(items)
                listed += len(entries[key]["value"])
            except ApiException as exc:
                if exc.status == 404 and spec.custom:
                    entries[key] = absent(f"{spec.plural}.{spec.api_version.split('/')[0]} is not served "
                                          "(its CRD is not installed)")
                elif exc.status == 401:  # not retried: every LIST would be refused the same way
                    stop = f"the Kubernetes API server {configuration.host} rejected the credentials (401 Unauthorized)"
                    entries[key] = error(stop)
                else:
                    entries[key] = error(_api_error(spec, exc) + attempts())
            except (RetryAfterTooLong, DeadlinePassed) as exc:
                entries[key] = error(f"listing {spec.plural}: {exc}")
            except GaveUp as exc:
                entries[key] = error(f"listing {spec.plural} from {configuration.host}: {_root_cause(exc.last)} "
                                     f"(after {exc.attempts} attempts)")
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                reason = getattr(exc, "reason", None)
                if isinstance(reason, (DeadlinePassed, RetryAfterTooLong)):
                    entries[key] = error(f"listing {spec.plural}: {reason}{attempts()}")
                elif _cannot_connect(exc):  # every further LIST would fail the same way: stop asking
                    stop = f"the Kubernetes API server {configuration.host} is unreachable ({_root_cause(exc)}){attempts()}"
                    entries[key] = error(stop)
                else:  # this LIST reset or timed out, after its retries; the next kind may still be answered
                    entries[key] = error(f"listing {spec.plural} from {configuration.host}: {_root_cause(exc)}"
                                         f"{attempts()}")
    progress(f"kube: {len(KINDS)} kinds listed, {listed:,} objects")
    return entries


def _attempts(retries: int) -> str:
    return f" (after {retries + 1} attempts)" if retries else ""


def _body_fault(exc: BaseException) -> str | None:
    """Faults in a page's body, after its headers arrived: urllib3's Retry has already let go of the request."""
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return "timeout"
    if isinstance(exc, (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError)):
        return "truncated body"
    if isinstance(exc, json.JSONDecodeError):
        return "truncated JSON"
    return None


def _pages(api: kclient.ApiClient, spec: KindSpec, budget: Budget) -> Iterator[list[dict[str, Any]]]:
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
        page = retrying(partial(_read_page, api, method, url, headers, budget), budget=budget, family="kube",
                        endpoint=spec.path, cause_of=_body_fault)
        yield page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def _read_page(api: kclient.ApiClient, method: str, url: str, headers: dict[str, str], budget: Budget) -> dict[str, Any]:
    response = api.call_api(method, url, header_params=headers, _request_timeout=(CONNECT_TIMEOUT, budget.timeout()))
    response.read()
    if not 200 <= response.status < 300:
        raise ApiException(http_resp=response)
    return parsed(response.data)


def _with_kind(item: dict[str, Any], spec: KindSpec) -> dict[str, Any]:
    """List items of built-in kinds come without apiVersion/kind; restore them for the evidence (the item was just
    parsed: set where it stands)."""
    item.setdefault("apiVersion", spec.api_version)
    item.setdefault("kind", spec.kind)
    return item


def _api_error(spec: KindSpec, exc: ApiException) -> str:
    message = exc.reason or ""
    try:
        message = json.loads(exc.body).get("message") or message
    except (TypeError, ValueError, AttributeError):
        pass
    return f"the Kubernetes API answered {exc.status} to listing {spec.plural}: {message}"


def _cannot_connect(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)
    return isinstance(exc, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                            ConnectionRefusedError)) or isinstance(
        reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError, ConnectionRefusedError))


def _root_cause(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError) or isinstance(
            getattr(exc, "reason", None), urllib3.exceptions.ReadTimeoutError):
        return "no answer within the read timeout"
    if isinstance(exc, urllib3.exceptions.ProtocolError) and "IncompleteRead" in str(exc):
        return "the answer was cut short (fewer bytes than its Content-Length)"
    if "Connection reset" in str(exc) or "RemoteDisconnected" in str(exc) or "Connection aborted" in str(exc):
        return "the connection was reset"
    reason = getattr(exc, "reason", None)
    while isinstance(reason, BaseException) and getattr(reason, "reason", None) is not None:
        reason = reason.reason
    text = str(reason or exc)
    return text.split(": ", 1)[-1] if "Errno" in text else text
