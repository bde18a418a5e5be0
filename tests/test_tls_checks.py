"""TLS evidence wired end to end: settings, the scenario `tls:` key, pebble + nginx in the sandbox, TLS-001..004.

The scenarios themselves (red and benign) run in test_scenarios.py; here are the cases a scenario file cannot
express: the public store really being the one judged (a replay with Mozilla's), processes started and stopped
by PID, a missing pebble, the loopback guard, and evidence shapes replayed from an edited snapshot.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import aksid.sandbox.pebble as sandbox_pebble
from aksid.collect.tls import collect_tls
from aksid.config import ConfigError, resolve_target
from aksid.sandbox.edge import Held, prepare_base, translate_acme_urls
from aksid.sandbox.processes import processes_under  # live processes whose command line or cwd is under a directory
from aksid.sandbox.runtime import SandboxError, down, up
from aksid.sandbox.scenario import ScenarioError, load_scenario

from .harness import run_suites

SUB = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
REQUIRED = {"AZ_DNS_DOMAIN": "example.test", "AZ_RESOURCE_GROUP": "rg", "AZ_AKS_CLUSTER_NAME": "a", "AZ_SUBSCRIPTION_ID": SUB}
HOST = "hello.example.test"
TRUST = ("TLS-001", f"host/{HOST}")
SUBJECTS = {TRUST, ("TLS-002", f"host/{HOST}"), ("TLS-003", f"host/{HOST}"),
            ("TLS-004", "protocols"), ("TLS-004", "http-redirect"), ("TLS-004", "page")}


def tls_results(run: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["id"], c["subject"]): c for c in run.results["checks"] if c["id"].startswith("TLS-")}


# --- settings -----------------------------------------------------------------------------------


def test_profile_tls_section_and_its_defaults(tmp_path: Path) -> None:
    (tmp_path / "roots.pem").write_bytes(Path(certifi.where()).read_bytes())  # a PEM bundle: checked when resolved
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"tls": {"trust_store": "roots.pem", "address": "127.0.0.80", "https_port": 8443,
                                               "http_port": 8080, "min_days": 30, "timeout": 1.5}}))
    target = resolve_target(profile=profile, environ=REQUIRED)
    assert target.trust_store == str(tmp_path / "roots.pem")  # relative to the profile
    assert (target.tls_address, target.tls_https_port_number, target.tls_http_port_number) == ("127.0.0.80", 8443, 8080)
    assert (target.tls_min_days_count, target.tls_timeout_seconds) == (30, 1.5)
    assert target.sources["trust_store"] == f"profile {profile} (tls.trust_store)"
    plain = resolve_target(environ=REQUIRED)
    assert plain.trust_store is None and plain.tls_address is None  # Mozilla's store; the A record
    assert (plain.tls_https_port_number, plain.tls_http_port_number, plain.tls_min_days_count) == (443, 80, 14)
    emptied = resolve_target(profile=profile, environ=REQUIRED, overrides=["trust_store=", "tls_min_days="])
    assert emptied.trust_store is None and emptied.tls_min_days_count == 14
    assert emptied.sources["tls_min_days"] == "default (emptied by command line (--aksid-set tls_min_days))"


@pytest.mark.parametrize("variables, phrase", [
    ({"AKSID_TRUST_STORE": "/nonexistent/roots.pem"}, "trust_store '/nonexistent/roots.pem' from environment"),
    ({"AKSID_TLS_HTTPS_PORT": "70000"}, "tls_https_port '70000' from environment (AKSID_TLS_HTTPS_PORT) is not a TCP port"),
    ({"AKSID_TLS_MIN_DAYS": "two"}, "tls_min_days 'two' from environment (AKSID_TLS_MIN_DAYS) is not a whole number"),
    ({"AKSID_TLS_ADDRESS": "hello.example.test"}, "tls_address 'hello.example.test' from environment"),
])
def test_bad_tls_settings_name_the_field(variables: dict[str, str], phrase: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_target(environ={**REQUIRED, **variables})
    assert phrase in str(caught.value)


def test_loopback_only_refuses_a_tls_address_outside_the_sandbox() -> None:
    environ = {**REQUIRED, "AKSID_NETWORK": "loopback-only", "AKSID_ARM_ENDPOINT": "https://127.0.0.1:1",
               "AKSID_TLS_ADDRESS": "192.0.2.80"}
    with pytest.raises(ConfigError, match="tls_address '192.0.2.80' from environment .* is outside the sandbox"):
        resolve_target(environ=environ)


def test_collect_tls_never_connects_outside_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connection(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    entries = collect_tls(HOST, "192.0.2.80", https_port=443, http_port=80, loopback_only=True, timeout=1)
    assert set(entries) == {"handshake", "legacy", "http", "page"}
    assert all(e["status"] == "error" and "192.0.2.80" in e["reason"] and "outside the sandbox" in e["reason"]
               for e in entries.values()), entries


# --- the scenario `tls:` key --------------------------------------------------------------------


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.mark.parametrize("tls, phrase", [
    ({"expird_leaf": True}, "unknown key(s) tls.expird_leaf"),
    ({"issuer": "production"}, "tls.issuer must be one of prod, staging"),
    ({"tls10": "yes"}, "tls.tls10 must be true or false"),
    ({"page": "blank"}, "tls.page must be one of"),
    ({"leaf_host": "not a name"}, "tls.leaf_host must be a DNS name"),
    (["issuer"], "'tls' must be a mapping"),
])
def test_a_malformed_tls_key_is_a_scenario_error_naming_the_file(tmp_path: Path, tls: Any, phrase: str) -> None:
    path = write(tmp_path / "mine.yaml", {"description": "d", "base": "healthy", "tls": tls})
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    assert str(path) in str(caught.value) and phrase in str(caught.value)


def test_a_patch_merges_its_tls_staging_over_its_base(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", {"description": "d", "base": "healthy", "tls": {"issuer": "staging", "tls10": True}})
    patch = write(tmp_path / "patch.yaml", {"description": "d", "base": "base.yaml", "tls": {"issuer": None, "page": "other"}})
    assert load_scenario(str(patch)).tls == {"tls10": True, "page": "other"}
    assert load_scenario("healthy").tls == {}


# --- what the sandbox writes into the cluster -----------------------------------------------------


def self_signed(host: str, not_before: dt.datetime, days: int) -> Held:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before)
            .not_valid_after(not_before + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Held(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode())


def kube_object(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_what_was_issued_goes_into_the_base_and_explicit_patches_keep_their_values() -> None:
    start = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
    held = self_signed(HOST, start, 90)
    directory = "https://127.0.0.1:20001/dir"

    def prepared(name: str) -> list[dict[str, Any]]:
        return load_scenario(name, prepare_base=lambda base: prepare_base(base.kube_objects, HOST, held, directory)).kube_objects

    healthy = prepared("healthy")
    status = kube_object(healthy, "Certificate", "tls-secret")["status"]
    assert (status["notBefore"], status["notAfter"], status["renewalTime"]) == (
        "2026-11-29T03:00:00Z", "2027-02-27T03:00:00Z", "2027-01-28T03:00:00Z")  # renewal two thirds in
    assert base64.b64decode(kube_object(healthy, "CertificateRequest", "tls-secret-1")["status"]["certificate"]).decode() == (
        held.chain_pem)
    secret = kube_object(healthy, "Secret", "tls-secret")
    assert base64.b64decode(secret["data"]["tls.crt"]).decode() == held.chain_pem
    assert base64.b64decode(secret["data"]["tls.key"]).decode() == held.key_pem
    order = kube_object(healthy, "Order", "tls-secret-1-2913576405")["status"]
    assert order["url"].startswith("https://127.0.0.1:20001/acme/order/")  # placed on the CA that issued it
    # the scenario's explicit Certificate times win over what the sandbox issued
    overdue = kube_object(prepared("iss-certificate-renewal-overdue"), "Certificate", "tls-secret")["status"]
    assert (overdue["notBefore"], overdue["notAfter"], overdue["renewalTime"]) == (
        "2026-09-01T08:14:05Z", "2026-11-30T08:14:04Z", "2026-10-31T08:14:04Z")


def test_lets_encrypt_urls_become_the_pebbles_after_the_patches() -> None:
    directories = {"prod": "https://127.0.0.1:20001/dir", "staging": "https://127.0.0.1:20002/dir"}
    for name, expected in (("healthy", directories["prod"]), ("iss-prod-issuer-uses-staging-server", directories["staging"])):
        objects = load_scenario(name).kube_objects
        translate_acme_urls(objects, directories)
        issuer = kube_object(objects, "ClusterIssuer", "letsencrypt-prod")
        assert issuer["spec"]["acme"]["server"] == expected
        # the account was registered with production (the scenario patches only the server)
        assert issuer["status"]["acme"]["uri"] == "https://127.0.0.1:20001/acme/acct/2284157913"
        staging = kube_object(objects, "ClusterIssuer", "letsencrypt-staging")
        assert staging["spec"]["acme"]["server"] == directories["staging"]


# --- pebble and nginx in the sandbox --------------------------------------------------------------


def test_up_records_pebble_and_nginx_pids_and_down_leaves_no_process(tmp_path: Path) -> None:
    state = (tmp_path / "state").resolve()
    sandbox = up("healthy", state)
    try:
        pids = json.loads((state / "pids.json").read_text())
        assert {"pebble-prod", "pebble-staging", "nginx"} <= set(pids)
        for name in ("pebble-prod", "pebble-staging", "nginx"):
            assert Path(os.readlink(f"/proc/{pids[name]}/cwd")).is_relative_to(state), name
        profile = yaml.safe_load(sandbox.profile.read_text())
        assert profile["tls"]["trust_store"] == "public-roots.pem"
        roots = x509.load_pem_x509_certificates((state / "public-roots.pem").read_bytes())
        assert len(roots) == 2  # the prod pebble's root and its alternate root: nothing of staging
        assert profile["target"]["acme_prod_server"].startswith("https://127.0.0.1:")
        with socket.create_connection(("127.0.0.80", profile["tls"]["http_port"]), timeout=2):
            pass  # nginx listens on the load balancer address
        started = processes_under(state)
        assert set(pids.values()) <= set(started) and len(started) > len(pids)  # nginx's worker too
    finally:
        stopped = down(state)
    assert sorted(stopped) == sorted(pids.values())
    assert processes_under(state) == []
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_missing_pebble_is_a_sandbox_error_naming_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = sandbox_pebble.shutil.which
    monkeypatch.setattr(sandbox_pebble.shutil, "which",
                        lambda name, *args, **kwargs: None if name == "pebble" else real_which(name, *args, **kwargs))
    state = (tmp_path / "state").resolve()
    with pytest.raises(SandboxError, match="pebble is not installed: apt-get install pebble"):
        up("healthy", state)
    assert not (state / "pids.json").exists()
    assert processes_under(state) == []  # the knotd that had started were stopped


# --- the checks against the healthy sandbox, then replayed ------------------------------------------


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A live run against the healthy sandbox, kept up for the module: (state dir, snapshot)."""
    root = tmp_path_factory.mktemp("tls-healthy")
    up("healthy", root / "state")
    try:
        run = run_suites("--aksid-profile", str(root / "state" / "profile.yaml"), reports=root / "reports")
        assert run.code == 0, run.stdout + run.stderr
        results = tls_results(run)
        assert set(results) == SUBJECTS
        assert all(c["outcome"] == "passed" for c in results.values()), results
        yield root / "state", json.loads((root / "reports" / "snapshot.json").read_text())
    finally:
        down(root / "state")


