"""PROBE and CANARY: in provision mode, the identity chain and the DNS/certificate automation work now.

They judge the `provision` section of the snapshot (aksid/provision/run.py); in attach mode they are
skipped with that reason, and replaying an attach snapshot skips them the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aksid.checks import check
from aksid.config import Target
from aksid.evidence import Evidence, path_text
from aksid.identity_models import POD_IDENTITY, WORKLOAD_IDENTITY
from aksid.recorded_trust import store_for
from aksid.snapshot import EvidenceUnavailable, Snapshot
from aksid.trust import TrustStoreError, dns_names, parse_chain, top_issuer, verify_chain

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


def _probe_evidence(evidence: Evidence, snapshot: Snapshot, role: str, *claims: str) -> None:
    """The probe's pod and what IMDS/NMI answered it."""
    section = snapshot.provision.section
    evidence.provision(section, path_text("probes", role, "namespace"), path_text("probes", role, "pod"),
                       path_text("probes", role, "selector"), path_text("probes", role, "status"),
                       path_text("probes", role, "value", "status"),
                       *(path_text("probes", role, "value", *claim.split(".")) for claim in claims))


# -- PROBE-001 ----------------------------------------------------------------------------------

@check(
    "PROBE-001", "a pod bound to the DNS identity gets a token for exactly that identity", "critical",
    remediation="Make the binding work: the AzureIdentity's clientID/resourceID must be the DNS identity's (BIND-001), "
                "the identity assigned in podIdentityProfile (`az aks pod-identity add`), the pod in the binding's "
                "namespace with label aadpodidbinding=<selector>, and NMI ready on its node (NMI-002).",
    subjects=lambda snapshot, _target: _probe_subjects(snapshot, ("probe-bound",)),
    modes=PROVISION,
    model=POD_IDENTITY,  # the probes ask NMI through aadpodidbinding; PROBE-003/004 are workload identity's
    reads=("provision:probes", "azure:identities"),
    link="binding → identity",
)
def test_bound_probe_gets_the_dns_identity(subject: tuple[str, dict[str, Any]], snapshot: Snapshot, target: Target,
                                           evidence: Evidence) -> None:
    role, record = subject
    _probe_evidence(evidence, snapshot, role, "claims.oid", "claims.appid", "claims.aud")
    answer = _outcome(record)
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is not None:
        evidence.arm("identities", identity, "properties.principalId", "properties.clientId")
        evidence.fix(f"az aks pod-identity add -g {target.aks_resource_group} --cluster-name {target.cluster_name} "
                     f"--namespace {record.get('namespace')} --name {target.identity_name} --identity-resource-id "
                     f"{identity.get('id')} --binding-selector {record.get('selector')} (then check BIND-001, NMI-002)")
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

def _from_imds(answer: dict[str, Any]) -> bool:
    """Whether IMDS itself answered (NMI was not in the way): its Server header, or its own error shapes."""
    error_text = str(answer.get("error") or "")
    return (str(answer.get("server") or "").startswith("IMDS")
            or "Multiple user assigned identities exist" in error_text
            or ('"error"' in error_text and '"error_description"' in error_text and "Identity not found" in error_text
                and "failed to get service principal token" not in error_text))


