"""Scale levers keep behaviour: narrowed redaction equals the full walk; a large cluster still hides a secret."""

from __future__ import annotations

import copy
import json

import pytest

from aksid.collect.kube import collect_kube, kube_configuration
from aksid.config import resolve_target
from aksid.jsonfile import parsed
from aksid.redact import (
    _PUBLIC_SECRET_KEYS,
    _SECRET_ANNOTATIONS,
    REDACTED,
    _redact_flag,
    _redact_secret_value,
    looks_secret,
    redact_kube_object,
)
from aksid.sandbox.large_cluster import PageServer, generate
from aksid.sandbox.scenario import builtin_names, load_scenario

PLANTED = "scale-Planted-secret-5e1d"


def _before(value, kind, key=None):
    """The redaction walk as it was before the scale work (every field visited), kept here as the reference."""
    if isinstance(value, dict):
        if kind == "Secret" and key in ("data", "stringData"):
            return {k: (v if k in _PUBLIC_SECRET_KEYS else _redact_secret_value(v, key == "data")) for k, v in value.items()}
        if key == "annotations":
            return {k: (REDACTED if k in _SECRET_ANNOTATIONS else v) for k, v in value.items()}
        if isinstance(value.get("name"), str) and "value" in value and isinstance(value.get("value"), str):
            return {**value, "value": REDACTED} if looks_secret(str(value["name"])) else dict(value)
        return {k: _before(v, kind, k) for k, v in value.items()}
    if isinstance(value, list):
        redacted = [_before(item, kind, key) for item in value]
        if key in ("args", "command"):
            redacted = [_redact_flag(item) if isinstance(item, str) else item for item in redacted]
        return redacted
    return value


def redact_everywhere(obj: dict) -> dict:
    return _before(obj, obj.get("kind"))


def _without_managed_fields(obj: dict) -> dict:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


@pytest.mark.parametrize("name", builtin_names())
def test_narrowed_redaction_equals_the_full_walk(name: str) -> None:
    for obj in load_scenario(name).kube_objects:
        assert redact_kube_object(obj) == redact_everywhere(_without_managed_fields(obj)), obj["metadata"]


def _large_cluster_with_planted_secrets() -> list[dict]:
    objects = generate(nodes=20, namespaces=200, pods_per_namespace=10)
    pods = [o for o in objects if o["kind"] == "Pod" and o["metadata"]["namespace"].startswith("team-")]
    leaky = pods[777]
    leaky["spec"]["containers"][0]["env"] = [{"name": "AZURE_CLIENT_SECRET", "value": PLANTED}]
    leaky["spec"]["containers"][0]["args"] = [f"--azure-client-secret={PLANTED}"]
    leaky["metadata"].setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = PLANTED
    return objects


def test_the_large_cluster_redacts_like_the_full_walk() -> None:
    objects = _large_cluster_with_planted_secrets()
    assert sum(o["kind"] == "Pod" for o in objects) > 2000
    for obj in objects:
        assert redact_kube_object(obj) == redact_everywhere(_without_managed_fields(copy.deepcopy(obj)))


def test_a_large_cluster_collected_still_hides_a_planted_secret(tmp_path) -> None:
    server = PageServer(_large_cluster_with_planted_secrets())
    url = server.start()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                                          "clusters": [{"name": "c", "cluster": {"server": url}}],
                                          "users": [{"name": "u", "user": {"token": "t"}}],
                                          "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
        target = resolve_target(environ={"AZ_DNS_DOMAIN": "example.test", "AZ_RESOURCE_GROUP": "rg",
                                         "AZ_AKS_CLUSTER_NAME": "c", "AZ_SUBSCRIPTION_ID": "5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13",
                                         "KUBECONFIG": str(kubeconfig)})
        entries = collect_kube(target, kube_configuration(target))
    finally:
        server.stop()
    pods = entries["v1/Pod"]["value"]
    assert len(pods) > 2000 and all("managedFields" not in p["metadata"] for p in pods)
    assert PLANTED not in json.dumps(entries)


@pytest.mark.parametrize("name", builtin_names())
def test_redaction_in_place_equals_the_copy_and_the_copy_leaves_its_input(name: str) -> None:
    for obj in load_scenario(name).kube_objects:
        before = copy.deepcopy(obj)
        redacted = redact_kube_object(obj)
        assert obj == before  # the copy's contract
        assert redact_kube_object(copy.deepcopy(obj), owned=True) == redacted, obj["metadata"]


def _linear(items: list[dict], namespace: str | None, labels: dict) -> list[dict]:
    """Selector queries as they were before the label index: a scan of every object."""
    return [item for item in items
            if (namespace is None or item.get("metadata", {}).get("namespace") == namespace)
            and all((item.get("metadata", {}).get("labels") or {}).get(k) == v for k, v in labels.items())]


@pytest.mark.parametrize("name", builtin_names())
def test_selector_queries_through_the_label_index_equal_a_scan(name: str) -> None:
    from aksid.snapshot import KubeEvidence, kind_key, ok

    by_kind: dict[tuple[str, str], list[dict]] = {}
    for obj in load_scenario(name).kube_objects:
        by_kind.setdefault((obj["apiVersion"], obj["kind"]), []).append(obj)
    kube = KubeEvidence({kind_key(*key): ok(items) for key, items in by_kind.items()})
    for (api_version, kind), items in by_kind.items():
        pairs = {pair for item in items for pair in (item["metadata"].get("labels") or {}).items()}
        namespaces = {item["metadata"].get("namespace") for item in items} | {None, "elsewhere"}
        for key, value in pairs:
            for namespace in namespaces:
                for labels in ({key: value}, {key: value, "app": "x"}, {key: str(value) + "-not"}):
                    assert kube.list(api_version, kind, namespace, labels) == _linear(items, namespace, labels)


def test_label_values_that_are_not_strings_are_still_judged() -> None:
    from aksid.snapshot import KubeEvidence, ok

    items = [{"metadata": {"name": "a", "labels": {"v": 1}}}, {"metadata": {"name": "b", "labels": {"v": ["odd"]}}},
             {"metadata": {"name": "c", "labels": {"v": True}}}, {"metadata": {"name": "d"}}]
    kube = KubeEvidence({"v1/Pod": ok(items)})
    for labels in ({"v": 1}, {"v": ["odd"]}, {"v": True}, {"v": "1"}, {}):
        assert kube.pods(labels=labels) == _linear(items, None, labels), labels


@pytest.mark.parametrize(("page", "expected"), [
    (b'{"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "x"}}',
     {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "x"}}),
    (b'{"data": "\\ud800", "n": NaN}', {"data": "\ud800", "n": float("nan")}),  # orjson refuses both
], ids=["page", "lone-surrogate-and-nan"])
def test_pages_parse_as_the_standard_library_parses_them(page: bytes, expected: object) -> None:
    assert str(parsed(page)) == str(json.loads(page)) == str(expected)  # str: NaN is not equal to itself


def test_an_integer_beyond_64_bits_reads_as_the_api_server_stores_it() -> None:
    # apimachinery decodes a JSON number as int64 when it fits, else float64: the API never serves a wider integer
    assert parsed(b'{"n": 123456789012345678901234567890, "m": 9223372036854775807}') == {
        "n": 1.2345678901234568e+29, "m": 9223372036854775807}


def test_a_truncated_page_is_still_a_json_decode_error() -> None:
    # the collector's retry names it "truncated JSON" by this type
    with pytest.raises(json.JSONDecodeError):
        parsed(b'{"items": [{"metadata": ')
