"""ISS: cert-manager's issuers are ready, point at the right CA, use the DNS identity, and the demo certificate is current."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aksid import hostnames
from aksid.checks import NotApplicable, check
from aksid.config import Target
from aksid.evidence import Evidence
from aksid.modes import LIVE_MODES
from aksid.snapshot import Snapshot, unknown_until_apply

CERT_MANAGER = "cert-manager.io/v1"
ACME = "acme.cert-manager.io/v1"
ISSUER_ANNOTATION = "cert-manager.io/cluster-issuer"
READY_REASONS = ("ACMEAccountRegistered", "ACMEAccountVerified")
FAILED_STATES = ("invalid", "errored", "expired")


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def demo_ingress(snapshot: Snapshot, target: Target) -> dict[str, Any] | None:
    """The Ingress that serves the demo host (hello.<domain>): a rule for it, else a wildcard rule covering it."""
    return next(iter(hostnames.ingresses_for(snapshot.kube.list("networking.k8s.io/v1", "Ingress"), target.demo_fqdn)),
                None)


# -- ISS-001 ------------------------------------------------------------------------------------

def cluster_issuers(snapshot: Snapshot, target: Target) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Every ClusterIssuer, and the one ACME_ISSUER names even when it is missing."""
    issuers = snapshot.kube.list(CERT_MANAGER, "ClusterIssuer")
    found: dict[str, tuple[str, dict[str, Any] | None]] = {
        f"clusterissuer/{i['metadata']['name']}": (i["metadata"]["name"], i) for i in issuers
    }
    found.setdefault(f"clusterissuer/{target.acme_issuer}", (target.acme_issuer, None))
    return found


@check(
    "ISS-001", "each ClusterIssuer is Ready (ACME account registered)", "high",
    remediation="Read the issuer's condition (`kubectl describe clusterissuer <name>`): fix the ACME server URL or "
                "e-mail, or delete the account key Secret so cert-manager registers again.",
    subjects=cluster_issuers,
    modes=LIVE_MODES,
    reads=("kube:ClusterIssuer",),
    link="ingress IP → certificate",
    groups=("kube:ClusterIssuer",),
)
def test_cluster_issuer_ready(subject: tuple[str, dict[str, Any] | None], snapshot: Snapshot, target: Target,
                              evidence: Evidence) -> None:
    name, issuer = subject
    if issuer is None:
        evidence.kube_count(f"{CERT_MANAGER}/ClusterIssuer", snapshot.kube.list(CERT_MANAGER, "ClusterIssuer"),
                            note=f"none is {name}")
        evidence.target(target, "acme_issuer")
        evidence.fix(f"kubectl apply the tutorial's ClusterIssuer {name}")
    else:
        evidence.kube(issuer, "spec.acme.server", "spec.acme.email")
        evidence.kube_condition(issuer, "Ready", "reason", "message")
        acme = (issuer.get("spec") or {}).get("acme") or {}
        evidence.fix(f"kubectl describe clusterissuer {name}; check spec.acme.server {acme.get('server')} and the "
                     f"e-mail, or delete the account key Secret {(acme.get('privateKeySecretRef') or {}).get('name')} "
                     "so cert-manager registers again")
    assert issuer is not None, f"ClusterIssuer {name} (ACME_ISSUER) does not exist; apply the tutorial's issuers"
    ready = _condition(issuer, "Ready")
    assert ready.get("status") == "True", (
        f"ClusterIssuer {name} is not Ready ({ready.get('reason', 'no Ready condition')}: {ready.get('message', '')})")
    assert ready.get("reason") in READY_REASONS, (
        f"ClusterIssuer {name} is Ready for reason {ready.get('reason')}, not a registered ACME account")


# -- ISS-002 ------------------------------------------------------------------------------------

def demo_issuer(snapshot: Snapshot, target: Target) -> dict[str, tuple[str, dict[str, Any] | None]]:
    ingress = demo_ingress(snapshot, target)
    if ingress is None:
        raise NotApplicable(f"no Ingress serves {target.demo_fqdn}")
    name = (ingress["metadata"].get("annotations") or {}).get(ISSUER_ANNOTATION)
    if not name:
        raise NotApplicable(f"Ingress {ingress['metadata']['namespace']}/{ingress['metadata']['name']} names no cluster issuer")
    return {f"clusterissuer/{name}": (name, snapshot.kube.get(CERT_MANAGER, "ClusterIssuer", None, name))}