def test_healthy_is_checked_over_a_real_handshake_with_nginx(healthy: tuple[Path, dict[str, Any]]) -> None:
    state, snapshot = healthy
    profile = yaml.safe_load((state / "profile.yaml").read_text())
    handshake = snapshot["tls"]["handshake"]["value"]
    assert (handshake["address"], handshake["port"]) == ("127.0.0.80", profile["tls"]["https_port"])
    assert handshake["protocol"] == "TLSv1.3" and len(handshake["chain"]) == 2
    served = x509.load_pem_x509_certificate(handshake["chain"][0].encode())
    issued = x509.load_pem_x509_certificates(base64.b64decode(
        next(r for r in snapshot["kube"]["cert-manager.io/v1/CertificateRequest"]["value"]
             if r["metadata"]["name"] == "tls-secret-1")["status"]["certificate"]))
    assert served == issued[0]
    assert snapshot["tls"]["legacy"]["value"] == {"TLSv1": False, "TLSv1.1": False}
    assert snapshot["tls"]["http"]["value"]["status"] == 308
    assert "PRIVATE KEY" not in json.dumps(snapshot)


def replay(document: dict[str, Any], tmp_path: Path, *args: str) -> Any:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    run = run_suites("--aksid-replay", str(path), *args, reports=tmp_path / "reports")
    assert "Traceback" not in run.stdout + run.stderr
    return run


