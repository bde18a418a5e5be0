"""PROBE and CANARY: in provision mode, the identity chain and the DNS/certificate automation work now.

They judge the `provision` section of the snapshot (aksid/provision/run.py); in attach mode they are
skipped with that reason, and replaying an attach snapshot skips them the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aksid.checks import check
from aksid.config import Target
from aksid.identity_models import POD_IDENTITY, WORKLOAD_IDENTITY
from aksid.snapshot import EvidenceUnavailable, Snapshot
from aksid.trust import TrustStoreError, dns_names, load_store, parse_chain, top_issuer, verify_chain

PROVISION = ("provision", "replay")
ARM_AUDIENCE = "https://management.azure.com"


def _probe_subjects(snapshot: Snapshot, roles: tuple[str, ...]) -> dict[str, tuple[str, dict[str, Any]]]:
    subjects = {}
    for role in roles:
        record = snapshot.provision.probe(role)
        subjects[f"pod/{record.get('namespace')}/{record.get('pod') or f'aksid-{role}'}"] = (role, record)
    return subjects


def _outcome(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("status") != "ok":
        raise EvidenceUnavailable(f"the probe's answer could not be read: {record.get('reason')}")
    return record["value"]


# -- PROBE-001 ----------------------------------------------------------------------------------

@check(
    "PROBE-001", "a pod bound to the DNS identity gets a token for exactly that identity", "critical",
    remediation="Make the binding work: the AzureIdentity's clientID/resourceID must be the DNS identity's (BIND-001), "
                "the identity assigned in podIdentityProfile (`az aks pod-identity add`), the pod in the binding's "
                "namespace with label aadpodidbinding=<selector>, and NMI ready on its node (NMI-002).",
    subjects=lambda snapshot, _target: _probe_subjects(snapshot, ("probe-bound",)),
    modes=PROVISION,
    model=POD_IDENTITY,  # the probes ask NMI through aadpodidbinding; PROBE-003/004 are workload identity's
)
def test_bound_probe_gets_the_dns_identity(subject: tuple[str, dict[str, Any]], snapshot: Snapshot, target: Target) -> None:
    _role, record = subject
    answer = _outcome(record)
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise EvidenceUnavailable(f"the DNS identity {target.identity_name} is not in Azure (see BIND-001)")
    wanted = identity.get("properties") or {}
    claims = answer.get("claims") or {}
    where = f"probe {record.get('namespace')}/{record.get('pod')} (selector {record.get('selector')})"
    assert answer.get("status") == 200, (
        f"{where} was refused a token: IMDS/NMI answered {answer.get('status')} {answer.get('error', '')!r}; the "
        "workloads bound to the DNS identity cannot act as it")
    got = (claims.get("oid"), claims.get("appid"))
    assert got == (wanted.get("principalId"), wanted.get("clientId")), (
        f"{where} got a token for principal {got[0]} (client {got[1]}, {claims.get('xms_mirid')}), not for the DNS "
        f"identity {target.identity_name} (principal {wanted.get('principalId')}, client {wanted.get('clientId')})")
    assert str(claims.get("aud", "")).rstrip("/") == ARM_AUDIENCE, f"{where} got a token for {claims.get('aud')}, not ARM"


# -- PROBE-002 ----------------------------------------------------------------------------------

@check(
    "PROBE-002", "pods without the binding (or outside its namespace) are refused any token", "critical",
    remediation="NMI must answer 403/404 to pods it cannot match: check NMI runs on the node in managed mode "
                "(NMI-002, NMI-004), that no AzurePodIdentityException or hostNetwork lets the pod bypass it (BIND-004), "
                "and that the DNS identity is assigned to no other workload's identity.",
    subjects=lambda snapshot, _target: _probe_subjects(snapshot, ("probe-unbound", "probe-elsewhere")),
    modes=PROVISION,
    model=POD_IDENTITY,  # the probes ask NMI through aadpodidbinding; PROBE-003/004 are workload identity's
)
def test_unbound_probes_are_refused(subject: tuple[str, dict[str, Any]]) -> None:
    role, record = subject
    answer = _outcome(record)
    how = ("without the binding's selector" if role == "probe-unbound"
           else f"with selector {record.get('selector')} outside the identity's namespace")
    claims = answer.get("claims") or {}
    assert answer.get("status") != 200 and not claims, (
        f"probe {record.get('namespace')}/{record.get('pod')} ({how}) got a token for principal {claims.get('oid')} "
        f"({claims.get('xms_mirid')}): any pod like it can act as that identity")


# -- PROBE-003 ----------------------------------------------------------------------------------

def _wi_where(record: dict[str, Any]) -> str:
    return (f"probe {record.get('namespace')}/{record.get('pod')} (ServiceAccount "
            f"{record.get('namespace')}/{record.get('service_account')})")


@check(
    "PROBE-003", "a pod of an allowed ServiceAccount exchanges its token for exactly the DNS identity", "critical",
    remediation="Make the exchange work: the allowed ServiceAccount annotated azure.workload.identity/client-id with "
                "the DNS identity's client id (WI-004), its pods labelled azure.workload.identity/use: \"true\" and "
                "mutated by a ready webhook (WI-002), and a federated credential of the DNS identity with --issuer the "
                "cluster's oidcIssuerProfile.issuerURL (exactly, trailing slash included), --subject "
                "system:serviceaccount:<namespace>:<serviceaccount> and --audiences api://AzureADTokenExchange (WI-003).",
    subjects=lambda snapshot, _target: _probe_subjects(snapshot, ("probe-wi-allowed",)),
    modes=PROVISION,
    model=WORKLOAD_IDENTITY,
)
def test_allowed_wi_probe_gets_the_dns_identity(subject: tuple[str, dict[str, Any]], snapshot: Snapshot,
                                                target: Target) -> None:
    _role, record = subject
    answer = _outcome(record)
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise EvidenceUnavailable(f"the DNS identity {target.identity_name} is not in Azure (see WI-003)")
    wanted = identity.get("properties") or {}
    claims, assertion = answer.get("claims") or {}, answer.get("assertion") or {}
    where = _wi_where(record)
    assert answer.get("status") == 200, (
        f"{where} got no token: {answer.get('error') or answer.get('status')} (it presented "
        f"{assertion.get('sub', 'no ServiceAccount token')} from issuer {assertion.get('iss', '-')} for client id "
        f"{answer.get('client_id') or 'none'}); the workloads of that ServiceAccount cannot act as the DNS identity")
    got = (claims.get("oid"), claims.get("appid"))
    assert got == (wanted.get("principalId"), wanted.get("clientId")), (
        f"{where} got a token for principal {got[0]} (client {got[1]}, {claims.get('xms_mirid')}), not for the DNS "
        f"identity {target.identity_name} (principal {wanted.get('principalId')}, client {wanted.get('clientId')}): "
        "its ServiceAccount's azure.workload.identity/client-id names another identity")
    assert str(claims.get("aud", "")).rstrip("/") == ARM_AUDIENCE, f"{where} got a token for {claims.get('aud')}, not ARM"


# -- PROBE-004 ----------------------------------------------------------------------------------

@check(
    "PROBE-004", "pods of ServiceAccounts that are not allowed get no token for the DNS identity", "critical",
    remediation="Entra ID must find no federated credential for them: delete every federated credential of the DNS "
                "identity whose subject is not an allowed ServiceAccount (`az identity federated-credential list "
                "--identity-name <IDENTITY_NAME> -g <group>`, then `... delete -n <name>`), WI-003 names them; allow "
                "more with --aksid-set wi_allowed=NAMESPACE/SA,... only for workloads that must write DNS.",
    subjects=lambda snapshot, _target: _probe_subjects(snapshot, ("probe-wi-unallowed", "probe-wi-elsewhere")),
    modes=PROVISION,
    model=WORKLOAD_IDENTITY,
)
def test_unallowed_wi_probes_are_refused(subject: tuple[str, dict[str, Any]]) -> None:
    _role, record = subject
    answer = _outcome(record)
    claims, assertion = answer.get("claims") or {}, answer.get("assertion") or {}
    assert answer.get("status") != 200 and not claims, (
        f"{_wi_where(record)} asked for client id {record.get('asks_client_id')} and got a token for principal "
        f"{claims.get('oid')} ({claims.get('xms_mirid')}): Entra ID trusts {assertion.get('sub')} of issuer "
        f"{assertion.get('iss')}, so any pod running as that ServiceAccount can act as the DNS identity")


# -- CANARY-001 ---------------------------------------------------------------------------------

def canary_host(snapshot: Snapshot, _target: Target) -> dict[str, str]:
    host = str(snapshot.provision.section.get("canary_host"))
    return {f"host/{host}": host}


def _step(snapshot: Snapshot, key: str) -> Any:
    """A step's value; a step the controller did not complete in time is the finding (AssertionError)."""
    entry = snapshot.provision.canary(key)
    if entry.get("status") == "timeout":
        raise AssertionError(entry["reason"])
    if entry.get("status") != "ok":
        raise EvidenceUnavailable(str(entry.get("reason")))
    return entry["value"]


