"""Reading scenarios at scale: the fast reader gives PyYAML's values, and the loader's index keeps its semantics."""

from __future__ import annotations

import datetime as dt
import gc
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aksid.memory import gc_paused
from aksid.sandbox import bulk
from aksid.sandbox.bulk import json_copy, load_document
from aksid.sandbox.scenario import ScenarioError, builtin_dir, builtin_names, load_scenario

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pyyaml(text: str) -> tuple[str, Any]:
    try:
        return "value", yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        return type(exc).__name__, str(exc)


def fast(text: str) -> tuple[str, Any]:
    try:
        return "value", load_document(text)
    except yaml.YAMLError as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("text", [
    "a: [1, 2.5, 1e3, 1.0e+3, .inf, -.5, +1, ~, null, yes, No, on, 0x1F, 0o17, 017, 1_000, 1:20, =]",
    "a: 2025-01-01\nb: '2025-01-01'\nc: 2025-01-01T00:00:00Z\nd: ''\ne:\nf: \"x\\u00e9\"",
    "a:\n  b: c\n  d:\n  - e\n  - f: g\n    h: |\n      text\n      more\n  i: >\n    folded\n    text\n",
    "1: 2\ntrue: x\n~: y\n'quoted': z",
    "- a\n- b\n",
    "plain",
    "",
    "x: &l [1, 2]\ny: *l",
    "k: &v val\n*v : 3",
    "a: &m {x: 1}\nb:\n  <<: *m\n  y: 2",
    "a: !!str 1\nb: !!binary aGVsbG8=\nc: !!set {x, y}",
    "&a [1, *a]",
    "a: &x 1\nb: &x 2\nc: *x",
    "a: *b",
    "? [1]\n: 2",
    "---\na: 1\n---\nb: 2",
    "a: b\n c: d",
    "a: [1, 2",
    '{"a": 1e3, "b": 1.5, "c": NaN, "d": [true, null, false], "e": "x\\u00e9\\/", "a": 2}',
    '{"a": 1}\n{"b": 2}',
])
def test_reads_what_pyyaml_reads(text: str) -> None:
    assert repr(fast(text)) == repr(pyyaml(text))


@pytest.mark.parametrize("name", builtin_names())
def test_reads_the_built_in_scenarios_as_pyyaml_does(name: str) -> None:
    text = (builtin_dir() / f"{name}.yaml").read_text(encoding="utf-8")
    assert repr(fast(text)) == repr(pyyaml(text))


def test_an_alias_is_the_same_object_as_pyyaml_makes_it() -> None:
    document = load_document("x: &l [1, 2]\ny: *l\nz: &s text\nw: *s")
    assert document["x"] is document["y"] and document["w"] == "text"


def test_a_json_document_reads_as_the_same_text_as_yaml() -> None:
    document = {"a": [1, 2.5, "1e3", None, True], "b": {"c": "d"}}
    text = json.dumps(document)
    assert load_document(text) == yaml.load(text, Loader=_LOADER) == document  # noqa: S506 - a safe loader


def test_json_copy_is_deep_and_copies_other_values_as_deepcopy_does() -> None:
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    original = {"a": [{"b": 1}, "c"], "d": {"e": None, "f": 1.5, "g": True}, "h": {1, 2}, "i": when}
    copied = json_copy(original)
    assert copied == original
    assert copied["a"] is not original["a"] and copied["a"][0] is not original["a"][0]
    assert copied["h"] is not original["h"] and copied["i"] == when


def test_gc_paused_restores_the_collector_as_it_was() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause does not end the outer one
    assert gc.isenabled()


# --- the scenario loader: an index by identity instead of scans, each file read once -------------------


def write(path: Path, document: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({"description": "d", "base": "healthy", **document}), encoding="utf-8")
    return str(path)


def config_map(name: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": data or {}}


def ref(name: str) -> dict[str, str]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": name}


def test_kube_sections_remove_then_patch_then_add_keeping_the_order(tmp_path: Path) -> None:
    first = write(tmp_path / "first.yaml", {"kube": {"add": [config_map(f"c{i}") for i in range(5)]}})
    second = write(tmp_path / "second.yaml", {"base": first, "kube": {
        "remove": [ref("c1")],
        "patch": [{**ref("c2"), "merge": {"metadata": {"name": "renamed"}}},
                  {**ref("renamed"), "merge": {"data": {"k": "v"}}}],
        "add": [config_map("c1", {"back": "again"})],
    }})
    maps = [o for o in load_scenario(second).kube_objects if o["kind"] == "ConfigMap"]
    assert [(m["metadata"]["name"], m["data"]) for m in maps] == [
        ("c0", {}), ("renamed", {"k": "v"}), ("c3", {}), ("c4", {}), ("c1", {"back": "again"})]


@pytest.mark.parametrize(("kube", "phrase"), [
    ({"add": [config_map("c0")]}, "kube.add v1/ConfigMap/default/c0 already exists; use kube.patch"),
    ({"add": [config_map("new"), config_map("new")]}, "kube.add v1/ConfigMap/default/new already exists"),
    ({"remove": [ref("c0"), ref("c0")]}, "kube.remove names v1/ConfigMap/default/c0, which the base does not have"),
    ({"patch": [{**ref("c0"), "merge": {"metadata": {"name": "other"}}}, {**ref("c0"), "merge": {}}]},
     "kube.patch names v1/ConfigMap/default/c0, which the base does not have"),
])
def test_kube_sections_still_refuse_what_they_refused(tmp_path: Path, kube: dict[str, Any], phrase: str) -> None:
    base = write(tmp_path / "base.yaml", {"kube": {"add": [config_map("c0")]}})
    with pytest.raises(ScenarioError, match=phrase):
        load_scenario(write(tmp_path / "over.yaml", {"base": base, "kube": kube}))


def test_documents_are_read_once_and_never_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "mine.yaml", {"kube": {"add": [config_map("c0", {"k": "v"})]}})
    reads: list[int] = []
    real = bulk.load_document
    monkeypatch.setattr("aksid.sandbox.scenario.load_document", lambda text: reads.append(1) or real(text))
    documents: dict[Path, dict[str, Any]] = {}
    first = load_scenario(path, documents=documents)
    assert len(reads) == 2 and len(documents) == 2  # this file and healthy
    next(o for o in first.kube_objects if o["kind"] == "ConfigMap")["data"]["k"] = "changed"
    first.target["domain"] = "changed.example"
    second = load_scenario(path, documents=documents)
    assert len(reads) == 2
    assert next(o for o in second.kube_objects if o["kind"] == "ConfigMap")["data"] == {"k": "v"}
    assert second.target["domain"] != "changed.example"
    assert json.dumps(second.kube_objects) == json.dumps(load_scenario(path).kube_objects)
