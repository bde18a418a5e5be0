"""One reader per user file format (aksid/userfiles.py), and every caller's malformed file as one sentence."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from aksid.cli import main
from aksid.collect.static.arm_template import read_parameters, read_template
from aksid.collect.static.errors import StaticInputError
from aksid.collect.static.manifests import read_manifests
from aksid.collect.static.plan import read_plan
from aksid.config import ConfigError, load_profile, profile_hooks
from aksid.diff import diff_command
from aksid.fleet import member_name
from aksid.history import history_command
from aksid.reporting.baseline import apply_baseline
from aksid.snapshot import Snapshot
from aksid.userfiles import (
    UserFileError,
    read_json,
    read_json_object,
    read_yaml,
    reported_as,
    yaml_documents,
)
from aksid.waivers import WaiverError, load_waivers

SUB = "00000000-0000-0000-0000-000000000001"


def _one_sentence(text: str, path: Path) -> None:
    assert str(path) in text and "\n" not in text.strip() and "Traceback" not in text, text


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- the readers -----------------------------------------------------------------------------------------


def test_bad_json_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.json", '{"a": 1,\n "b" 2}\n')
    with pytest.raises(UserFileError) as caught:
        read_json(path, "the thing")
    assert str(caught.value) == f"the thing {path}:2 is not valid JSON (column 6: expecting ':' delimiter)"
    assert caught.value.line == 2 and caught.value.kind == "syntax" and isinstance(caught.value, ValueError)


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.yaml", "a: 1\nb: c: d\n")
    with pytest.raises(UserFileError) as caught:
        read_yaml(path, "the thing")
    assert str(caught.value) == f"the thing {path}:2 is not valid YAML (column 5: mapping values are not allowed here)"
    assert caught.value.line == 2


def test_a_yaml_construction_error_is_located_too(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.yaml", "kind: A\n---\nname: {{ x }}\n")
    with pytest.raises(UserFileError, match=r"x\.yaml:3 is not valid YAML \(column 8: found unhashable key\)"):
        read_yaml(path, "the thing", multi=True)


def test_a_control_character_in_yaml_is_located(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.yaml", 'a: 1\nb: "\x07"\n')
    with pytest.raises(UserFileError, match=r"x\.yaml:2 is not valid YAML \(column 5: unacceptable character #x0007"):
        read_yaml(path, "the thing")


@pytest.mark.parametrize("reader", [read_json, read_yaml])
def test_a_missing_file_cannot_be_read(tmp_path: Path, reader) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nowhere.json"
    with pytest.raises(UserFileError) as caught:
        reader(path, "the thing")
    assert str(caught.value) == f"the thing {path} cannot be read: no such file or directory"
    assert caught.value.kind == "unreadable"


@pytest.mark.parametrize("reader", [read_json, read_yaml])
def test_a_directory_cannot_be_read(tmp_path: Path, reader) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserFileError) as caught:
        reader(tmp_path, "the thing")
    assert str(caught.value) == f"the thing {tmp_path} cannot be read: is a directory"


def test_an_empty_json_file_is_named_empty(tmp_path: Path) -> None:
    for text in ("", " \n\n"):
        path = _write(tmp_path / "x.json", text)
        with pytest.raises(UserFileError) as caught:
            read_json(path, "the thing")
        assert str(caught.value) == f"the thing {path} is empty (no JSON value)" and caught.value.kind == "empty"


def test_an_empty_yaml_file_is_no_document(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.yaml", "# nothing yet\n")
    assert read_yaml(path, "the thing") is None
    assert read_yaml(path, "the thing", multi=True) == []


def test_text_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    latin = _write(tmp_path / "latin.yaml", "a: 1\nb: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserFileError, match=r"latin\.yaml cannot be read: line 2 is not UTF-8 text \(byte 0xe9\)"):
        read_yaml(latin, "the thing")
    utf16 = _write(tmp_path / "plan.json", '{"a": 1}'.encode("utf-16"))  # PowerShell 5's `>`
    with pytest.raises(UserFileError, match=r"plan\.json cannot be read: it is UTF-16 text \(save it as UTF-8\)"):
        read_json(utf16, "the thing")


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    assert read_json(_write(tmp_path / "x.json", '\ufeff{"a": 1}'), "the thing") == {"a": 1}
    assert read_yaml(_write(tmp_path / "x.yaml", "\ufeffa: 1\n"), "the thing") == {"a": 1}


def test_a_multi_document_yaml_with_its_lines(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        # Source: chart/templates/a.yaml
        kind: A
        name: a
        ---
        ---
        # a comment first

        kind: B
        ---
        - 1
        - 2
        --- just a scalar
        """)
    path = _write(tmp_path / "x.yaml", text)
    documents = yaml_documents(text, path, "the thing")
    assert [(d.line, d.value) for d in documents] == [
        (2, {"kind": "A", "name": "a"}), (5, None), (8, {"kind": "B"}), (10, [1, 2]), (12, "just a scalar")]
    assert read_yaml(path, "the thing", multi=True) == [d.value for d in documents]
    with pytest.raises(UserFileError) as caught:
        read_yaml(path, "the thing")
    assert str(caught.value).endswith(f"{path}:4 is not valid YAML (column 1: expected a single document in the stream, "
                                      "but found another document)")


