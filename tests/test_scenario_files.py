"""Scenario files: every built-in scenario reads back through the official clients' models; patches are strict."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aksid.sandbox.scenario import ScenarioError, builtin_names, load_scenario, merge_patch

from .scenario_shapes import assert_arm_resources_deserialize, assert_kube_objects_deserialize


@pytest.mark.parametrize("name", builtin_names())
def test_scenario_objects_are_what_real_clients_accept(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.description, f"{name} needs a description"
    assert_kube_objects_deserialize(scenario.kube_objects)
    assert_arm_resources_deserialize(scenario.azure_resources)


def test_merge_patch_follows_rfc_7386() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) == {
        "a": {"c": 2, "e": 3}, "d": [2]}


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ({"kube": {"remove": [{"apiVersion": "v1", "kind": "Pod", "namespace": "kube-system", "name": "nmi-typo"}]}},
         "kube.remove names v1/Pod/kube-system/nmi-typo, which the base does not have"),
        ({"azure": {"remove": ["/subscriptions/x/resourceGroups/nope"]}},
         "azure.remove names /subscriptions/x/resourceGroups/nope"),
        ({"kube": {"frobnicate": []}}, "unknown key(s) frobnicate in kube"),
        ({"expect": {"fail": ["NMI-001"]}}, "unknown key(s) fail in expect"),
        ({"base": "no-such-scenario"}, "no built-in scenario 'no-such-scenario'"),
        ({"expect": {"failed": ["NMI-002"], "mentions": {"NMI-001": ["x"]}}},
         "expect.mentions names NMI-001, which the scenario does not expect red"),
    ],
)
def test_scenario_mistakes_are_named(tmp_path: Path, body: dict[str, object], phrase: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "description": "d", "base": "healthy", **body}))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    assert phrase in str(caught.value)


def test_base_may_be_a_path_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "first.yaml").write_text(yaml.safe_dump({"name": "first", "description": "d", "base": "healthy",
                                                         "expect": {"failed": ["NMI-001"]}}))
    (tmp_path / "sub" / "second.yaml").write_text(yaml.safe_dump({"description": "d2", "base": "../first.yaml"}))
    scenario = load_scenario(str(tmp_path / "sub" / "second.yaml"))
    assert scenario.name == "second" and scenario.expect_failed == []  # expectations are not inherited


def test_a_red_check_that_does_not_name_its_subject_misses_the_expectation(tmp_path: Path) -> None:
    import json

    from aksid.cli import verdict

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"checks": [
        {"id": "NMI-002", "outcome": "failed", "message": "node aks-a has no NMI; pods hello/x exposed"},
        {"id": "NMI-001", "outcome": "passed", "message": ""}]}))
    assert verdict(["NMI-002"], [], results, {"NMI-002": ["aks-a", "hello/x"]}) == 0
    assert verdict(["NMI-002"], [], results, {"NMI-002": ["aks-b"]}) == 1