@check(
    "CANARY-001", "external-dns publishes a new host: Azure DNS and every authoritative server", "high",
    remediation="Read external-dns' log (`kubectl -n kube-addons logs deploy/external-dns`): its identity needs DNS "
                "Zone Contributor on the zone (RBAC-001), its --domain-filter must include the host, and ingress-nginx "
                "must publish the load balancer address in the Ingress status (--publish-service).",
    subjects=canary_host,
    modes=PROVISION,
)
def test_canary_record_published(subject: str, snapshot: Snapshot) -> None:
    address = _step(snapshot, "address")
    record = _step(snapshot, "azure_record")
    assert address in record.get("addresses", []), f"Azure DNS holds {record.get('addresses')} for {subject}, not {address}"
    _step(snapshot, "servers")  # every authoritative server answered the address (or the step timed out)


# -- CANARY-002 ---------------------------------------------------------------------------------

@check(
    "CANARY-002", "cert-manager issues the new host a certificate the trust store accepts, and it is served", "high",
    remediation="`kubectl describe certificate,certificaterequest,order,challenge -n <run namespace>` during a run: "
                "the DNS-01 solver needs the identity's rights on the zone (RBAC-001) and the right zone/resource group "
                "(ISS-003); the issuer must be ACME_ISSUER's, publicly trusted (TLS-001).",
    subjects=canary_host,
    modes=PROVISION,
)
def test_canary_certificate_issued_and_trusted(subject: str, snapshot: Snapshot, target: Target) -> None:
    certificate = _step(snapshot, "certificate")
    issuer = ((certificate.get("spec") or {}).get("issuerRef") or {}).get("name")
    assert issuer == target.acme_issuer, f"the canary's Certificate was issued by {issuer}, not {target.acme_issuer}"
    tls = _step(snapshot, "tls")
    chain = parse_chain(((tls.get("handshake") or {}).get("value") or {}).get("chain") or [])
    try:
        store = load_store(target.trust_store)
    except TrustStoreError as exc:
        raise EvidenceUnavailable(str(exc)) from None
    path, why = verify_chain(chain, store, dt.datetime.now(dt.UTC))
    assert path is not None, (
        f"{subject} serves a chain ending at '{top_issuer(chain) if chain else 'nothing'}', which the trust store "
        f"{store.name} does not accept ({why})")
    assert subject in [name.lower() for name in dns_names(chain[0])], f"{subject} serves a leaf for {dns_names(chain[0])}"