def test_the_public_store_is_really_used(healthy: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The sandbox's chain, re-judged with Mozilla's store (certifi): its pebble root is in no public store."""
    _, snapshot = healthy
    run = replay(snapshot, tmp_path, "--aksid-set", "trust_store=")
    results = tls_results(run)
    trust = results.pop(TRUST)
    assert trust["outcome"] == "failed"
    assert "the trust store Mozilla (certifi" in trust["message"] and "ends at 'CN=Pebble Root CA" in trust["message"]
    assert "staging" not in trust["message"]  # a production chain of an unknown CA: no staging hint
    assert {c["outcome"] for c in results.values()} == {"passed"}, results
    assert run.results["target"]["trust_store"] is None


def test_minimum_remaining_lifetime_is_a_setting(healthy: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    _, snapshot = healthy
    results = tls_results(replay(snapshot, tmp_path, "--aksid-set", "tls_min_days=100"))
    lifetime = results[("TLS-002", f"host/{HOST}")]
    assert lifetime["outcome"] == "failed" and "less than the required 100 (tls_min_days)" in lifetime["message"]


def test_a_bad_override_in_replay_is_a_usage_error(healthy: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    _, snapshot = healthy
    run = replay(snapshot, tmp_path, "--aksid-set", "tls_min_days=soon")
    assert run.code == 4 and "tls_min_days 'soon' from command line (--aksid-set tls_min_days)" in run.stderr


def staging_chain(host: str) -> list[str]:
    """A chain shaped like Let's Encrypt staging's: '(STAGING)' root and intermediate."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    names = [x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
             for cn in ("(STAGING) Pretend Pear X1", "(STAGING) Ersatz Edamame E1", host)]
    now = dt.datetime.now(dt.UTC)
    certs = []
    for index, (subject, key) in enumerate(zip(names, keys, strict=True)):
        issuer_index = max(index - 1, 0)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(names[issuer_index])
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=80))
                   .add_extension(x509.BasicConstraints(ca=index < 2, path_length=None), critical=True))
        if index == 2:
            builder = (builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        certs.append(builder.sign(keys[issuer_index], hashes.SHA256()))
    return [cert.public_bytes(serialization.Encoding.PEM).decode() for cert in reversed(certs[1:])]


def test_a_lets_encrypt_staging_chain_gets_the_hint(healthy: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    _, snapshot = healthy
    document = copy.deepcopy(snapshot)
    document["tls"]["handshake"]["value"]["chain"] = staging_chain(HOST)
    trust = tls_results(replay(document, tmp_path))[TRUST]
    assert trust["outcome"] == "failed"
    assert "ends at '(STAGING) Pretend Pear X1'" in trust["message"].replace("CN=", "")
    assert "switch ACME_ISSUER to letsencrypt-prod" in trust["message"]


def test_a_snapshot_without_tls_evidence_is_an_error_not_a_pass(healthy: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    _, snapshot = healthy
    document = copy.deepcopy(snapshot)
    del document["tls"]  # a snapshot saved before TLS evidence existed
    results = tls_results(replay(document, tmp_path))
    assert set(results) == SUBJECTS
    assert all(c["outcome"] == "error" and "no TLS evidence" in c["message"] for c in results.values()), results


def test_a_demo_host_gone_mid_run_is_an_error_with_the_cause(sandbox_for: Any, tmp_path: Path) -> None:
    sandbox = sandbox_for("healthy")
    nginx = json.loads((sandbox.state_dir / "pids.json").read_text())["nginx"]
    os.kill(nginx, signal.SIGTERM)  # its fast shutdown: the workers go with it (a KILLed master would leave them)
    deadline = time.monotonic() + 5
    while processes_under(sandbox.state_dir / "web") and time.monotonic() < deadline:
        time.sleep(0.05)
    run = run_suites("--aksid-profile", str(sandbox.profile), reports=tmp_path)
    assert run.code == 1, run.stdout + run.stderr
    results = tls_results(run)
    assert all(c["outcome"] == "error" and "connection refused" in c["message"] for c in results.values()), results
    assert run.ids_with("failed") == set(), run.stdout
    assert "could not collect tls" in run.stdout
