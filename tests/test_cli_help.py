"""aksid's own help and usage errors: `aksid run --help`, `--version`, per-command help, did-you-mean for scenarios,
settings, modes and kube contexts, an env file's command substitutions and an unusable trust store (exit 4)."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import certifi
import pytest

from aksid import activation, cli
from aksid.collect.kube import kube_configuration
from aksid.config import ConfigError, parse_overrides, resolve_target
from aksid.envfile import read_env_file
from aksid.modes import selectable_modes
from aksid.sandbox.render import render
from aksid.sandbox.scenario import load_scenario

from .harness import Run, aksid, clean_env

SUB = "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13"
TARGET = {"AZ_DNS_DOMAIN": "example.com", "AZ_RESOURCE_GROUP": "rg", "AZ_AKS_CLUSTER_NAME": "a",
          "AZ_SUBSCRIPTION_ID": SUB}


def one_sentence(run: Run, *phrases: str) -> str:
    """Exit 4 and one line on stderr holding every phrase; no traceback, no pytest usage text."""
    assert run.code == 4, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert all(phrase in lines[0] for phrase in phrases), lines[0]
    assert "Traceback" not in run.stdout + run.stderr and "usage:" not in run.stderr
    return lines[0]


# -- aksid run --help -------------------------------------------------------------------------------------------

def test_run_help_is_aksids_options_grouped_then_points_to_pytest(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("usage: aksid run") and len(lines) < 120  # pytest's own help is 500 lines
    headings = [line[:-1] for line in lines if line and not line.startswith(" ") and line.endswith(":")]
    # selection shows once its options exist (--aksid-check); nothing is left for "other" today
    assert [h for h in headings if h != "selection"] == ["options", "target", "mode", "reports", "thresholds"], headings
    for flag, _ in activation.OPTIONS:  # rendered from the plugin's own list: none missing
        assert f"  {flag}" in text, flag
    # each option under its group
    assert text.index("--aksid-env-file") < text.index("\nmode:") < text.index("--aksid-replay") < text.index(
        "\nreports:") < text.index("--aksid-baseline") < text.index("\nthresholds:") < text.index("--aksid-fail-on")
    assert "[attach, provision, static]" in text  # the choices a metavar would hide
    assert "`pytest --help`" in lines[-1] and "--junitxml" not in text


def test_an_option_in_no_group_still_shows_under_other(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    extra = ("--aksid-frobnicate", {"metavar": "N", "help": "an option added after the help was written"})
    monkeypatch.setattr(activation, "OPTIONS", (*activation.OPTIONS, extra))
    assert cli.main(["run", "-h"]) == 0
    text = capsys.readouterr().out
    assert "\nother:" in text and text.index("\nother:") < text.index("--aksid-frobnicate N")


def test_run_help_is_aksids_in_a_real_process() -> None:
    run = aksid("run", "--help", reports=Path("unused"))
    assert run.code == 0 and run.stdout.startswith("usage: aksid run") and "--aksid-mode" in run.stdout, run.stderr


# -- --version and every command's help ------------------------------------------------------------------------

def test_version(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"aksid {version('aksid')}\n"

    def not_installed(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr("importlib.metadata.version", not_installed)  # a checkout nobody installed
    assert cli._version() == __import__("aksid").__version__


def _parsers(parser: argparse.ArgumentParser, path: str = "aksid"):  # noqa: ANN202 - (name, parser) pairs
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_command_and_flag_is_described() -> None:
    undescribed = []
    for name, parser in _parsers(cli.build_parser()):
        if name != "aksid" and not parser.description:
            undescribed.append(name)
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and not action.help:
                undescribed.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert undescribed == []


def test_sandbox_up_help_is_ups_own(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["sandbox", "up", "--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: aksid sandbox up") and "--state-dir DIR" in text and "--scenario NAME" in text
    assert "--out" not in text  # render's flag, not up's


# -- did-you-mean ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["demo", "--scenario", "healty"],
                                     ["sandbox", "render", "--scenario", "healty", "--out", "never-written"]])
def test_a_mistyped_scenario_gets_the_closest_names(command: list[str], capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(command) == 4
    said = capsys.readouterr().err
    assert "no built-in scenario 'healty' (did you mean 'healthy'" in said and "`aksid scenarios` lists them" in said
    assert "tls-expired-leaf" not in said  # not every name there is
    assert not (tmp_path / "never-written").exists()


def test_a_scenario_like_nothing_is_not_answered_with_every_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--scenario", "zzzz"]) == 4
    said = capsys.readouterr().err
    assert "none is close" in said and "healthy" not in said


def test_a_mistyped_setting_gets_the_closest_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_overrides([f"subscripton_id={SUB}"])
    assert str(caught.value) == (f"--aksid-set subscripton_id={SUB}: 'subscripton_id' is not a setting "
                                 "(did you mean 'subscription_id'?)")
    with pytest.raises(ConfigError, match=r"expects FIELD=VALUE; got 'subscription_id' \(no '='\)"):
        parse_overrides(["subscription_id"])


def test_a_mistyped_profile_setting_gets_the_closest_key(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("tls:\n  trust_stor: roots.pem\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'tls.trust_stor' \(did you mean 'trust_store'\?\)"):
        resolve_target(profile=profile, environ=TARGET)
    profile.write_text("kub:\n  context: x\n")
    with pytest.raises(ConfigError, match=r"unknown section 'kub' \(did you mean 'kube'\?\)"):
        resolve_target(profile=profile, environ=TARGET)


@pytest.mark.parametrize(("given", "closest"), [("statc", "static"), ("Attach", "attach"), ("foo", None)])
def test_an_unknown_mode_is_aksids_sentence_with_the_modes(given: str, closest: str | None) -> None:
    run = aksid("run", "--aksid-mode", given, "-p", "no:cacheprovider", reports=Path("unused"))
    line = one_sentence(run, f"--aksid-mode '{given}' is not a mode", f"modes: {', '.join(selectable_modes())}")
    assert "pytest.main()" not in line and "invalid choice" not in line
    assert (f"did you mean '{closest}'?" in line) if closest else ("did you mean" not in line)


MODE_PLUGIN = '''
from aksid.run.sources import EvidenceSource, RunError, register


class Nightly(EvidenceSource):
    name = "nightly"

    def members(self, options):
        raise RunError("the nightly source was asked for its members")

    def collect(self, member, options, context):
        raise AssertionError("never reached")


register(Nightly())
'''


def test_a_mode_a_plugin_registers_is_not_refused(tmp_path: Path) -> None:
    (tmp_path / "nightly_mode.py").write_text(MODE_PLUGIN, encoding="utf-8")
    env = clean_env(PYTHONPATH=str(tmp_path))
    run = aksid("run", "-p", "nightly_mode", "--aksid-mode", "nightly", "-p", "no:cacheprovider",
                "--aksid-reports-dir", str(tmp_path / "reports"), reports=tmp_path / "reports", env=env)
    assert "not a mode" not in run.stderr and "the nightly source was asked" in run.stdout + run.stderr, run.stderr


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts:
- {name: prod-aks, context: {cluster: c, user: u}}
- {name: staging-aks, context: {cluster: c, user: u}}
current-context: prod-aks
"""


