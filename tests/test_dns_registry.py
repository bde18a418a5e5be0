"""external-dns' registry options, read before DNS-004 judges its ownership record (aksid/external_dns.py).

The decryption against external-dns' own test vector (endpoint/crypto_test.go) and one built here; the record names
prefixes, suffixes and `%{record_type}` give; the collector's decryption with the key literal or in a Secret; the
sandbox's external-dns model writing what the args say; DNS-004 on replayed snapshots; and the benign scenarios run
with and without --aksid-read-secrets.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aksid import external_dns as edns
from aksid.sandbox.scenario import load_scenario

from .harness import aksid, evidence_not_in_snapshot, run_suites

HOST = "hello.example.test"
ZONE = "example.test"
SUB = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
ZONE_ID = f"/subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/{ZONE}"
OWNED = edns.ownership_text("external-dns", "ingress/hello/hello-kubernetes")
KEY = b"aksid-sandbox-txt-key-0123456789"

# external-dns' endpoint/crypto_test.go (TestEncrypt): its key, its plain text and the value it decrypts.
UPSTREAM_KEY = b"s%zF`.*'5`9.AhI2!B,.~hmbs^.*TL?;"
UPSTREAM_PLAIN = (
    "Lorem Ipsum is simply dummy text of the printing and typesetting industry. Lorem Ipsum has been the industry's "
    "standard dummy text ever since the 1500s, when an unknown printer took a galley of type and scrambled it to make a "
    "type specimen book. It has survived not only five centuries, but also the leap into electronic typesetting, "
    "remaining essentially unchanged. It was popularised in the 1960s with the release of Letraset sheets containing "
    "Lorem Ipsum passages, and more recently with desktop publishing software like Aldus PageMaker including versions "
    "of Lorem Ipsum.")
UPSTREAM_SEALED = (
    "0Mfzf6wsN8llrfX0ucDZ6nlc2+QiQfKKedjPPLu5atb2I35L9nUZeJcCnuLVW7CVW3K0h94vSuBLdXnMrj8Vcm0M09shxaoF48IcCpD03XtQbKXqk2hPb"
    "sW6+JybvplHIQGr16/PcjUSObGmR9yjf38+qEltApkKvrPjsyw43BX4eE10rL0Bln33UJD7/w+zazRDPFlAcbGtkt0ETKHnvyB3/aCddLipvrhjCXj2ZY/"
    "ktRF6h716kJRgXU10dCIQHFYU45MIdxI+k10HK3yZqhI2V0Gp2xjrFV/LRQ7/OS9SFee4asPWUYxbCEsnOzp8qc0dCPFSo1dtADzWnUZnsAcbnjtudT4m"
    "ilfLJc5CxDk1v3ykqQ/ajejwHjWQ7b8U6AsTErbezfdcqrb5IzkLgHb5TosnfrdDmNc9GcKfpsrCHbVY8KgNwMVdtwavLv7d9WM6sooUlZ3t0sABGkzag"
    "XQmPRvwLnkSOlie5XrnzWo8/8/4UByLga29CaXO")


# --- decryption --------------------------------------------------------------------------------------------------


def test_the_upstream_vector_decrypts_and_other_keys_or_plain_text_do_not() -> None:
    assert edns.decrypt(UPSTREAM_SEALED, UPSTREAM_KEY) == UPSTREAM_PLAIN
    assert edns.decrypt(f'"{UPSTREAM_SEALED}"', UPSTREAM_KEY) == UPSTREAM_PLAIN  # a TXT value comes quoted
    with pytest.raises(ValueError, match="not sealed with this key"):
        edns.decrypt(UPSTREAM_SEALED, b"s'J!jD`].LC?g&Oa11AgTub,j48ts/96")  # crypto_test.go's wrong key
    with pytest.raises(ValueError):
        edns.decrypt(UPSTREAM_PLAIN, UPSTREAM_KEY)
    with pytest.raises(ValueError, match="shorter than"):
        edns.decrypt(base64.b64encode(b"x" * 12).decode(), UPSTREAM_KEY)


def test_a_value_built_here_has_external_dns_layout_and_decrypts() -> None:
    nonce = bytes(range(12))
    sealed = edns.encrypt(OWNED, KEY, nonce)
    data = base64.b64decode(sealed, validate=True)
    assert data[:12] == nonce  # the nonce in front, then ciphertext and the 16-byte tag
    compressed = AESGCM(KEY).decrypt(data[:12], data[12:], None)  # independent of aksid's decrypt
    assert compressed[:2] == b"\x1f\x8b" and gzip.decompress(compressed).decode() == OWNED
    assert edns.decrypt(f'"{sealed}"', KEY) == OWNED
    assert edns.encrypt(OWNED, KEY, nonce) == sealed  # a fixed nonce gives the same value (external-dns keeps one)
    assert edns.encrypt(OWNED, KEY) != edns.encrypt(OWNED, KEY)  # a random one otherwise


def test_the_key_is_32_bytes_plain_or_base64() -> None:
    assert edns.aes_key(KEY.decode()) == KEY
    assert edns.aes_key(base64.b64encode(KEY).decode()) == KEY
    with pytest.raises(ValueError, match="neither 32 bytes"):
        edns.aes_key("too-short")


# --- names and options --------------------------------------------------------------------------------------------


def registry(*args: str, env: list[dict[str, Any]] | None = None, name: str = "external-dns",
             namespace: str = "kube-addons") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "external-dns", "image": "registry.k8s.io/external-dns/external-dns:v0.15.0",
                                 "args": ["--provider=azure", "--source=ingress", *args]}
    if env:
        container["env"] = env
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [container]}}}}


@pytest.mark.parametrize("args, names", [
    ((), ["a-hello.example.test", "cname-hello.example.test", "hello.example.test"]),
    (("--txt-prefix=extdns-",), ["extdns-a-hello.example.test", "extdns-cname-hello.example.test",
                                 "extdns-hello.example.test"]),
    (("--txt-prefix", "txt."), ["txt.a-hello.example.test", "txt.cname-hello.example.test", "txt.hello.example.test"]),
    (("--txt-suffix=-own",), ["a-hello-own.example.test", "cname-hello-own.example.test", "hello-own.example.test"]),
    (("--txt-prefix=%{record_type}-own-",), ["a-own-hello.example.test", "cname-own-hello.example.test",
                                             "-own-hello.example.test"]),
    (("--txt-suffix=.%{record_type}",), ["hello.a.example.test", "hello.cname.example.test"]),
    (("--txt-prefix=EXT-",), ["ext-a-hello.example.test", "ext-cname-hello.example.test", "ext-hello.example.test"]),
])
def test_ownership_names_follow_the_prefix_suffix_and_record_type(args: tuple[str, ...], names: list[str]) -> None:
    assert edns.ownership_names(HOST, edns.registry_of(registry(*args))) == names


def test_options_come_from_args_then_environment() -> None:
    from_env = edns.registry_of(registry(env=[{"name": "EXTERNAL_DNS_TXT_OWNER_ID", "value": "blue"},
                                              {"name": "EXTERNAL_DNS_TXT_PREFIX", "value": "p-"},
                                              {"name": "EXTERNAL_DNS_TXT_ENCRYPT_ENABLED", "value": "true"},
                                              {"name": "EXTERNAL_DNS_REGISTRY", "value": "dynamodb"}]))
    assert (from_env.owner, from_env.prefix, from_env.encrypted, from_env.registry) == ("blue", "p-", True, "dynamodb")
    args_win = edns.registry_of(registry("--txt-owner-id=green", "--no-txt-encrypt-enabled",
                                         env=[{"name": "EXTERNAL_DNS_TXT_OWNER_ID", "value": "blue"},
                                              {"name": "EXTERNAL_DNS_TXT_ENCRYPT_ENABLED", "value": "true"}]))
    assert (args_win.owner, args_win.encrypted) == ("green", False)
    defaults = edns.registry_of(registry())
    assert (defaults.owner, defaults.registry, defaults.encrypted, defaults.sources) == ("default", "txt", False,
                                                                                         ("ingress",))


def test_external_dns_is_found_by_name_image_or_provider() -> None:
    plain = {"metadata": {"name": "dns-sync", "namespace": "ops"},
             "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "corp/sync:1"}]}}}}
    assert not edns.is_external_dns(plain)
    assert edns.is_external_dns({**plain, "metadata": {"name": "externaldns", "namespace": "ops"}})
    by_flag = copy.deepcopy(plain)
    by_flag["spec"]["template"]["spec"]["containers"][0]["args"] = ["--provider=azure"]
    assert edns.is_external_dns(by_flag)


@pytest.mark.parametrize("filters, name, matches", [
    ((), "hello.example.test", True),
    (("example.test",), "example.test", True),
    (("example.test",), "hello.example.test", True),
    (("example.test.",), "HELLO.example.test.", True),
    (("example.test",), "hello.badexample.test", False),
    ((".example.test",), "example.test", False),
    ((".example.test",), "hello.example.test", True),
    (("other.test", "example.test"), "hello.example.test", True),
])
def test_domain_filter_matches_by_suffix(filters: tuple[str, ...], name: str, matches: bool) -> None:
    assert edns.domain_matches(filters, name) is matches


# --- the collector's decryption ---------------------------------------------------------------------------------


def txt_record_set(name: str, *values: str) -> dict[str, Any]:
    return {"id": f"{ZONE_ID}/TXT/{name}", "name": name, "type": "Microsoft.Network/dnszones/TXT",
            "properties": {"TXTRecords": [{"value": [value]} for value in values]}}


def decrypted(deployment: dict[str, Any], read_secrets: bool, *secrets: dict[str, Any],
              record_sets: list[dict[str, Any]]) -> dict[str, Any]:
    decryption = edns.OwnershipDecryption(read_secrets)
    for secret in secrets:
        decryption.see("Secret", secret)
    decryption.see("Deployment", deployment)
    return decryption.entry({"recordSets": {"status": "ok", "value": record_sets}})["value"]


def secret(name: str, **data: bytes) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "kube-addons"},
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()}}


def test_the_collector_decrypts_with_a_literal_key_without_reading_secrets() -> None:
    sealed = f'"{edns.encrypt(OWNED, KEY)}"'
    record_sets = [txt_record_set("a-hello", sealed), txt_record_set("plain", f'"{OWNED}"')]
    value = decrypted(registry("--txt-encrypt-enabled", f"--txt-encrypt-aes-key={KEY.decode()}"), False,
                      record_sets=record_sets)
    assert value["keys"] == {"kube-addons/external-dns": {"key": "--txt-encrypt-aes-key in its args", "readable": True,
                                                          "reason": None}}
    assert value["records"] == [{"id": f"{ZONE_ID}/TXT/a-hello", "deployment": "kube-addons/external-dns",
                                 "decrypted": [OWNED]}]  # the plain record needs no decryption
    other_key = decrypted(registry("--txt-encrypt-enabled", f"--txt-encrypt-aes-key={base64.b64encode(b'k' * 32).decode()}"),
                          False, record_sets=record_sets)
    assert other_key["records"][0]["decrypted"] == [None]  # sealed, but not with this key
    assert "aksid-sandbox" not in json.dumps([value, other_key])  # the key itself never goes into the snapshot


def test_the_collector_reads_a_key_in_a_secret_only_with_read_secrets() -> None:
    sealed = f'"{edns.encrypt(OWNED, KEY)}"'
    env = [{"name": edns.KEY_ENV, "valueFrom": {"secretKeyRef": {"name": "txt-key", "key": "aes"}}}]
    deployment = registry("--txt-encrypt-enabled", env=env)
    unread = decrypted(deployment, False, record_sets=[txt_record_set("a-hello", sealed)])
    assert unread["keys"]["kube-addons/external-dns"] == {
        "key": "Secret kube-addons/txt-key (key aes)", "readable": False,
        "reason": "Secret kube-addons/txt-key is not read without --aksid-read-secrets"}
    assert unread["records"] == []
    read = decrypted(deployment, True, secret("txt-key", aes=KEY), record_sets=[txt_record_set("a-hello", sealed)])
    assert read["records"][0]["decrypted"] == [OWNED]
    missing = decrypted(deployment, True, secret("txt-key", other=KEY), record_sets=[txt_record_set("a-hello", sealed)])
    assert "holds no key aes" in missing["keys"]["kube-addons/external-dns"]["reason"]
    from_env_from = registry("--txt-encrypt-enabled")
    from_env_from["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "edns-env"}}]
    assert decrypted(from_env_from, True, secret("edns-env", EXTERNAL_DNS_TXT_ENCRYPT_AES_KEY=base64.b64encode(KEY)),
                     record_sets=[txt_record_set("a-hello", sealed)])["records"][0]["decrypted"] == [OWNED]


# --- the sandbox's external-dns model ---------------------------------------------------------------------------


def model_world(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    from aksid.sandbox.armapi import ArmStore
    from aksid.sandbox.controllers import rfc2136
    from aksid.sandbox.controllers.world import Endpoints, World
    from aksid.sandbox.kubeapi import KubeStore

    scenario = load_scenario(name)
    objects = copy.deepcopy(scenario.kube_objects)
    for obj in objects:
        if obj.get("kind") == "Deployment" and obj["metadata"]["name"] == "external-dns" and args:
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["args"] = [a for a in container["args"] if not a.startswith(("--source", "--domain-filter"))] + list(args)
    world = World(KubeStore(objects), ArmStore(scenario.azure_resources), tmp_path, None)
    world.endpoints = Endpoints(ZONE, [], {}, {}, None)
    monkeypatch.setattr(rfc2136, "replace", lambda *a, **k: None)  # no knot here: the ARM side is what is judged
    return world


def canary(host: str = "aksid-canary.example.test", name: str = "canary") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": "aksid-r1"},
            "spec": {"rules": [{"host": host}]}, "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.80"}]}}}


def txt_of(world: Any, name: str) -> list[str] | None:
    found = next((r for r in world.arm.resources() if str(r.get("id", "")).lower() == f"{ZONE_ID}/TXT/{name}".lower()), None)
    return None if found is None else edns.txt_values(found)


def a_names(world: Any) -> set[str]:
    return {r["name"] for r in world.arm.resources() if str(r.get("type", "")).endswith("/A")}


def test_the_model_writes_prefixed_and_encrypted_ownership_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aksid.sandbox.controllers import external_dns

    world = model_world("benign-external-dns-txt-prefix", tmp_path, monkeypatch)
    external_dns.reconcile(world, [canary()], [])
    resource = "ingress/aksid-r1/canary"
    assert txt_of(world, "extdns-a-aksid-canary") == [f'"{edns.ownership_text("external-dns", resource)}"']
    assert txt_of(world, "extdns-aksid-canary") is not None and txt_of(world, "a-aksid-canary") is None

    world = model_world("benign-external-dns-txt-encrypted", tmp_path, monkeypatch)
    external_dns.reconcile(world, [canary()], [])
    (value,) = txt_of(world, "a-aksid-canary") or []
    assert "heritage" not in value and edns.decrypt(value, KEY) == edns.ownership_text("external-dns", resource)


def test_the_model_matches_the_domain_filter_by_suffix_and_honours_source(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from aksid.sandbox.controllers import external_dns

    world = model_world("healthy", tmp_path, monkeypatch, "--source=ingress", "--domain-filter=aksid-canary.example.test")
    external_dns.reconcile(world, [canary(), canary("other.example.test", "other")], [])
    assert "aksid-canary" in a_names(world) and "other" not in a_names(world)  # the filter's host, not its siblings

    world = model_world("healthy", tmp_path, monkeypatch, "--source=service", "--domain-filter=example.test")
    external_dns.reconcile(world, [canary()], [])
    assert "aksid-canary" not in a_names(world)  # no ingress source: Ingresses are not published
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "svc", "namespace": "aksid-r1", "annotations": {external_dns.HOSTNAME_ANNOTATION: "svc.example.test"}},
        "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.81"}]}}}
    external_dns.reconcile(world, [], [], [service])
    assert "svc" in a_names(world) and txt_of(world, "a-svc") is not None


# --- DNS-004 on replayed snapshots ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encrypted_snapshot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reports = tmp_path_factory.mktemp("encrypted")
    run = aksid("demo", "--scenario", "benign-external-dns-txt-encrypted", "--reports-dir", str(reports), "--",
                "--aksid-read-secrets", reports=reports)
    assert run.code == 0, run.stdout + run.stderr
    return json.loads((reports / "snapshot.json").read_text(encoding="utf-8"))


def dns_004(document: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    run = run_suites("--aksid-replay", str(path), reports=tmp_path / "reports")
    assert "Traceback" not in run.stdout + run.stderr
    return next(c for c in run.results["checks"] if c["id"] == "DNS-004")


def external_dns_container(document: dict[str, Any]) -> dict[str, Any]:
    deployment = next(d for d in document["kube"]["apps/v1/Deployment"]["value"] if d["metadata"]["name"] == "external-dns")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_replayed_encrypted_records_are_judged_by_what_was_decrypted(encrypted_snapshot: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    assert dns_004(encrypted_snapshot, tmp_path)["outcome"] == "passed"
    older = copy.deepcopy(encrypted_snapshot)
    del older["decrypted"]  # a snapshot from before aksid decrypted: not a finding
    skipped = dns_004(older, tmp_path)
    assert skipped["outcome"] == "skipped" and "encrypted (--txt-encrypt-enabled)" in skipped["message"]
    other_key = copy.deepcopy(encrypted_snapshot)
    for record in other_key["decrypted"]["externalDnsOwnership"]["value"]["records"]:
        record["decrypted"] = [None]  # sealed with another key than the one external-dns is given
    failed = dns_004(other_key, tmp_path)
    assert failed["outcome"] == "failed" and "does not decrypt with the AES key" in failed["message"], failed


def test_a_registry_without_txt_records_is_skipped_naming_it(encrypted_snapshot: dict[str, Any], tmp_path: Path) -> None:
    document = copy.deepcopy(encrypted_snapshot)
    container = external_dns_container(document)
    container["args"] = [a for a in container["args"] if not a.startswith("--registry")] + ["--registry=dynamodb"]
    result = dns_004(document, tmp_path)
    assert result["outcome"] == "skipped" and "--registry=dynamodb" in result["message"], result


def test_external_dns_elsewhere_under_another_name_is_found(encrypted_snapshot: dict[str, Any], tmp_path: Path) -> None:
    document = copy.deepcopy(encrypted_snapshot)
    deployment = next(d for d in document["kube"]["apps/v1/Deployment"]["value"] if d["metadata"]["name"] == "external-dns")
    deployment["metadata"].update(name="externaldns", namespace="dns-system")
    deployment["metadata"]["labels"] = {}
    for record in document["decrypted"]["externalDnsOwnership"]["value"]["records"]:
        record["deployment"] = "dns-system/externaldns"
    keys = document["decrypted"]["externalDnsOwnership"]["value"]["keys"]
    keys["dns-system/externaldns"] = keys.pop("kube-addons/external-dns")
    result = dns_004(document, tmp_path)
    assert result["outcome"] == "passed", result
    assert any("dns-system/externaldns" in item.get("source", "") for item in result["evidence"])


# --- the benign scenarios, with and without Secrets ---------------------------------------------------------------


@pytest.mark.parametrize("name, read_secrets, outcome", [
    ("benign-external-dns-txt-prefix", False, "passed"),
    ("benign-external-dns-txt-encrypted", False, "skipped"),
    ("benign-external-dns-txt-encrypted", True, "passed"),
])
def test_benign_registry_scenarios(name: str, read_secrets: bool, outcome: str, tmp_path: Path) -> None:
    extra = ["--", "--aksid-read-secrets"] if read_secrets else []
    run = aksid("demo", "--scenario", name, "--reports-dir", str(tmp_path), *extra, reports=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert not run.ids_with("failed") and not run.ids_with("error"), run.stdout
    (result,) = [c for c in run.results["checks"] if c["id"] == "DNS-004"]
    assert result["outcome"] == outcome, result
    if outcome == "skipped":
        assert "encrypted (--txt-encrypt-enabled)" in result["message"]
        assert "Secret kube-addons/external-dns-txt-key is not read without --aksid-read-secrets" in result["message"]
    assert evidence_not_in_snapshot(run) == []
    snapshot = (tmp_path / "snapshot.json").read_text(encoding="utf-8")
    assert KEY.decode() not in snapshot and base64.b64encode(KEY).decode() not in snapshot
