"""What the controllers say about the canary, read through the Kubernetes API for the stop rules.

Reads only (GET/LIST), each at most every READ_EVERY seconds, however often a wait polls: external-dns' pods'
logs since the run began, and in the run's namespace the Challenges, Orders and Events cert-manager writes, and
the issuer a Certificate names. A read the API refuses (403: the account may not read logs or Events) or that
fails is no evidence: the wait goes on to its deadline as before.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client as kclient

from aksid.provision import stop_rules

READ_EVERY = 3.0  # seconds
LOG_LINES = 500  # the tail of each external-dns pod's log: a sync logs a few lines per record


class ControllerEvidence:
    def __init__(self, api: kclient.ApiClient, attach: Mapping[str, Any], addon_namespace: str, run_namespace: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.core, self.custom = kclient.CoreV1Api(api), kclient.CustomObjectsApi(api)
        self.attach, self.addon_namespace, self.run_namespace = attach, addon_namespace, run_namespace
        self.began = dt.datetime.now(dt.UTC)
        self.clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}

    def external_dns_cause(self, record: str) -> str | None:
        """external-dns' last permanent error about `record` (its name in the zone) since the run began."""
        return self._throttled(f"external-dns/{record}", lambda: self._external_dns_cause(record))

    def certificate_cause(self, certificate: Mapping[str, Any]) -> str | None:
        """Why cert-manager will not issue the canary's Certificate: its issuer, its Issuing condition, its
        Challenges and Orders, their Events (the most direct first)."""
        return self._throttled("certificate", lambda: self._certificate_cause(certificate))

    def _throttled(self, key: str, read: Callable[[], str | None]) -> str | None:
        now = self.clock()
        if key in self._cache and now - self._cache[key][0] < READ_EVERY:
            return self._cache[key][1]
        try:
            cause = read()
        except Exception:  # noqa: BLE001 - refused or failed: no evidence this time (the next read may have some)
            cause = None
        self._cache[key] = (now, cause)
        return cause

    def _external_dns_cause(self, record: str) -> str | None:
        selector = self._external_dns_selector()
        if selector is None:
            return None
        since = max(1, int((dt.datetime.now(dt.UTC) - self.began).total_seconds()) + 1)
        for pod in self.core.list_namespaced_pod(self.addon_namespace, label_selector=selector).items:
            log = self.core.read_namespaced_pod_log(pod.metadata.name, self.addon_namespace, since_seconds=since,
                                                    tail_lines=LOG_LINES)
            cause = stop_rules.external_dns_log_cause(log, record, since=self.began)
            if cause:
                return cause
        return None

    def _external_dns_selector(self) -> str | None:
        """The label selector of the external-dns Deployment in the add-on namespace (from the attach evidence)."""
        entry = self.attach.get("kube", {}).get("apps/v1/Deployment") or {}
        for deployment in entry.get("value") or []:
            meta = deployment.get("metadata") or {}
            if meta.get("namespace") == self.addon_namespace and "external-dns" in str(meta.get("name")):
                labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
                return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
        return None

    def _certificate_cause(self, certificate: Mapping[str, Any]) -> str | None:
        ref = (certificate.get("spec") or {}).get("issuerRef") or {}
        kind, name = str(ref.get("kind") or "Issuer"), str(ref.get("name") or "")
        cause = stop_rules.issuer_cause(kind, name, self._issuer(kind, name)) if name else None
        cause = cause or stop_rules.certificate_cause(certificate)
        for plural, rule in (("challenges", stop_rules.challenge_cause), ("orders", stop_rules.order_cause)):
            if cause:
                return cause
            items = self.custom.list_namespaced_custom_object("acme.cert-manager.io", "v1", self.run_namespace,
                                                              plural).get("items") or []
            cause = next((c for c in map(rule, items) if c), None)
        if cause:
            return cause
        events = self.core.list_namespaced_event(self.run_namespace).items
        return stop_rules.event_cause(self.api_dicts(events))

    def _issuer(self, kind: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            if kind == "ClusterIssuer":
                return self.custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", name)
            return self.custom.get_namespaced_custom_object("cert-manager.io", "v1", self.run_namespace, "issuers", name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def api_dicts(self, items: list[Any]) -> list[dict[str, Any]]:
        """The client's models as the API's JSON (camelCase keys), which the stop rules read."""
        return [self.core.api_client.sanitize_for_serialization(item) for item in items]