@check(
    "PROBE-002", "pods without the binding (or outside its namespace) are refused any token", "critical",
    remediation="NMI must answer 403/404 to pods it cannot match: check NMI runs on the node in managed mode "
                "(NMI-002, NMI-004), that no AzurePodIdentityException or hostNetwork lets the pod bypass it (BIND-004), "
                "and that the DNS identity is assigned to no other workload's identity.",
    subjects=lambda snapshot, _target: _probe_subjects(snapshot, ("probe-unbound", "probe-elsewhere")),
    modes=PROVISION,
    model=POD_IDENTITY,  # the probes ask NMI through aadpodidbinding; PROBE-003/004 are workload identity's
    reads=("provision:probes",),
    link="pod → binding",
)
def test_unbound_probes_are_refused(subject: tuple[str, dict[str, Any]], snapshot: Snapshot, evidence: Evidence) -> None:
    role, record = subject
    _probe_evidence(evidence, snapshot, role, "claims.oid", "claims.xms_mirid", "server", "asked_as.status",
                    "asked_as.server", "asked_as.claims.oid")
    answer = _outcome(record)
    evidence.fix(f"kubectl -n kube-system get pods -l component=nmi -o wide (NMI must run, in managed mode, on the node "
                 f"of probe {record.get('namespace')}/{record.get('pod')}); kubectl get azurepodidentityexceptions -A; "
                 "remove exceptions and hostNetwork that let pods bypass NMI (BIND-004)")
    how = ("without the binding's selector" if role == "probe-unbound"
           else f"with selector {record.get('selector')} outside the identity's namespace")
    where = f"probe {record.get('namespace')}/{record.get('pod')} ({how})"
    replies = [(asked, reply) for asked, reply in (
        ("", answer), (f" asking for client id {(answer.get('asked_as') or {}).get('asks_client_id')}",
                       answer.get("asked_as"))) if reply]
    for asked, reply in replies:  # a token is the finding that matters most: judged first, for either ask
        claims = reply.get("claims") or {}
        assert reply.get("status") != 200 and not claims, (
            f"{where}{asked} got a token for principal {claims.get('oid')} ({claims.get('xms_mirid')}): any pod like "
            "it can act as that identity")
    for asked, reply in replies:
        assert not _from_imds(reply), (
            f"{where}{asked} was answered by IMDS itself ({reply.get('status')} {str(reply.get('error'))[:160]}), not "
            "by NMI: nothing stands between this pod and the node pool's identities, so naming an identity's client id "
            "gets its token")


# -- PROBE-003 ----------------------------------------------------------------------------------

def _wi_probe_evidence(evidence: Evidence, snapshot: Snapshot, role: str) -> None:
    """The workload identity probe's pod, its ServiceAccount and what Entra ID answered the exchange."""
    section = snapshot.provision.section
    evidence.provision(section, *(path_text("probes", role, *field.split(".")) for field in (
        "namespace", "pod", "service_account", "asks_client_id", "status", "value.status", "value.claims.oid",
        "value.claims.appid", "value.claims.aud", "value.assertion.iss", "value.assertion.sub")))


def _group_of(identity: dict[str, Any]) -> str:
    parts = str(identity.get("id") or "").split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered else "<resource group>"


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
    reads=("provision:probes", "azure:identities", "azure:managedCluster"),
)
def test_allowed_wi_probe_gets_the_dns_identity(subject: tuple[str, dict[str, Any]], snapshot: Snapshot,
                                                target: Target, evidence: Evidence) -> None:
    role, record = subject
    _wi_probe_evidence(evidence, snapshot, role)
    answer = _outcome(record)
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise EvidenceUnavailable(f"the DNS identity {target.identity_name} is not in Azure (see WI-003)")
    evidence.arm("identities", identity, "properties.principalId", "properties.clientId")
    issuer = ((snapshot.azure.managed_cluster() or {}).get("properties") or {}).get("oidcIssuerProfile") or {}
    evidence.fix(f"az identity federated-credential create -g {_group_of(identity)} --identity-name "
                 f"{target.identity_name} -n {record.get('service_account')} --issuer {issuer.get('issuerURL')} "
                 f"--subject system:serviceaccount:{record.get('namespace')}:{record.get('service_account')} "
                 f"--audiences api://AzureADTokenExchange; kubectl -n {record.get('namespace')} annotate serviceaccount "
                 f"{record.get('service_account')} azure.workload.identity/client-id="
                 f"{(identity.get('properties') or {}).get('clientId')} --overwrite (then WI-002..004)")
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
    reads=("provision:probes", "azure:identities"),
)
def test_unallowed_wi_probes_are_refused(subject: tuple[str, dict[str, Any]], snapshot: Snapshot, target: Target,
                                        evidence: Evidence) -> None:
    role, record = subject
    _wi_probe_evidence(evidence, snapshot, role)
    answer = _outcome(record)
    claims, assertion = answer.get("claims") or {}, answer.get("assertion") or {}
    identity = snapshot.azure.identity_named(target.identity_name) or {}
    evidence.fix(f"az identity federated-credential list -g {_group_of(identity)} --identity-name {target.identity_name}"
                 f" --query \"[?subject=='{assertion.get('sub')}'].name\" -o tsv | xargs -n1 az identity "
                 f"federated-credential delete -y -g {_group_of(identity)} --identity-name {target.identity_name} -n")
    assert answer.get("status") != 200 and not claims, (
        f"{_wi_where(record)} asked for client id {record.get('asks_client_id')} and got a token for principal "
        f"{claims.get('oid')} ({claims.get('xms_mirid')}): Entra ID trusts {assertion.get('sub')} of issuer "
        f"{assertion.get('iss')}, so any pod running as that ServiceAccount can act as the DNS identity")