# -- CANARY-003 ---------------------------------------------------------------------------------

def run_subject(snapshot: Snapshot, _target: Target) -> dict[str, str]:
    return {f"run/{snapshot.provision.section.get('run_id')}": str(snapshot.provision.section.get("run_id"))}


@check(
    "CANARY-003", "teardown leaves nothing the run created", "high",
    remediation="Delete what the run left: `aksid sweep --run-id <id>` with the same target options (it deletes only "
                "objects labelled aksid.io/run=<id>); with external-dns --policy=sync its records go with the Ingress.",
    subjects=run_subject,
    modes=PROVISION,
)
def test_teardown_left_nothing(subject: str, snapshot: Snapshot) -> None:
    leftovers = snapshot.provision.teardown("leftovers")
    problems = snapshot.provision.teardown("problems") or []
    assert not leftovers, f"{subject} left {', '.join(leftovers)} ({'; '.join(problems) or 'no delete failed'})"
    records = snapshot.provision.teardown("records")
    remaining = records.get("remaining") or []
    assert not (remaining and records.get("policy") == "sync"), (
        f"external-dns runs with --policy=sync but the canary's records are still in Azure DNS: {', '.join(remaining)}")
    # upsert-only (the tutorial's) never deletes: one record per target stays and is reused by every run