@check(
    "ISS-002", "the demo's issuer is ACME_ISSUER and talks to that issuer's ACME server", "high",
    remediation="Point the Ingress annotation cert-manager.io/cluster-issuer at ACME_ISSUER, and give "
                "letsencrypt-prod the production directory and letsencrypt-staging the staging one.",
    subjects=demo_issuer,
    reads=("kube:Ingress", "kube:ClusterIssuer"),
    link="ingress IP → certificate",
)
def test_demo_issuer_matches_acme_issuer(subject: tuple[str, dict[str, Any] | None], snapshot: Snapshot, target: Target,
                                         evidence: Evidence) -> None:
    name, issuer = subject
    ingress = demo_ingress(snapshot, target)
    if ingress is not None:
        evidence.kube(ingress, f'metadata.annotations["{ISSUER_ANNOTATION}"]')
        evidence.fix(f"kubectl -n {ingress['metadata']['namespace']} annotate ingress {ingress['metadata']['name']} "
                     f"--overwrite {ISSUER_ANNOTATION}={target.acme_issuer}")
    evidence.target(target, "acme_issuer")
    assert name == target.acme_issuer, (
        f"the demo Ingress uses ClusterIssuer {name}, but ACME_ISSUER is {target.acme_issuer}")
    assert issuer is not None, f"ClusterIssuer {name} used by the demo Ingress does not exist"
    server = ((issuer.get("spec") or {}).get("acme") or {}).get("server")
    expected = target.acme_server_for(name)
    evidence.kube(issuer, "spec.acme.server")
    evidence.add("target", f"acme_{'staging' if name.endswith('staging') else 'prod'}_server", expected)
    evidence.fix(f"kubectl patch clusterissuer {name} --type merge -p '{{\"spec\":{{\"acme\":{{\"server\":"
                 f"\"{expected}\"}}}}}}'")
    assert server == expected, f"ClusterIssuer {name} uses ACME server {server}, expected {expected}"


# -- ISS-003 ------------------------------------------------------------------------------------

def azure_dns_solvers(snapshot: Snapshot, _target: Target) -> dict[str, tuple[str, dict[str, Any]]]:
    subjects = {}
    for kind in ("ClusterIssuer", "Issuer"):
        for issuer in snapshot.kube.list(CERT_MANAGER, kind):
            solvers = ((issuer.get("spec") or {}).get("acme") or {}).get("solvers") or []
            for index, solver in enumerate(solvers):
                azure = (solver.get("dns01") or {}).get("azureDNS")
                if azure is not None:
                    ns = issuer["metadata"].get("namespace")
                    ref = f"{ns + '/' if ns else ''}{issuer['metadata']['name']}"
                    subjects[f"{kind.lower()}/{ref}/solver-{index}"] = (f"{kind} {ref} solver {index}", azure)
    if not subjects:
        raise NotApplicable("no azureDNS solver in any issuer")
    return subjects


@check(
    "ISS-003", "every azureDNS solver names the target's subscription, resource group and zone, and the DNS identity",
    "high",
    remediation="Set subscriptionID, resourceGroupName and hostedZoneName to the zone's (AZ_SUBSCRIPTION_ID, "
                "AZ_DNS_RESOURCE_GROUP, AZ_DNS_DOMAIN); leave managedIdentity unset (ambient) or set its clientID "
                "to the DNS identity's.",
    subjects=azure_dns_solvers,
    reads=("kube:ClusterIssuer", "kube:Issuer", "azure:identities"),
    link="ingress IP → certificate",
)
def test_solver_targets_the_zone(subject: tuple[str, dict[str, Any]], snapshot: Snapshot, target: Target,
                                 evidence: Evidence) -> None:
    label, azure = subject
    kind, ref, _, index = label.split(" ")
    namespace, _, name = ref.rpartition("/")
    issuer = snapshot.kube.get(CERT_MANAGER, kind, namespace or None, name) or {}
    where = f"spec.acme.solvers[{index}].dns01.azureDNS"
    evidence.kube(issuer, *(f"{where}.{key}" for key in ("subscriptionID", "resourceGroupName", "hostedZoneName",
                                                          "managedIdentity")))
    evidence.target(target, "subscription_id", "dns_resource_group", "domain")
    expected = {"subscriptionID": target.subscription_id, "resourceGroupName": target.dns_resource_group,
                "hostedZoneName": target.domain.rstrip(".")}
    wrong = [f"{key} is {azure.get(key)!r}, expected {value!r}" for key, value in expected.items()
             if str(azure.get(key, "")).lower().rstrip(".") != value.lower()]
    patch = ",".join(f'\"{key}\":\"{value}\"' for key, value in expected.items()
                     if str(azure.get(key, "")).lower().rstrip(".") != value.lower())
    evidence.fix(f"kubectl edit {kind.lower()} {ref}: in {where} set {patch.replace(chr(92), '')}")
    assert not wrong, f"{label}: {'; '.join(wrong)}"
    managed = azure.get("managedIdentity") or {}
    if managed.get("clientID"):
        identity = snapshot.azure.identity_named(target.identity_name)
        client_id = ((identity or {}).get("properties") or {}).get("clientId")
        if identity is not None:
            evidence.arm("identities", identity, "name", "properties.clientId")
        evidence.fix(f"kubectl edit {kind.lower()} {ref}: set {where}.managedIdentity.clientID to {client_id} "
                     f"(the DNS identity {target.identity_name}), or remove managedIdentity")
        if unknown_until_apply(client_id):
            pytest.skip(f"{label} names zone, group and subscription right; its managedIdentity.clientID cannot be "
                        f"compared: the DNS identity's client id is {client_id}")
        assert managed["clientID"] == client_id, (
            f"{label} uses managed identity {managed['clientID']}, not the DNS identity {target.identity_name} ({client_id})")