# -- PROBE-005 ----------------------------------------------------------------------------------

@check(
    "PROBE-005", "a pod of no identity that names the DNS identity's client id at IMDS gets no token for it", "critical",
    remediation="Take the DNS identity off the node pools' scale sets (`az vmss identity remove -g <node resource "
                "group> -n <scale set> --identities <DNS identity id>`) once no workload uses it through pod identity "
                "(MIG-002 names each scale set); until then NMI must intercept IMDS on every node (NMI-002), or turn "
                "on AKS's IMDS restriction (networkProfile.podLinkLocalAccess: None).",
    subjects=lambda snapshot, _target: _probe_subjects(snapshot, ("probe-imds",)),
    modes=PROVISION,
    reads=("provision:probes", "azure:identities"),
)
def test_imds_refuses_the_dns_identity_to_any_pod(subject: tuple[str, dict[str, Any]], snapshot: Snapshot,
                                                  target: Target, evidence: Evidence) -> None:
    """MIG-002's live proof: whatever the identity model, nothing on a node hands the DNS identity to a pod that only
    asks for it. After a cutover NMI is gone and IMDS answers pods itself, for every identity still on the node's
    scale set; an answer without a token (IMDS's "Identity not found", NMI's refusal, no answer) is what must be."""
    role, record = subject
    _probe_evidence(evidence, snapshot, role, "claims.oid", "claims.xms_mirid", "server", "asked_as.status",
                    "asked_as.server", "asked_as.claims.oid", "asked_as.claims.xms_mirid")
    evidence.provision(snapshot.provision.section, path_text("probes", role, "node"))
    answer = _outcome(record)
    identity = snapshot.azure.identity_named(target.identity_name)
    if identity is None:
        raise EvidenceUnavailable(f"the DNS identity {target.identity_name} is not in Azure (see BIND-001, WI-003)")
    evidence.arm("identities", identity, "properties.principalId", "properties.clientId")
    principal = (identity.get("properties") or {}).get("principalId")
    evidence.fix(f"az vmss identity remove -g <node resource group> -n <the scale set of node {record.get('node')}> "
                 f"--identities {identity.get('id')} (MIG-002 names it); or keep NMI ready on that node (NMI-002)")
    where = f"probe {record.get('namespace')}/{record.get('pod')} on node {record.get('node') or 'unknown'}"
    for asked, reply in (("without a client id", answer),
                         (f"for client id {record.get('asks_client_id')}", answer.get("asked_as") or {})):
        claims = reply.get("claims") or {}
        who = "IMDS itself" if _from_imds(reply) else "NMI (or what answers for it)"
        assert not (reply.get("status") == 200 and claims.get("oid") == principal), (
            f"{where}, a pod with no binding and no ServiceAccount of its own, asked {asked} and got a token for the DNS "
            f"identity {target.identity_name} (principal {principal}) from {who}: the identity is on that node's "
            "scale set and nothing stops IMDS from handing it out, so every pod there can write the zone")


# -- CANARY-001 ---------------------------------------------------------------------------------

def canary_host(snapshot: Snapshot, _target: Target) -> dict[str, str]:
    host = str(snapshot.provision.section.get("canary_host"))
    return {f"host/{host}": host}


