"""Target resolution: precedence, the tutorial's env.sh, and one-sentence usage errors (exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aksid.config import ConfigError, identity_name_for, resolve_target
from aksid.envfile import parse_env_file

from .harness import clean_env, run_suites

SUB = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
ENV_SH = f"""\
#!/usr/bin/env bash
# the tutorial's env.sh
export AZ_RESOURCE_GROUP="blog-rg"
export AZ_DNS_RESOURCE_GROUP=${{AZ_RESOURCE_GROUP}}-dns
export AZ_AKS_CLUSTER_NAME='hello-aks'
export AZ_DNS_DOMAIN="example.com"   # the zone
export AZ_SUBSCRIPTION_ID={SUB}
export AZ_TENANT_ID=$(az account show --query tenantId -o tsv)
export ACME_ISSUER=letsencrypt-staging
export ACME_ISSUER_EMAIL="me@example.com"
"""


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "env.sh"
    path.write_text(ENV_SH, encoding="utf-8")
    return path


def test_env_file_is_parsed_without_running_it(env_file: Path) -> None:
    values = parse_env_file(env_file)
    assert values["AZ_DNS_RESOURCE_GROUP"] == "blog-rg-dns"
    assert values["AZ_DNS_DOMAIN"] == "example.com"
    assert "AZ_TENANT_ID" not in values  # a command substitution is never executed


def test_older_single_resource_group_is_the_fallback_for_both(env_file: Path) -> None:
    target = resolve_target(env_file=env_file, environ={})
    assert target.aks_resource_group == "blog-rg"
    assert target.dns_resource_group == "blog-rg-dns"
    assert target.identity_name == "example-com-identity" == identity_name_for("example.com")
    assert target.demo_fqdn == "hello.example.com"
    assert target.addon_namespace == "kube-addons"
    assert target.sources["acme_issuer"].startswith(f"env file {env_file}")


def test_precedence_profile_then_env_file_then_environment_then_command_line(env_file: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text("target:\n  domain: from-profile.com\n  cluster_name: profile-aks\n  demo_host: web\n")
    target = resolve_target(
        profile=profile, env_file=env_file,
        environ={"AZ_AKS_CLUSTER_NAME": "env-aks"}, overrides=["acme_issuer=letsencrypt-prod"],
    )
    assert target.domain == "example.com"  # env file beats profile
    assert target.demo_host == "web"  # only the profile sets it
    assert target.cluster_name == "env-aks"  # environment beats env file
    assert target.acme_issuer == "letsencrypt-prod"  # command line beats everything
    assert target.sources["acme_issuer"] == "command line (--aksid-set acme_issuer)"
    assert target.sources["demo_host"] == f"profile {profile} (target.demo_host)"


def test_current_subscription_comes_from_the_azure_cli_profile(tmp_path: Path) -> None:
    (tmp_path / "azureProfile.json").write_text(
        json.dumps({"subscriptions": [{"id": SUB, "isDefault": True}]}), encoding="utf-8-sig")
    environ = {"AZURE_CONFIG_DIR": str(tmp_path), "AZ_DNS_DOMAIN": "example.com", "AZ_RESOURCE_GROUP": "rg",
               "AZ_AKS_CLUSTER_NAME": "aks"}
    target = resolve_target(environ=environ)
    assert target.subscription_id == SUB
    assert "Azure CLI" in target.sources["subscription_id"]


@pytest.mark.parametrize(
    ("environ", "phrase"),
    [
        ({}, "AZ_DNS_DOMAIN is not set"),
        ({"AZ_DNS_DOMAIN": "not a domain"}, "domain 'not a domain' from environment (AZ_DNS_DOMAIN) is not a valid DNS"),
        ({"AZ_DNS_DOMAIN": "example.com"}, "AZ_DNS_RESOURCE_GROUP or AZ_RESOURCE_GROUP is not set"),
        ({"AZ_DNS_DOMAIN": "example.com", "AZ_RESOURCE_GROUP": "rg", "AZ_AKS_CLUSTER_NAME": "a",
          "AZ_SUBSCRIPTION_ID": "nope"}, "subscription_id 'nope' from environment (AZ_SUBSCRIPTION_ID) is not a valid"),
        ({"AZ_DNS_DOMAIN": "example.com", "AZ_RESOURCE_GROUP": "rg", "AZ_AKS_CLUSTER_NAME": "a",
          "AZ_SUBSCRIPTION_ID": SUB, "ACME_ISSUER": "letsencrypt"}, "acme_issuer 'letsencrypt' from environment"),
    ],
)
def test_bad_values_name_the_field_and_the_source(environ: dict[str, str], phrase: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_target(environ={"AZURE_CONFIG_DIR": str(tmp_path), **environ})
    assert phrase in str(caught.value)
    assert "\n" not in str(caught.value)


def test_loopback_only_profile_refuses_an_outside_endpoint(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("network: loopback-only\nazure:\n  endpoint: https://management.azure.com\n")
    with pytest.raises(ConfigError, match="outside the sandbox"):
        resolve_target(profile=profile, environ={"AZ_DNS_DOMAIN": "example.com", "AZ_RESOURCE_GROUP": "rg",
                                                 "AZ_AKS_CLUSTER_NAME": "a", "AZ_SUBSCRIPTION_ID": SUB})


def _assert_usage_error(run, phrase: str) -> None:  # type: ignore[no-untyped-def]
    assert run.code == 4, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and phrase in lines[0], run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_malformed_profile_is_one_sentence_and_exit_4_before_any_request(sandbox_for, tmp_path: Path) -> None:
    sandbox = sandbox_for("healthy")
    bad = sandbox.state_dir / "bad.yaml"
    bad.write_text(sandbox.profile.read_text() + "target: [unclosed\n")
    run = run_suites("--aksid-profile", str(bad), reports=tmp_path / "reports")
    stream_end = len(bad.read_text().splitlines()) + 1  # where the unclosed `[` is found unclosed
    _assert_usage_error(run, f"the profile {bad}:{stream_end} is not valid YAML (column 1: expected ',' or ']'")
    assert sandbox.requests() == []


def test_missing_domain_is_one_sentence_and_exit_4_before_any_request(sandbox_for, tmp_path: Path) -> None:
    sandbox = sandbox_for("healthy")
    profile = sandbox.state_dir / "no-domain.yaml"  # beside the original, so its relative paths hold
    profile.write_text(sandbox.profile.read_text().replace("  domain: example.test\n", ""))
    assert "domain:" not in profile.read_text()
    run = run_suites("--aksid-profile", str(profile), reports=tmp_path / "reports", env=clean_env())
    _assert_usage_error(run, "AZ_DNS_DOMAIN is not set")
    assert sandbox.requests() == []