@pytest.mark.parametrize(("context", "hint"), [
    ("prod-ask", "(did you mean 'prod-aks'?)"),
    ("dev", "(its contexts: prod-aks, staging-aks)"),
])
def test_a_missing_kube_context_names_the_ones_the_kubeconfig_has(context: str, hint: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG, encoding="utf-8")
    target = resolve_target(environ={**TARGET, "KUBECONFIG": str(kubeconfig)}, kube_context=context)
    with pytest.raises(ConfigError) as caught:
        kube_configuration(target)
    assert str(caught.value) == f"the kubeconfig {kubeconfig} has no context '{context}' {hint}"
    chosen = resolve_target(environ={**TARGET, "KUBECONFIG": str(kubeconfig)}, kube_context="staging-aks")
    assert kube_configuration(chosen).host == "https://127.0.0.1:9"  # no request: configuration only


# -- the env file's command substitutions ----------------------------------------------------------------------

ENV_SH = """\
export AZ_RESOURCE_GROUP="blog-rg"
export AZ_AKS_CLUSTER_NAME='hello-aks'
export AZ_DNS_DOMAIN="example.com"
export AZ_SUBSCRIPTION_ID="$(az account show --query id -o tsv)"   # as the tutorial writes it
export AZ_TENANT_ID=`az account show --query tenantId -o tsv`
export GREETING='$(not a command)'
"""