def _step(snapshot: Snapshot, key: str, evidence: Evidence | None = None, *fields: str) -> Any:
    """A step's value; a step the controller did not complete in time is the finding (AssertionError)."""
    entry = snapshot.provision.canary(key)
    if evidence is not None:
        evidence.provision(snapshot.provision.section, path_text("canary", key, "status"),
                           *(path_text("canary", key, "value", *field.split(".")) for field in fields))
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
    reads=("provision:canary",),
    link=("canary: canary Ingress → Azure DNS record", "canary: Azure DNS record → name servers"),
)
def test_canary_record_published(subject: str, snapshot: Snapshot, target: Target, evidence: Evidence) -> None:
    evidence.fix(f"kubectl -n {target.addon_namespace} logs deploy/external-dns: its identity needs DNS Zone Contributor "
                 f"on {target.zone_id} (RBAC-001) and --domain-filter must include {subject}")
    address = _step(snapshot, "address", evidence)
    evidence.provision(snapshot.provision.section, path_text("canary", "address", "value"))
    record = _step(snapshot, "azure_record", evidence, "addresses")
    assert address in record.get("addresses", []), f"Azure DNS holds {record.get('addresses')} for {subject}, not {address}"
    _step(snapshot, "servers", evidence)  # every authoritative server answered the address (or the step timed out)


# -- CANARY-002 ---------------------------------------------------------------------------------

@check(
    "CANARY-002", "cert-manager issues the new host a certificate the trust store accepts, and it is served", "high",
    remediation="`kubectl describe certificate,certificaterequest,order,challenge -n <run namespace>` during a run: "
                "the DNS-01 solver needs the identity's rights on the zone (RBAC-001) and the right zone/resource group "
                "(ISS-003); the issuer must be ACME_ISSUER's, publicly trusted (TLS-001).",
    subjects=canary_host,
    modes=PROVISION,
    reads=("provision:canary",),
    link=("canary: name servers → certificate", "canary: certificate → served chain"),
)
def test_canary_certificate_issued_and_trusted(subject: str, snapshot: Snapshot, target: Target,
                                              evidence: Evidence) -> None:
    evidence.fix(f"during a run: kubectl describe certificate,certificaterequest,order,challenge -n <run namespace> for "
                 f"{subject}; the DNS-01 solver of {target.acme_issuer} needs the identity's rights on {target.zone_id}")
    certificate = _step(snapshot, "certificate", evidence, "spec.issuerRef.name")
    evidence.target(target, "acme_issuer", "trust_store")
    issuer = ((certificate.get("spec") or {}).get("issuerRef") or {}).get("name")
    assert issuer == target.acme_issuer, f"the canary's Certificate was issued by {issuer}, not {target.acme_issuer}"
    tls = _step(snapshot, "tls", evidence, "handshake.value.chain[0]", "handshake.value.chain[1]")
    chain = parse_chain(((tls.get("handshake") or {}).get("value") or {}).get("chain") or [])
    try:
        store, _recorded = store_for(target.trust_store, snapshot.document)  # a replay's file may be gone
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
    reads=("provision:teardown",),
    link=("canary: served chain → teardown",),
)
def test_teardown_left_nothing(subject: str, snapshot: Snapshot, evidence: Evidence) -> None:
    section = snapshot.provision.section
    evidence.provision(section, "run_id", "teardown.leftovers", "teardown.problems", "teardown.records")
    evidence.fix(f"aksid sweep --run-id {section.get('run_id')} with the same target options")
    leftovers = snapshot.provision.teardown("leftovers")
    problems = snapshot.provision.teardown("problems") or []
    assert not leftovers, f"{subject} left {', '.join(leftovers)} ({'; '.join(problems) or 'no delete failed'})"
    records = snapshot.provision.teardown("records")
    remaining = records.get("remaining") or []
    assert not (remaining and records.get("policy") == "sync"), (
        f"external-dns runs with --policy=sync but the canary's records are still in Azure DNS: {', '.join(remaining)}")
    # upsert-only (the tutorial's) never deletes: one record per target stays and is reused by every run