# -- ISS-004 ------------------------------------------------------------------------------------

def demo_certificate(snapshot: Snapshot, target: Target) -> dict[str, tuple[str, Any]]:
    ingress = demo_ingress(snapshot, target)
    if ingress is None:
        raise NotApplicable(f"no Ingress serves {target.demo_fqdn}")
    namespace = ingress["metadata"]["namespace"]
    found = hostnames.tls_entry_for([ingress], target.demo_fqdn)
    if found is None:
        listed = [host for t in (ingress.get("spec") or {}).get("tls") or [] for host in hostnames.tls_hosts(t)]
        also = f" (its TLS entries list {', '.join(listed)})" if listed else ""
        raise NotApplicable(f"Ingress {namespace}/{ingress['metadata']['name']} has no TLS for {target.demo_fqdn}{also}")
    tls = found[1]
    name = tls["secretName"]  # cert-manager names the Certificate after the secret
    return {
        f"certificate/{namespace}/{name}": ("certificate", (namespace, name)),
        f"secret/{namespace}/{name}": ("secret", (namespace, name)),
    }


def _failing_acme(snapshot: Snapshot, namespace: str) -> list[str]:
    failing = []
    for kind in ("Order", "Challenge"):
        for obj in snapshot.kube.list(ACME, kind, namespace):
            status = obj.get("status") or {}
            if status.get("state") in FAILED_STATES:
                reason = status.get("reason", "no reason given")
                failing.append(f"{kind} {obj['metadata']['name']} is {status['state']}: {reason}")
    return failing


@check(
    "ISS-004", "the demo Certificate is Ready, its Secret exists, and it is not inside its renewal window", "high",
    remediation="`kubectl -n <ns> describe certificate,certificaterequest,order,challenge`: fix what the failing "
                "Order/Challenge reports (usually DNS-01 rights or delegation), then `cmctl renew`.",
    subjects=demo_certificate,
    modes=LIVE_MODES,
    reads=("kube:Certificate", "kube:Ingress", "kube:Secret", "kube:Order", "kube:Challenge"),
    link="ingress IP → certificate",
    groups=("kube:Certificate",),
)
def test_demo_certificate_current(subject: tuple[str, Any], snapshot: Snapshot, evidence: Evidence) -> None:
    kind, (namespace, name) = subject
    if kind == "secret":
        secret = snapshot.kube.get("v1", "Secret", namespace, name)
        if secret is not None:
            evidence.kube(secret, "metadata.name", "type")
        else:
            evidence.kube_count("v1/Secret", snapshot.kube.list("v1", "Secret", namespace), namespace,
                                note=f"none is {name}")
        evidence.fix(f"kubectl -n {namespace} describe certificate {name}; cmctl renew -n {namespace} {name}")
        assert snapshot.kube.get("v1", "Secret", namespace, name) is not None, (
            f"Secret {namespace}/{name} of the demo Certificate does not exist: the Ingress serves no certificate")
        return
    certificate = snapshot.kube.get(CERT_MANAGER, "Certificate", namespace, name)
    failing = _failing_acme(snapshot, namespace)
    hint = f"; {'; '.join(failing)}" if failing else ""
    for acme_kind in ("Order", "Challenge"):
        for obj in snapshot.kube.list(ACME, acme_kind, namespace):
            evidence.kube(obj, "status.state", "status.reason")
    if certificate is not None:
        evidence.kube_condition(certificate, "Ready", "reason")
        evidence.kube(certificate, "status.notAfter", "status.renewalTime")
    evidence.add("snapshot", "created", snapshot.document.get("created"), note="the time it is judged at")
    evidence.fix(f"kubectl -n {namespace} describe certificate,certificaterequest,order,challenge; fix what "
                 + ("; ".join(failing) if failing else "they report") + f"; then cmctl renew -n {namespace} {name}")
    assert certificate is not None, f"Certificate {namespace}/{name} does not exist{hint}"
    ready = _condition(certificate, "Ready")
    assert ready.get("status") == "True", (
        f"Certificate {namespace}/{name} is not Ready ({ready.get('reason', 'no Ready condition')}: "
        f"{ready.get('message', '')}){hint}")
    status = certificate.get("status") or {}
    # Judged at collection time, so a replayed snapshot gives the same answer it gave live.
    collected = _time(snapshot.document.get("created")) or dt.datetime.now(dt.UTC)
    renewal, not_after = _time(status.get("renewalTime")), _time(status.get("notAfter"))
    assert not_after is None or collected < not_after, f"Certificate {namespace}/{name} expired at {status.get('notAfter')}{hint}"
    assert renewal is None or collected < renewal, (
        f"Certificate {namespace}/{name} is inside its renewal window (renewal was due {status.get('renewalTime')}, "
        f"expires {status.get('notAfter')}) and has not been renewed{hint}")