def test_command_substitutions_are_kept_aside_never_run(tmp_path: Path) -> None:
    path = tmp_path / "env.sh"
    path.write_text(ENV_SH, encoding="utf-8")
    env = read_env_file(path)
    assert set(env.unrun) == {"AZ_SUBSCRIPTION_ID", "AZ_TENANT_ID"}
    assert env.unrun["AZ_SUBSCRIPTION_ID"].line == 4
    assert env.unrun["AZ_SUBSCRIPTION_ID"].text == "$(az account show --query id -o tsv)"
    assert env.unrun["AZ_TENANT_ID"].text == "`az account show --query tenantId -o tsv`"
    assert env.values["GREETING"] == "$(not a command)"  # single quotes: literal text, as the shell reads it
    assert "AZ_SUBSCRIPTION_ID" not in env.values


def test_a_needed_setting_from_a_command_substitution_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "env.sh"
    path.write_text(ENV_SH, encoding="utf-8")
    no_azure_cli = {"AZURE_CONFIG_DIR": str(tmp_path)}  # no default subscription to fall back on
    with pytest.raises(ConfigError) as caught:
        resolve_target(env_file=path, environ=no_azure_cli)
    assert str(caught.value) == (
        f"AZ_SUBSCRIPTION_ID in the env file {path} (line 4) is a shell command substitution, "
        "$(az account show --query id -o tsv), which aksid does not run: export AZ_SUBSCRIPTION_ID in your shell "
        f"first (`source {path}`) or give --aksid-set subscription_id=...")
    # given elsewhere, the substitution is no problem: exported, or set on the command line
    assert resolve_target(env_file=path, environ={**no_azure_cli, "AZ_SUBSCRIPTION_ID": SUB}).subscription_id == SUB
    assert resolve_target(env_file=path, environ=no_azure_cli,
                          overrides=[f"subscription_id={SUB}"]).subscription_id == SUB


def rendered(name: str, tmp_path: Path) -> Path:
    render(load_scenario(name), tmp_path / name)
    return tmp_path / name


def test_aksid_run_names_the_substitution_in_one_sentence(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    env_sh = repo / "env.sh"
    lines = [line if not line.startswith("export AZ_SUBSCRIPTION_ID=") else
             'export AZ_SUBSCRIPTION_ID="$(az account show --query id -o tsv)"'
             for line in env_sh.read_text(encoding="utf-8").splitlines()]
    env_sh.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = aksid("run", "--aksid-mode", "static", "--aksid-env-file", str(env_sh), "--aksid-manifests",
                str(repo / "manifests"), "--aksid-reports-dir", str(repo / "reports"), "-q", "-p", "no:cacheprovider",
                reports=repo / "reports", env=clean_env(AZURE_CONFIG_DIR=str(tmp_path)))
    one_sentence(run, "AZ_SUBSCRIPTION_ID in the env file", "is a shell command substitution",
                 "--aksid-set subscription_id=...")


# -- the trust store -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("make", "phrase"), [
    (lambda d: d, "names a folder: give the PEM bundle file itself"),
    (lambda d: _file(d / "empty.pem", b""), "is an empty file, not a PEM bundle"),
    (lambda d: _file(d / "roots.der", b"0\x82\x01\x0a\x02\x82"), "holds no PEM certificate"),
    (lambda d: _file(d / "broken.pem", b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"),
     "holds no PEM certificate"),
    (lambda d: d / "absent.pem", "names a file that does not exist"),
])
def test_an_unusable_trust_store_is_refused_when_the_target_is_resolved(make, phrase: str,  # type: ignore[no-untyped-def]
                                                                        tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(ConfigError) as caught:
        resolve_target(environ=TARGET, overrides=[f"trust_store={path}"])
    assert str(caught.value).startswith(f"trust_store '{path}' from command line") and phrase in str(caught.value)


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_pem_bundle_is_accepted() -> None:
    assert resolve_target(environ=TARGET, overrides=[f"trust_store={certifi.where()}"]).trust_store == certifi.where()


def test_aksid_run_refuses_a_folder_trust_store_before_any_collection(tmp_path: Path) -> None:
    repo = rendered("healthy", tmp_path)
    # an attach run: had the target been accepted, it would go on to read the kubeconfig and list the cluster
    run = aksid("run", "--aksid-env-file", str(repo / "env.sh"), "--aksid-set", f"trust_store={tmp_path}",
                "--aksid-reports-dir", str(repo / "reports"), "-q", "-p", "no:cacheprovider",
                reports=repo / "reports", env=clean_env())
    one_sentence(run, f"trust_store '{tmp_path}'", "names a folder")
    assert not (repo / "reports" / "snapshot.json").exists()
