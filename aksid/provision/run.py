"""One provision run: probes and a canary, bounded waits, teardown whatever happens; the result is evidence."""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import json
import secrets
from collections.abc import Callable
from typing import Any

from kubernetes import client as kclient
from kubernetes.client.exceptions import ApiException

from aksid.collect.arm import ArmCollector
from aksid.collect.dns import answers_by_server, collect_dns
from aksid.collect.tls import collect_tls
from aksid.config import Target
from aksid.identity_models import workload_identity_presence
from aksid.provision.evidence_reads import ControllerEvidence
from aksid.provision.manifests import (
    CANARY_APP,
    CANARY_SECRET,
    RUN_LABEL,
    canary_objects,
    namespace,
    probe_pod,
    run_namespace,
    wi_probe_pod,
)
from aksid.provision.teardown import KubeObjects, Teardown
from aksid.provision.waits import CannotSucceed, Timeline, Transient, WaitTimeout
from aksid.snapshot import EvidenceNotCollected, EvidenceUnavailable, Snapshot, error, ok

PROBES = ("probe-bound", "probe-unbound", "probe-elsewhere")
# Workload identity: the first wi_allowed ServiceAccount; `default` of its namespace, then of the run's namespace,
# both asking for the DNS identity's client id.
WI_PROBES = ("probe-wi-allowed", "probe-wi-unallowed", "probe-wi-elsewhere")
IMDS_PROBE = "probe-imds"  # any pod asking IMDS for the DNS identity by client id, whatever the identity model
TEARDOWN_BUDGET = 120.0  # seconds to see the teardown through, on top of provision_timeout


def new_run_id() -> str:
    """Sortable and unique enough for a label value: 20261201t2350-1a2b3c."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dt%H%M}-{secrets.token_hex(3)}"


def provision(target: Target, kube_configuration: Any, credential: Any, attach: dict[str, Any],
              progress: Callable[[str], None], run_id: str | None = None,
              live: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Create, observe, tear down; return the snapshot's `provision` section (never raises for what it observed).

    `progress` prints a line; `live`, on a terminal, rewrites one line in place ("" clears it): the waits then show
    their state there instead of printing a line per change."""
    run = _Run(target, kube_configuration, credential, attach, progress, run_id or new_run_id(), live)
    return run.execute()


