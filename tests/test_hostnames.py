"""Host name matching (aksid.hostnames): RFC 6125 as TLS clients and ingress-nginx apply it, and its users.

The scenarios `benign-tls-wildcard-certificate` (green) and `tls-wildcard-for-subdomain` (TLS-002 red) run in
test_scenarios.py; here are the rule itself, the lookups the checks make with it, and the sandbox's wildcard
staging (`tls.leaf_host: '*.<domain>'`) and what it writes into the cluster.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aksid import hostnames
from aksid.sandbox.acme_client import _ChallengeRecord
from aksid.sandbox.edge import Held, prepare_base
from aksid.sandbox.scenario import ScenarioError, load_scenario

HOST = "hello.example.test"


@pytest.mark.parametrize("pattern, host, expected", [
    # exact names: case and the trailing dot of an absolute name do not matter
    ("hello.example.test", HOST, True),
    ("HELLO.Example.TEST.", HOST, True),
    ("hello.example.test", "hello.example.test.", True),
    ("other.example.test", HOST, False),
    ("example.test", HOST, False),
    # a wildcard covers exactly one left-most label...
    ("*.example.test", HOST, True),
    ("*.EXAMPLE.test.", "Hello.Example.Test", True),
    ("*.example.test", "a-b.example.test", True),
    # ...not the domain itself, not two labels, not another domain
    ("*.example.test", "example.test", False),
    ("*.example.test", "a.hello.example.test", False),
    ("*.sub.example.test", HOST, False),
    ("*.sub.example.test", "a.sub.example.test", True),
    ("*.other.test", HOST, False),
    ("*.example.test", "hello.example.testing", False),
    ("*.example.test", "helloexample.test", False),
    ("*.example.test", ".example.test", False),
    # the `*` only as the whole left-most label (no partial wildcard, none in the middle)
    ("h*.example.test", HOST, False),
    ("*llo.example.test", HOST, False),
    ("hello.*.test", HOST, False),
    ("*.*.test", HOST, False),
    ("**.example.test", HOST, False),
    # no wildcard directly over a single label (no CA issues *.test), nor a bare `*`
    ("*.test", "example.test", False),
    ("*", "test", False),
    ("*.", "test", False),
    # a host name never contains a wildcard: a pattern does not cover another pattern
    ("*.example.test", "*.example.test", True),  # the same spelling compares equal (a TLS entry listing it)
    ("*.example.test", "*.sub.example.test", False),
    # empty names cover nothing
    ("", HOST, False),
    (None, HOST, False),
    ("*.example.test", "", False),
])
def test_rfc6125_matching(pattern: Any, host: str, expected: bool) -> None:
    assert hostnames.matches(pattern, host) is expected


def test_exact_names_rank_before_wildcards() -> None:
    assert hostnames.strength("hello.example.test", HOST) == hostnames.EXACT
    assert hostnames.strength("*.example.test", HOST) == hostnames.WILDCARD
    assert hostnames.strength("*.sub.example.test", HOST) == hostnames.NONE
    assert hostnames.covering(["*.sub.example.test", "*.example.test", "example.test"], HOST) == ["*.example.test"]
    assert hostnames.covers(["example.test", "*.example.test"], HOST)
    assert not hostnames.covers(["example.test", "*.sub.example.test"], HOST)
    assert not hostnames.covers(None, HOST)


def ingress(name: str, rules: list[str], tls: list[tuple[list[str], str]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"namespace": "hello", "name": name},
            "spec": {"rules": [{"host": host} for host in rules],
                     "tls": [{"hosts": hosts, "secretName": secret} for hosts, secret in tls]}}


def test_the_demo_hosts_ingress_and_tls_entry_exact_before_wildcard() -> None:
    wildcard = ingress("wild", ["*.example.test"], [(["*.example.test"], "wildcard-tls")])
    exact = ingress("hello", [HOST], [([HOST], "tls-secret")])
    other = ingress("other", ["a.sub.example.test"], [(["*.sub.example.test"], "sub-tls")])
    assert hostnames.ingresses_for([wildcard, other, exact], HOST) == [exact, wildcard]
    assert hostnames.tls_entry_for([wildcard, other, exact], HOST) == (exact, exact["spec"]["tls"][0])
    assert hostnames.tls_entry_for([wildcard, other], HOST) == (wildcard, wildcard["spec"]["tls"][0])
    assert hostnames.tls_entry_for([other], HOST) is None  # *.sub.example.test is one label too deep
    # ingress-shim's usual wildcard: the rule names the host, the TLS entry the wildcard (or both)
    shim = ingress("hello", [HOST], [(["*.example.test"], "wildcard-tls")])
    both = ingress("hello", [HOST], [(["example.test", "*.example.test"], "wildcard-tls")])
    assert hostnames.tls_entry_for([shim], HOST) == (shim, shim["spec"]["tls"][0])
    assert hostnames.tls_entry_for([both], HOST) == (both, both["spec"]["tls"][0])
    # among equal matches the Ingress routing the host comes first (ingress-nginx takes its TLS from there)
    elsewhere = ingress("elsewhere", ["x.example.test"], [(["*.example.test"], "x-tls")])
    assert hostnames.tls_entry_for([elsewhere, shim], HOST) == (shim, shim["spec"]["tls"][0])
    # an entry without a secretName serves nothing
    assert hostnames.tls_entry_for([ingress("n", [HOST], [([HOST], "")])], HOST) is None


def test_certificate_names_are_dns_names_and_common_name() -> None:
    certificate = {"spec": {"dnsNames": ["*.example.test"], "commonName": "example.test"}}
    assert hostnames.certificate_names(certificate) == ["*.example.test", "example.test"]
    assert hostnames.covers(hostnames.certificate_names(certificate), HOST)
    assert hostnames.certificate_names(None) == []


# --- the sandbox's wildcard staging ----------------------------------------------------------------


def test_a_wildcard_is_proven_on_the_name_without_its_star() -> None:
    record = _ChallengeRecord("*.example.test", "example.test", [("127.0.0.1", 53)], {"name": "k", "secret": "c2VjcmV0"})
    assert record.name.to_text() == "_acme-challenge.example.test."
    plain = _ChallengeRecord(HOST, "example.test", [("127.0.0.1", 53)], {"name": "k", "secret": "c2VjcmV0"})
    assert plain.name.to_text() == "_acme-challenge.hello.example.test."


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.mark.parametrize("leaf_host", ["*.example.test", "*.sub.example.test", "other.example.test"])
def test_leaf_host_accepts_a_wildcard(tmp_path: Path, leaf_host: str) -> None:
    path = write(tmp_path / "mine.yaml", {"description": "d", "base": "healthy", "tls": {"leaf_host": leaf_host}})
    assert load_scenario(str(path)).tls == {"leaf_host": leaf_host}


@pytest.mark.parametrize("leaf_host", ["*", "*.test", "h*.example.test", "hello.*.example.test", "*.*.example.test"])
def test_leaf_host_refuses_what_no_ca_issues(tmp_path: Path, leaf_host: str) -> None:
    path = write(tmp_path / "mine.yaml", {"description": "d", "base": "healthy", "tls": {"leaf_host": leaf_host}})
    with pytest.raises(ScenarioError, match=r"tls.leaf_host must be a DNS name or a wildcard \*\.NAME"):
        load_scenario(str(path))


def self_signed(name: str) -> Held:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Held(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode())


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize("scenario, wildcard", [("benign-tls-wildcard-certificate", "*.example.test"),
                                                 ("tls-wildcard-for-subdomain", "*.sub.example.test")])
def test_the_wildcard_scenarios_tell_one_story(scenario: str, wildcard: str) -> None:
    """Ingress TLS hosts, Certificate dnsNames, Order and Secret agree with the leaf the sandbox issues and serves."""
    held = self_signed(wildcard)
    loaded = load_scenario(scenario, prepare_base=lambda base: prepare_base(base.kube_objects, HOST, held, "https://x/dir"))
    assert loaded.tls["leaf_host"] == wildcard
    objects = loaded.kube_objects
    demo = find(objects, "Ingress", "hello-kubernetes")
    found = hostnames.tls_entry_for([demo], HOST)
    assert found is not None and found[1]["secretName"] == "tls-secret"
    certificate = find(objects, "Certificate", "tls-secret")
    assert certificate["spec"]["dnsNames"] == [wildcard]
    order = find(objects, "Order", "tls-secret-1-2913576405")
    assert order["spec"]["dnsNames"] == [wildcard]
    authorization = order["status"]["authorizations"][0]
    assert (authorization["identifier"], authorization["wildcard"]) == (wildcard[2:], True)
    assert {c["type"] for c in authorization["challenges"]} == {"dns-01"}  # the only challenge for a wildcard
    secret = find(objects, "Secret", "tls-secret")
    assert base64.b64decode(secret["data"]["tls.crt"]).decode() == held.chain_pem
    assert secret["metadata"]["annotations"]["cert-manager.io/alt-names"] == wildcard
    if scenario.startswith("benign"):  # ingress-shim's: the TLS entry lists the wildcard, the Certificate is the Ingress's
        assert found[1]["hosts"] == [wildcard] and certificate["metadata"]["ownerReferences"][0]["kind"] == "Ingress"
    else:  # a hand-written Certificate ingress-shim leaves alone; the TLS entry names the host, so it is served for it
        assert found[1]["hosts"] == [HOST] and "ownerReferences" not in certificate["metadata"]
        assert not hostnames.covers(certificate["spec"]["dnsNames"], HOST)


def test_a_wildcard_ingress_tls_entry_is_found_by_prepare_base() -> None:
    """A base whose Ingress lists only the wildcard still gets what was issued (ingress-shim's setup as a base)."""
    held = self_signed("*.example.test")
    loaded = load_scenario("benign-tls-wildcard-certificate")
    objects = loaded.kube_objects
    prepare_base(objects, HOST, held, "https://x/dir")
    secret = find(objects, "Secret", "tls-secret")
    assert base64.b64decode(secret["data"]["tls.crt"]).decode() == held.chain_pem
