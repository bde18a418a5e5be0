"""Kubernetes YAML as repos hold it: plain files, multi-document streams, `List` kinds, `kubectl get -o yaml`,
and `helm template` / `helmfile template` / `kustomize build` output, whose `# Source:` comments name the
chart file each document came from. Every object keeps where it came from (file, line, chart source)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.collect.static.errors import StaticInputError
from aksid.userfiles import UserFileError, read_text, yaml_documents

_SOURCE = re.compile(r"^# Source: (\S.*)$")
_SUFFIXES = (".yaml", ".yml", ".json")
_WHAT = "the manifest file"


@dataclass(frozen=True)
class Located:
    obj: dict[str, Any]
    path: Path
    line: int  # 1-based line of the object's first key
    chart_source: str | None  # `# Source: chart/templates/file.yaml`, when rendered by helm


def manifest_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise StaticInputError(f"the manifests path {path} does not exist")
    return files


def read_manifests(paths: Iterable[Path]) -> list[Located]:
    """Every Kubernetes object in the files, in order; malformed YAML raises StaticInputError naming file:line."""
    found: list[Located] = []
    for path in manifest_files(paths):
        try:
            text = read_text(path, _WHAT)
        except UserFileError as exc:
            raise StaticInputError(str(exc)) from None
        found += list(_objects_of(path, text))
    return found


# A Helm / Go template directive as charts write them (`{{ .Values.x }}`, `{{- include ... }}`, `{{ if }}`); a
# rendered manifest may still hold `{{.Name}}` inside a value (external-dns' --fqdn-template), which is no directive.
_DIRECTIVE = re.compile(r"\{\{-?\s*(?:\.Values|\.Release|\.Chart|\.Capabilities|\.Files|\$|include\b|template\b|"
                        r"toYaml\b|tpl\b|if\b|else\b|end\b|range\b|with\b|define\b|/\*|env\b|requiredEnv\b|exec\b|readFile\b|"
                        r"default\b|required\b|printf\b|quote\b)")


def _unrendered(path: Path, text: str) -> StaticInputError | None:
    match = _DIRECTIVE.search(text)
    if match is None:
        return None
    line = text.count("\n", 0, match.start()) + 1
    return StaticInputError(
        f"{path}:{line} is an unrendered template ({text[match.start():match.end()].strip()} ...): render the chart first "
        "(`helm template RELEASE CHART -f values.yaml > rendered.yaml`, `helmfile template` or `kustomize build`) "
        "and give aksid the output")


def _objects_of(path: Path, text: str) -> Iterator[Located]:
    lines = text.splitlines()
    unrendered = _unrendered(path, text)
    if unrendered is not None:
        raise unrendered
    try:
        documents = yaml_documents(text, path, _WHAT)
    except UserFileError as exc:
        hint = "; an unrendered template? render it first" if "{{" in text else ""
        raise StaticInputError(f"{exc}{hint}") from None
    for entry in documents:
        document, node = entry.value, entry.node
        if not isinstance(document, dict):
            continue
        source = _chart_source(lines, entry.line - 1)
        if document.get("kind") == "List" or (str(document.get("kind", "")).endswith("List") and "items" in document):
            items = next((value for key, value in node.value if key.value == "items"), None)
            for item_node, item in zip(getattr(items, "value", []) or [], document.get("items") or [], strict=False):
                if isinstance(item, dict) and item.get("kind"):
                    yield Located(item, path, item_node.start_mark.line + 1, source)
        elif document.get("kind") and document.get("apiVersion"):
            yield Located(document, path, entry.line, source)


def _chart_source(lines: list[str], start: int) -> str | None:
    """The `# Source:` comment just above a document (helm writes it after the `---`)."""
    for index in range(min(start, len(lines)) - 1, -1, -1):
        line = lines[index].strip()
        match = _SOURCE.match(line)
        if match:
            return match.group(1)
        if line == "---" or (line and not line.startswith("#")):
            return None
    return None