class _Run:
    def __init__(self, target: Target, kube_configuration: Any, credential: Any, attach: dict[str, Any],
                 progress: Callable[[str], None], run_id: str, live: Callable[[str], None] | None = None) -> None:
        self.target, self.attach, self.progress, self.run_id, self.live = target, attach, progress, run_id, live
        self.api = kclient.ApiClient(kube_configuration)
        self.objects = KubeObjects(self.api)
        self.arm = ArmCollector(target, credential)
        self.timeline = Timeline(deadline=_monotonic() + target.provision_timeout_seconds, progress=progress, live=live)
        self.controllers = ControllerEvidence(self.api, attach, target.addon_namespace, run_namespace(run_id))
        self.teardown = Teardown(self.objects, run_id, progress)
        self.fqdn = f"{target.canary_host}.{target.domain.rstrip('.')}"
        self.evidence: dict[str, Any] = {"run_id": run_id, "canary_host": self.fqdn, "probes": {}, "canary": {}}
        self.probe_nodes: dict[str, str] = {}  # probe pod → the node it ran on
        self.records_seen: list[str] = []  # the canary's records still in Azure DNS at the last look

    def execute(self) -> dict[str, Any]:
        self.progress(f"provision: run {self.run_id}, objects labelled {RUN_LABEL}={self.run_id}")
        atexit.register(self.teardown.close)  # the final sweep, should anything stop the run before `finally`
        try:
            self._create()
            self._observe()
        except WaitTimeout as exc:
            self.evidence["stopped"] = str(exc)
        except ApiException as exc:
            self.evidence["stopped"] = f"the Kubernetes API refused {exc.status} {exc.reason}: {_api_message(exc)}"
        finally:
            self.teardown.close()  # on success, failure, exception, Ctrl-C and SIGTERM (turned into KeyboardInterrupt)
            atexit.unregister(self.teardown.close)
        self.evidence["teardown"] = self._after_teardown()
        self.evidence["timeline"] = self.timeline.steps
        return self.evidence

    # -- create ---------------------------------------------------------------------------------

    def _create(self) -> None:
        self._wait_for_other_runs_canary()
        self.teardown.create(namespace(self.run_id))
        selector = self._dns_selector()
        if selector is None:
            reason = f"no AzureIdentityBinding in namespace {self.target.addon_namespace} to take a selector from"
            self.evidence["probes"] = {role: error(reason) for role in PROBES}
        else:
            homes = {"probe-bound": (self.target.addon_namespace, selector),
                     "probe-unbound": (self.target.addon_namespace, None),
                     "probe-elsewhere": (run_namespace(self.run_id), selector)}
            for role, (ns, label) in homes.items():
                ask_as = self.dns_client_id if role != "probe-bound" else None  # as an attacker would: by its client id
                self.teardown.create(probe_pod(self.run_id, role, ns, label, self.target.probe_image, ask_as))
                self.evidence["probes"][role] = {"namespace": ns, "selector": label, "asks_client_id": ask_as}
        self._create_wi_probes()
        self._create_imds_probe()
        for obj in canary_objects(self.run_id, self.fqdn, self.target.acme_issuer, self.target.canary_image):
            self.teardown.create(obj)

    def _create_wi_probes(self) -> None:
        """The workload identity probes, when the attach evidence says workload identity is (or may be) in use."""
        snapshot = Snapshot(self.attach)
        if workload_identity_presence(snapshot).present is False:
            return
        allowed = [item.strip() for item in self.target.wi_allowed.split(",") if item.strip()]
        if not allowed or "/" not in allowed[0]:
            self.evidence["probes"].update({role: error("no allowed ServiceAccount (wi_allowed) to probe as")
                                            for role in WI_PROBES})
            return
        allowed_ns, _, allowed_sa = allowed[0].partition("/")
        homes = {"probe-wi-allowed": (allowed_ns, allowed_sa, False),
                 "probe-wi-unallowed": (allowed_ns, "default", True),
                 "probe-wi-elsewhere": (run_namespace(self.run_id), "default", True)}
        client_id = self.dns_client_id
        for role, (ns, account, asks) in homes.items():
            record = {"namespace": ns, "service_account": account, "asks_client_id": client_id if asks else None}
            if asks and client_id is None:
                record.update(error(f"the DNS identity {self.target.identity_name} is not in the Azure evidence: "
                                    "no client id to ask for"))
            elif (ns, account) in self.target.allowed_service_accounts() and asks:
                record.update(error(f"ServiceAccount {ns}/{account} is an allowed one (wi_allowed)"))
            else:
                problem = self._create_wi_probe(role, ns, account, client_id if asks else None)
                if problem:
                    record.update(error(problem))
            self.evidence["probes"][role] = record

    def _create_imds_probe(self) -> None:
        """A pod of no identity model (no selector label, no workload identity label) in the run's namespace asking
        169.254.169.254 for the DNS identity by its client id: with NMI intercepting it is refused; with NMI gone (after
        a cutover) or not covering its node, IMDS answers it for every identity still on the node's scale set
        (MIG-002's live proof, judged by PROBE-005)."""
        client_id = self.dns_client_id
        if client_id is None:
            self.evidence["probes"][IMDS_PROBE] = error(f"the DNS identity {self.target.identity_name} is not in the "
                                                        "Azure evidence: no client id to ask for")
            return
        ns = run_namespace(self.run_id)
        self.teardown.create(probe_pod(self.run_id, IMDS_PROBE, ns, None, self.target.probe_image, client_id))
        self.evidence["probes"][IMDS_PROBE] = {"namespace": ns, "selector": None, "asks_client_id": client_id}

    def _create_wi_probe(self, role: str, ns: str, account: str, client_id: str | None) -> str | None:
        """Create one probe; the reason when it could not be (its ServiceAccount never appeared, the API refused)."""
        if ns == run_namespace(self.run_id):
            try:  # the ServiceAccount controller makes `default` of a new namespace; a pod created sooner is refused
                self.timeline.wait(f"serviceaccount {ns}/{account} to exist", lambda: self._account_exists(ns, account),
                                   interval=0.5)
            except WaitTimeout as exc:
                return str(exc)
        try:
            self.teardown.create(wi_probe_pod(self.run_id, role, ns, account, client_id, self.target.probe_image))
        except ApiException as exc:
            return f"the Kubernetes API refused the probe pod: {exc.status} {exc.reason}: {_api_message(exc)}"
        return None

    def _account_exists(self, ns: str, account: str) -> tuple[bool | None, str]:
        try:
            self.objects.core.read_namespaced_service_account(account, ns)
        except ApiException as exc:
            return None, f"not yet ({exc.status})"
        return True, "exists"

    @functools.cached_property
    def dns_client_id(self) -> str | None:
        """The DNS identity's client id as the attach evidence holds it (what the probes ask IMDS and Entra ID for)."""
        try:
            identity = Snapshot(self.attach).azure.identity_named(self.target.identity_name)
        except (EvidenceUnavailable, EvidenceNotCollected):
            return None
        client_id = ((identity or {}).get("properties") or {}).get("clientId")
        return str(client_id) if client_id else None

    def _dns_selector(self) -> str | None:
        """The selector of a binding in the add-on namespace that an allowed workload carries (external-dns first)."""
        entry = self.attach.get("kube", {}).get("aadpodidentity.k8s.io/v1/AzureIdentityBinding") or {}
        selectors = [str((b.get("spec") or {}).get("selector")) for b in entry.get("value") or []
                     if b["metadata"].get("namespace") == self.target.addon_namespace and (b.get("spec") or {}).get("selector")]
        allowed = [s for s in self.target.allowed_bindings().values() if s in selectors]
        return (allowed or selectors or [None])[0]

    def _wait_for_other_runs_canary(self) -> None:
        def attempt() -> tuple[bool | None, str]:
            holders = [i for i in self.objects.net.list_ingress_for_all_namespaces(label_selector=RUN_LABEL).items
                       if any(rule.host == self.fqdn for rule in i.spec.rules or [])]
            if not holders:
                return True, "free"
            return None, f"run {holders[0].metadata.labels.get(RUN_LABEL)} holds it ({holders[0].metadata.namespace})"

        try:
            self.timeline.wait(f"the canary host {self.fqdn} to be free of another aksid run", attempt, interval=2)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}; another aksid run is using the canary host: run again when it ends, or clean "
                              "up after a killed run with `aksid sweep --run-id ID`") from None

    # -- observe --------------------------------------------------------------------------------

    def _observe(self) -> None:
        """Every wait at once (they are independent but for the order noted): one deadline for the whole run."""
        probes = {role: record for role, record in self.evidence["probes"].items() if "status" not in record}
        attempts: dict[str, Any] = {
            f"probe {r['namespace']}/aksid-{role}-{self.run_id}": (lambda _f, ns=r["namespace"], role=role:
                                                                   self._probe_line(ns, f"aksid-{role}-{self.run_id}"))
            for role, r in probes.items()
        }
        lb, record, servers, cert, served = (f"the load balancer address of ingress {CANARY_APP}",
                                             f"the A record of {self.fqdn} in Azure DNS",
                                             f"every name server to answer {self.fqdn}",
                                             f"certificate {CANARY_SECRET} to be Ready", f"{self.fqdn} to serve its certificate")
        attempts[lb] = lambda _f: self._lb_address()
        attempts[record] = lambda f: self._after(f, lb, lambda: self._azure_record(f[lb]))
        attempts[servers] = lambda f: self._after(f, record, lambda: self._servers_answer(f[lb]))
        attempts[cert] = lambda _f: self._certificate()
        attempts[served] = lambda f: self._after(f, cert, lambda: self._after(f, lb, lambda: self._served(f[lb])))
        results = self.timeline.wait_all(attempts)
        for (role, record_), description in zip(probes.items(), list(attempts)[:len(probes)], strict=True):
            pod = f"aksid-{role}-{self.run_id}"
            result = results[description]
            self.evidence["probes"][role] = {**record_, "pod": pod, "node": self.probe_nodes.get(pod), **(
                ok(json.loads(result["value"])) if result["status"] == "ok" else error(result["reason"]))}
        names = {"address": lb, "azure_record": record, "servers": servers, "certificate": cert, "tls": served}
        self.evidence["canary"] = {key: results[description] for key, description in names.items()}

    @staticmethod
    def _after(found: Any, before: str, attempt: Callable[[], tuple[Any | None, str]]) -> tuple[Any | None, str]:
        if isinstance(found.get(before), CannotSucceed):  # what it needs will not happen: neither will it
            return CannotSucceed(f"it needs {before}, which cannot succeed"), f"{before} cannot succeed"
        return attempt() if before in found else (None, f"waiting for {before}")

    def _probe_line(self, ns: str, name: str) -> tuple[str | None, str]:
        pod = self.objects.core.read_namespaced_pod(name, ns)
        if pod.spec is not None and pod.spec.node_name:
            self.probe_nodes[name] = pod.spec.node_name  # which node's IMDS (and scale set) answered it
        phase = pod.status.phase if pod.status else None
        if phase not in ("Succeeded", "Failed"):
            return None, f"phase {phase or 'unknown'}"
        log = self.objects.core.read_namespaced_pod_log(name, ns)
        lines = [text for text in log.splitlines() if text.startswith("{")]
        return (lines[-1], phase) if lines else (None, f"phase {phase}, no JSON line in its log")

    def _lb_address(self) -> tuple[str | None, str]:
        ingress = self.objects.net.read_namespaced_ingress(CANARY_APP, run_namespace(self.run_id))
        points = (ingress.status.load_balancer.ingress or []) if ingress.status and ingress.status.load_balancer else []
        found = next((p.ip for p in points if p.ip), None)
        return found, "no address in the Ingress status yet"

    def _azure_record(self, address: str) -> tuple[dict[str, Any] | None, str]:
        t = self.target
        try:
            record = self.arm.dns.record_sets.get(t.dns_resource_group, t.domain, t.canary_host, "A")
        except Exception as exc:  # noqa: BLE001 - not there yet (404) or a transient fault: keep polling
            seen = f"not in Azure DNS ({type(exc).__name__})"
            if getattr(exc, "status_code", None) != 404:  # a timeout or a reset says nothing about the record
                return None, Transient(seen)
            cause = self.controllers.external_dns_cause(t.canary_host)
            return (CannotSucceed(cause) if cause else None), cause or seen
        addresses = [a.ipv4_address for a in record.a_records or []]
        return ({"addresses": addresses, "ttl": record.ttl} if address in addresses else None), f"holds {addresses}"

    def _servers_answer(self, address: str) -> tuple[dict[str, Any] | None, str]:
        zone = (self.attach.get("azure", {}).get("dnsZone") or {}).get("value") or {}
        name_servers = [str(n) for n in (zone.get("properties") or {}).get("nameServers") or []]
        t = self.target
        entries = collect_dns(t.domain.rstrip("."), self.fqdn, name_servers, parent_servers=t.parent_servers(),
                              server_addresses=t.server_addresses(), loopback_only=t.network == "loopback-only",
                              timeout=t.dns_timeout_seconds)
        answers = answers_by_server(entries["servers"], self.fqdn)
        lagging = [server for server, got in answers.items() if address not in got]
        done = answers and not lagging
        return (entries["servers"] if done else None), f"not yet from {', '.join(lagging) or 'any server'}"

    def _certificate(self) -> tuple[dict[str, Any] | None, str]:
        custom = kclient.CustomObjectsApi(self.api)
        try:
            cert = custom.get_namespaced_custom_object("cert-manager.io", "v1", run_namespace(self.run_id),
                                                       "certificates", CANARY_SECRET)
        except ApiException as exc:
            return None, f"no Certificate yet ({exc.status})"
        conditions = {c.get("type"): c for c in (cert.get("status") or {}).get("conditions") or []}
        ready, issuing = conditions.get("Ready") or {}, conditions.get("Issuing") or {}
        if ready.get("status") == "True":
            return cert, "Ready"
        seen = f"Ready={ready.get('status', 'unknown')} {ready.get('reason', '')}: {ready.get('message', '')}".strip()
        if issuing.get("status") == "False" and issuing.get("message"):
            seen += f"; Issuing={issuing.get('reason')}: {issuing['message']}"  # cert-manager says why it failed here
        cause = self.controllers.certificate_cause(cert)
        return (CannotSucceed(cause) if cause else None), cause or seen

    def _served(self, address: str) -> tuple[dict[str, Any] | None, str]:
        t = self.target
        tls = collect_tls(self.fqdn, address, https_port=t.tls_https_port_number, http_port=t.tls_http_port_number,
                          loopback_only=t.network == "loopback-only", timeout=t.tls_timeout_seconds,
                          address_origin="the canary Ingress's load balancer")
        handshake = tls["handshake"]
        if handshake["status"] != "ok":
            return None, handshake.get("reason", "no handshake")
        return (tls if _leaf_names_host(handshake["value"], self.fqdn) else None), "the served leaf does not name the host yet"

    # -- after the teardown ---------------------------------------------------------------------

    def _after_teardown(self) -> dict[str, Any]:
        """What the teardown left: labelled objects (cluster-side deletion takes a while) and the canary's records."""
        policy = external_dns_policy(self.attach, self.target.addon_namespace)
        gone, records = f"every object labelled {RUN_LABEL}={self.run_id} to be gone", f"the canary's records ({policy})"
        # its own budget: a run that spent provision_timeout waiting must still see its teardown through
        after = Timeline(deadline=_monotonic() + min(TEARDOWN_BUDGET, self.target.provision_timeout_seconds),
                         progress=self.progress, live=self.live)
        results = after.wait_all({gone: lambda _f: self._labelled_gone(), records: lambda _f: self._records_left(policy)},
                                 interval=2)
        self.timeline.steps += after.steps
        leftovers, left = results[gone], results[records]
        return {
            "problems": self.teardown.problems,
            "leftovers": ok([]) if leftovers["status"] == "ok" else _timeout_value(leftovers, self._labelled_names()),
            "records": ok({"policy": policy, "remaining": left["value"] if left["status"] == "ok" else self.records_seen}),
        }

    def _labelled_names(self) -> list[str] | None:
        try:
            return [str(created) for created in self.objects.labelled(f"{RUN_LABEL}={self.run_id}")]
        except Exception:  # noqa: BLE001 - could not look: CANARY-003 is then an error, never a pass
            return None

    def _labelled_gone(self) -> tuple[bool | None, str]:
        names = self._labelled_names()
        if names is None:
            return None, "the labelled objects could not be listed"
        return (True if not names else None), f"still there: {', '.join(names)}"

    def _records_left(self, policy: str) -> tuple[list[str] | None, str]:
        """The canary's A/TXT records in Azure DNS; done at once unless external-dns' policy deletes them (sync)."""
        if (self.evidence["canary"].get("address") or {}).get("status") != "ok":
            return [], "no record was ever asked for"  # no Ingress address: external-dns had nothing to publish
        t, remaining = self.target, []
        self.records_seen = remaining
        for kind in ("A", "TXT"):
            for name in (t.canary_host, f"a-{t.canary_host}"):
                try:
                    self.arm.dns.record_sets.get(t.dns_resource_group, t.domain, name, kind)
                    remaining.append(f"{name} {kind}")
                except Exception:  # noqa: BLE001, S112 - 404: gone (other faults: the next poll asks again)
                    continue
        return (remaining if not remaining or policy != "sync" else None), f"still there: {', '.join(remaining)}"


def _timeout_value(result: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    if names is None:
        return error(result["reason"])
    return ok(names)


def external_dns_policy(attach: dict[str, Any], namespace_name: str) -> str:
    """external-dns' --policy from its Deployment's args (its default is sync)."""
    entry = attach.get("kube", {}).get("apps/v1/Deployment") or {}
    for deployment in entry.get("value") or []:
        if deployment["metadata"].get("namespace") != namespace_name or "external-dns" not in deployment["metadata"]["name"]:
            continue
        for container in deployment["spec"]["template"]["spec"].get("containers") or []:
            for arg in container.get("args") or []:
                if arg.startswith("--policy="):
                    return arg.split("=", 1)[1]
    return "sync"


def _leaf_names_host(handshake: dict[str, Any], fqdn: str) -> bool:
    from aksid.trust import dns_names, parse_chain

    chain = parse_chain(handshake.get("chain") or [])
    return bool(chain) and fqdn.lower() in [name.lower() for name in dns_names(chain[0])]


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)


def _monotonic() -> float:
    import time

    return time.monotonic()