def test_read_json_object_says_what_was_expected(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.json", "[1]")
    with pytest.raises(UserFileError) as caught:
        read_json_object(path, "the snapshot")
    assert str(caught.value) == f"the snapshot {path} is not a JSON object"


def test_reported_as_raises_the_callers_error_without_a_chain(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.json", "{")
    with pytest.raises(ConfigError) as caught, reported_as(ConfigError):
        read_json(path, "the thing")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert str(caught.value).startswith(f"the thing {path}:1 is not valid JSON")


# --- every caller: a malformed file is one sentence naming it -------------------------------------------


def test_profile(tmp_path: Path) -> None:
    path = _write(tmp_path / "ci.yaml", "name: ci\ntarget:\n  domain: [example.com\n")
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    _one_sentence(str(caught.value), path)
    assert str(caught.value).startswith(f"the profile {path}:4 is not valid YAML (column 1: ")
    assert profile_hooks(path) == {}  # load_profile reports it
    assert member_name(path) == "ci"  # the file's stem; load_profile reports it


def test_waiver_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "w.yaml", "- check: RBAC-002\n  reason: [x\n")
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    _one_sentence(str(caught.value), path)
    assert str(caught.value).startswith(f"the waiver file {path}:3 is not valid YAML")
    with pytest.raises(WaiverError, match="cannot be read: no such file or directory"):
        load_waivers(tmp_path / "missing.yaml")


def test_manifests(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.yaml", "apiVersion: v1\nkind: ConfigMap\n---\nkind: Deployment\nmetadata: [\n")
    with pytest.raises(StaticInputError) as caught:
        read_manifests([path])
    _one_sentence(str(caught.value), path)
    assert str(caught.value).startswith(f"the manifest file {path}:6 is not valid YAML (column 1: ")


def test_manifests_keep_each_objects_line_and_chart_source(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.yaml", textwrap.dedent("""\
        ---
        # Source: chart/templates/sa.yaml
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: a}
        ---
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: b}
          - apiVersion: v1
            kind: Secret
            metadata: {name: c}
        """))
    found = [(o.obj["kind"], o.line, o.chart_source) for o in read_manifests([path])]
    assert found == [("ServiceAccount", 3, "chart/templates/sa.yaml"), ("ConfigMap", 10, None), ("Secret", 13, None)]


def test_a_manifest_with_braces_left_is_hinted_unrendered(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.yaml", "apiVersion: v1\nkind: ConfigMap\ndata:\n  x: {{.Name}}\n")
    with pytest.raises(StaticInputError) as caught:
        read_manifests([path])
    _one_sentence(str(caught.value), path)
    assert f"{path}:4 is not valid YAML" in str(caught.value) and "an unrendered template?" in str(caught.value)


def test_terraform_plan(tmp_path: Path) -> None:
    path = _write(tmp_path / "plan.json", '{"format_version": "1.2",\n "planned_values": }')
    with pytest.raises(StaticInputError) as caught:
        read_plan(path, SUB, None)
    _one_sentence(str(caught.value), path)
    assert str(caught.value) == (f"the Terraform plan {path}:2 is not valid JSON (column 20: expecting value); "
                                 "a plan is `terraform show -json tfplan`")
    with pytest.raises(StaticInputError) as empty:
        read_plan(_write(tmp_path / "empty.json", ""), SUB, None)
    assert "is empty" in str(empty.value) and "terraform show -json" in str(empty.value)


def test_arm_template_and_parameters(tmp_path: Path) -> None:
    commented = _write(tmp_path / "ok.json", '{\n  // a comment ARM accepts\n  "resources": []\n}\n')
    assert read_template(commented, SUB, "rg", None).resources == []
    path = _write(tmp_path / "t.json", '{\n  // a comment\n  "resources": [,]\n}\n')
    with pytest.raises(StaticInputError) as caught:
        read_template(path, SUB, "rg", None)
    _one_sentence(str(caught.value), path)
    assert str(caught.value).startswith(f"the ARM template {path}:3 is not valid JSON (column 17: ")
    params = _write(tmp_path / "p.json", '{"parameters": {"a": {"value": 1}}')
    with pytest.raises(StaticInputError) as caught:
        read_parameters(params)
    _one_sentence(str(caught.value), params)
    assert str(caught.value).startswith(f"the ARM parameters file {params}:1 is not valid JSON")


def test_diff_and_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path / "results.json", '{"schema": "aksid.results/v1",\n "checks": [}')
    good = _write(tmp_path / "snapshot.json", json.dumps({"schema": "aksid.snapshot/v1"}))
    assert diff_command(bad, good, "text") == 4
    err = capsys.readouterr().err
    _one_sentence(err, bad)
    assert err.startswith(f"aksid diff: OLD {bad}:2 is not valid JSON (column 13: ")
    meta: dict[str, object] = {}
    assert apply_baseline(bad, [], meta, None) == []
    error = meta["baseline"]["error"]  # type: ignore[index]
    _one_sentence(error, bad)
    assert error.startswith(f"the baseline {bad}:2 is not valid JSON")


def test_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path / "results.json", "{\n")
    assert main(["merge", str(bad), "--reports-dir", str(tmp_path / "merged")]) == 4
    err = capsys.readouterr().err
    _one_sentence(err, bad)
    assert err.startswith(f"aksid merge: {bad}:2 is not valid JSON (column 1: ")


def test_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "night1").mkdir()
    bad = _write(tmp_path / "night1" / "results.json", "{,}")
    assert history_command(tmp_path, tmp_path / "history.html") == 4
    err = capsys.readouterr().err
    _one_sentence(err, bad)
    assert err.startswith(f"aksid history: {tmp_path} holds no aksid results.json ({bad}:1 is not valid JSON")
    (tmp_path / "night2").mkdir()
    _write(tmp_path / "night2" / "results.json", json.dumps({"schema": "aksid.results/v1", "started": "x",
                                                              "checks": []}))
    assert history_command(tmp_path, tmp_path / "history.html") == 0
    err = capsys.readouterr().err
    assert err == f"aksid history: passed over {bad}:1 is not valid JSON (column 2: expecting property name enclosed " \
                  "in double quotes)\n"


def test_snapshot(tmp_path: Path) -> None:
    path = _write(tmp_path / "snapshot.json", '{"schema": "aksid.snapshot/v1",\n\n "kube": {]')
    with pytest.raises(ValueError, match="is not valid JSON") as caught:
        Snapshot.load(path)
    _one_sentence(str(caught.value), path)
    assert str(caught.value).startswith(f"the snapshot {path}:3 is not valid JSON (column 11: ")
