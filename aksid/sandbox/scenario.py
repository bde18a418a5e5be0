"""Scenarios: a base environment (`healthy`) and small patches over it, in plain YAML.

A generated scenario of tens of thousands of objects is best written as JSON (which is YAML): it then reads
in about a second instead of ten (aksid.sandbox.bulk), with the same values.

Format (documented in the README):
    name, description, base (built-in name or path relative to this file), target (overrides),
    expect {failed: [IDs], error: [IDs]},
    kube {add: [objects], remove: [{apiVersion, kind, namespace?, name}], patch: [{..., merge: {...}}], faults: [...]},
    azure {add: [resources], remove: [ids], patch: [{id, merge}], faults: [...]},
    dns {parent_delegation: [NS names], servers: {a|b: {soa_serial, records: [{name, type, ttl, values}]}}}
        (how the real DNS servers differ from the Azure record sets; merged over the base's `dns` as an
        RFC 7386 merge patch: mappings merge, a list such as `records` replaces the base's, null deletes)
    tls {issuer, leaf_host, key_type, chain, expired_leaf, served_leaf_differs, serve_intermediates, tls10,
         redirect, page}
        (how the demo host's certificate and edge differ from a good issuance, see aksid.sandbox.edge;
        merged over the base's `tls` the same way)
    rights: DIR or [paths]  (the RBAC manifests and Azure role definitions the least-privilege token holds;
        default: aksid's own deploy/, see aksid.sandbox.serve)

The sandbox writes what it really issued into the base's cert-manager objects before the patches over the base
apply (`prepare_base`), so a scenario that patches a Certificate's times keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aksid.memory import gc_paused
from aksid.paths import scenarios_dir
from aksid.sandbox.bulk import json_copy, load_document
from aksid.sandbox.dns import DnsSandboxError
from aksid.sandbox.dns import validate_staging as validate_dns_staging
from aksid.sandbox.edge import EdgeError, validate_tls_staging
from aksid.sandbox.kube.patch import merge_patch  # RFC 7386, as the fake kube API applies it

_TOP_KEYS = {"name", "description", "base", "target", "expect", "kube", "azure", "dns", "tls", "controllers", "rights"}
# Knobs of the controller models (aksid.sandbox.controllers) for what the stores cannot express.
_CONTROLLER_KNOBS = {"nmi": {"leaky": bool}}
_SECTION_KEYS = {"add", "remove", "patch", "faults"}
_EXPECT_KEYS = {"failed", "error", "mentions"}


class ScenarioError(ValueError):
    """The scenario file is malformed; the message names the file and the problem."""


@dataclass
class Scenario:
    name: str
    description: str
    path: Path
    target: dict[str, Any]
    expect_failed: list[str] = field(default_factory=list)
    expect_error: list[str] = field(default_factory=list)
    # what the red checks' messages must name (a node, a pod): {CHECK-ID: [text, ...]}
    expect_mentions: dict[str, list[str]] = field(default_factory=dict)
    kube_objects: list[dict[str, Any]] = field(default_factory=list)
    kube_faults: list[dict[str, Any]] = field(default_factory=list)
    azure_resources: list[dict[str, Any]] = field(default_factory=list)
    azure_faults: list[dict[str, Any]] = field(default_factory=list)
    dns: dict[str, Any] = field(default_factory=dict)  # the DNS sandbox's staging (aksid.sandbox.dns.start_dns)
    tls: dict[str, Any] = field(default_factory=dict)  # the certificate and edge staging (aksid.sandbox.edge)
    controllers: dict[str, Any] = field(default_factory=dict)  # knobs of the controller models (provision mode)
    # aksid's own rights that the least-privilege token holds: a deploy/ directory (or files) like the repository's
    rights: list[str] | None = None

    @property
    def dns_zone_id(self) -> str:
        """The id of the target's zone, as the target's values spell it (compare case-insensitively)."""
        t = self.target
        return (f"/subscriptions/{t.get('subscription_id')}/resourceGroups/{t.get('dns_resource_group')}"
                f"/providers/Microsoft.Network/dnszones/{str(t.get('domain', '')).rstrip('.')}")

    def dns_zone(self) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The target's zone resource and its record sets (`<zone id>/<TYPE>/<name>`), or None when Azure has no zone."""
        zone_id = self.dns_zone_id.lower()
        zone = next((r for r in self.azure_resources if str(r.get("id", "")).lower() == zone_id), None)
        if zone is None:
            return None
        record_sets = [
            r for r in self.azure_resources
            if str(r.get("id", "")).lower().startswith(zone_id + "/")
            and str(r["id"])[len(zone_id) + 1:].count("/") == 1
            and str(r.get("type", "")).lower().startswith("microsoft.network/dnszones/")
        ]
        return zone, record_sets


def load_prepared(path: Path) -> Scenario:
    """A scenario runtime.up prepared and wrote as JSON (its fields, path as text)."""
    with gc_paused():
        document = json.loads(path.read_text(encoding="utf-8"))
    return Scenario(**{**document, "path": Path(document["path"])})


def builtin_dir() -> Path:
    return scenarios_dir()


def builtin_names() -> list[str]:
    return sorted(path.stem for path in builtin_dir().glob("*.yaml"))


@dataclass(frozen=True)
class ScenarioSummary:
    """What a listing shows of a scenario: the name to pass to --scenario, and its own description and
    expectation (neither is inherited from its base)."""

    name: str
    description: str
    expect_failed: list[str]
    expect_error: list[str]


def builtin_summaries() -> list[ScenarioSummary]:
    """Each built-in scenario as `aksid scenarios` lists it, read from its own file only: loading every scenario
    with its bases (each a patch over the 230 KB `healthy`) took 4-10 s just to print names."""
    found = []
    for name in builtin_names():
        path = builtin_dir() / f"{name}.yaml"
        document = _read(path)
        expect = _mapping(document.get("expect"), path, "expect")
        # the same reading as load_scenario's, so a listing never disagrees with what a run loads
        found.append(ScenarioSummary(name, str(document.get("description") or ""),
                                     _ids(expect.get("failed"), path, "expect.failed"),
                                     _ids(expect.get("error"), path, "expect.error")))
    return found


def flattened(scenario: Scenario) -> dict[str, Any]:
    """The scenario as one file without `base` (its bases applied): loading this document gives the same
    scenario, so `aksid scenarios show` prints what a run really stages."""
    expect: dict[str, Any] = {"failed": scenario.expect_failed, "error": scenario.expect_error}
    if scenario.expect_mentions:
        expect["mentions"] = scenario.expect_mentions
    document: dict[str, Any] = {
        "name": scenario.name, "description": scenario.description, "target": scenario.target, "expect": expect,
        "kube": {"add": scenario.kube_objects, "faults": scenario.kube_faults},
        "azure": {"add": scenario.azure_resources, "faults": scenario.azure_faults},
        "dns": scenario.dns, "tls": scenario.tls, "controllers": scenario.controllers,
    }
    if scenario.rights is not None:
        document["rights"] = scenario.rights
    return json_copy(document)


def load_base(scenario: Scenario) -> Scenario | None:
    """The scenario its file is a patch over (its `base:`, itself loaded with its bases), None for a root."""
    base = _read(scenario.path).get("base")
    return load_scenario(str(base), scenario.path.parent) if base else None


def resolve_path(reference: str, relative_to: Path | None = None) -> Path:
    """A built-in name (`healthy`) or a path (absolute, or relative to `relative_to`)."""
    if "/" not in reference and not reference.endswith((".yaml", ".yml")):
        path = builtin_dir() / f"{reference}.yaml"
        if not path.is_file():
            raise ScenarioError(f"no built-in scenario '{reference}' (known: {', '.join(builtin_names())})")
        return path
    path = Path(reference).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    if not path.is_file():
        raise ScenarioError(f"the scenario file {path} does not exist")
    return path.resolve()


def load_scenario(
    reference: str,
    relative_to: Path | None = None,
    _seen: tuple[Path, ...] = (),
    *,
    prepare_base: Callable[[Scenario], None] | None = None,
    documents: dict[Path, dict[str, Any]] | None = None,
) -> Scenario:
    """Read a scenario and its bases; `prepare_base` is applied to the root base (the file without `base`)
    once it is built, before any scenario over it applies its patches.

    `documents` (path -> parsed file) lets a caller that loads the same scenario twice read each file once;
    the scenario built never shares its objects with those documents."""
    path = resolve_path(reference, relative_to)
    if path in _seen:
        raise ScenarioError(f"the scenario {path} is its own base (cycle through {', '.join(map(str, _seen))})")
    document = _read(path, documents)
    if document.get("base"):
        scenario = load_scenario(str(document["base"]), path.parent, (*_seen, path), prepare_base=prepare_base,
                                 documents=documents)
    elif "base" in document:
        raise ScenarioError(f"{path}: 'base' is empty")
    else:
        scenario = Scenario(name="", description="", path=path, target={})
    scenario.path = path
    scenario.name = str(document.get("name") or path.stem)
    scenario.description = str(document.get("description") or "")
    scenario.target = {**scenario.target, **json_copy(_mapping(document.get("target"), path, "target"))}
    expect = _mapping(document.get("expect"), path, "expect")
    _known_keys(expect, _EXPECT_KEYS, path, "expect")
    scenario.expect_failed = _ids(expect.get("failed"), path, "expect.failed")
    scenario.expect_error = _ids(expect.get("error"), path, "expect.error")
    scenario.expect_mentions = _mentions(expect.get("mentions"), scenario, path)
    _apply_kube(scenario, _mapping(document.get("kube"), path, "kube"), path)
    _apply_azure(scenario, _mapping(document.get("azure"), path, "azure"), path)
    _apply_dns(scenario, _mapping(document.get("dns"), path, "dns"), path)
    _apply_tls(scenario, document.get("tls"), path)
    scenario.controllers = merge_patch(scenario.controllers, _controller_knobs(document.get("controllers"), path))
    if document.get("rights") is not None:
        scenario.rights = _rights(document["rights"], path)
    if prepare_base is not None and not document.get("base"):
        prepare_base(scenario)
    return scenario


def _read(path: Path, documents: dict[Path, dict[str, Any]] | None = None) -> dict[str, Any]:
    if documents is not None and path in documents:
        return documents[path]
    try:
        document = load_document(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ScenarioError(f"the scenario {path} is not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise ScenarioError(f"the scenario {path} must be a YAML mapping")
    _known_keys(document, _TOP_KEYS, path, "the top level")
    if documents is not None:
        documents[path] = document
    return document


def _known_keys(mapping: dict[str, Any], known: set[str], path: Path, where: str) -> None:
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ScenarioError(f"{path}: unknown key(s) {', '.join(unknown)} in {where} (known: {', '.join(sorted(known))})")


def _mapping(value: Any, path: Path, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScenarioError(f"{path}: '{where}' must be a mapping")
    return value


def _list(value: Any, path: Path, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ScenarioError(f"{path}: '{where}' must be a list")
    return value


def _ids(value: Any, path: Path, where: str) -> list[str]:
    return [str(item) for item in _list(value, path, where)]


def _mentions(value: Any, scenario: Scenario, path: Path) -> dict[str, list[str]]:
    mentions = {str(check_id): _ids(texts, path, f"expect.mentions.{check_id}")
                for check_id, texts in _mapping(value, path, "expect.mentions").items()}
    stray = sorted(set(mentions) - set(scenario.expect_failed) - set(scenario.expect_error))
    if stray:
        raise ScenarioError(f"{path}: expect.mentions names {', '.join(stray)}, which the scenario does not expect red")
    return mentions


def _kube_identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("apiVersion")), str(obj.get("kind")), str(obj.get("namespace") or meta.get("namespace") or ""),
            str(obj.get("name") or meta.get("name")))


def _apply_kube(scenario: Scenario, section: dict[str, Any], path: Path) -> None:
    """remove, then patch, then add; objects are found through an index by identity (a scenario of tens of
    thousands of objects would otherwise take minutes to scan for each one), and keep their order."""
    _known_keys(section, _SECTION_KEYS, path, "kube")
    objects: list[dict[str, Any] | None] = list(scenario.kube_objects)
    index: dict[tuple[str, str, str, str], int] = {}
    for position, obj in enumerate(objects):
        index.setdefault(_kube_identity(obj), position)
    for ref in _list(section.get("remove"), path, "kube.remove"):
        objects[index.pop(_find_kube(index, ref, path, "kube.remove"))] = None
    for ref in _list(section.get("patch"), path, "kube.patch"):
        if not isinstance(ref, dict) or not isinstance(ref.get("merge"), dict):
            raise ScenarioError(f"{path}: each kube.patch entry needs apiVersion, kind, name and a 'merge' mapping")
        identity = _find_kube(index, ref, path, "kube.patch")
        position = index.pop(identity)
        objects[position] = merge_patch(objects[position], ref["merge"])
        renamed = _kube_identity(objects[position])  # a merge may rename the object; the first one wins
        if index.get(renamed, position) >= position:
            index[renamed] = position
    with gc_paused():
        for obj in _list(section.get("add"), path, "kube.add"):
            if not isinstance(obj, dict) or not {"apiVersion", "kind"} <= set(obj) or not obj.get("metadata", {}).get("name"):
                raise ScenarioError(f"{path}: each kube.add entry must be an object with apiVersion, kind, metadata.name")
            identity = _kube_identity(obj)
            if identity in index:
                raise ScenarioError(f"{path}: kube.add {'/'.join(identity)} already exists; use kube.patch")
            index[identity] = len(objects)
            objects.append(json_copy(obj))
    scenario.kube_objects = [obj for obj in objects if obj is not None]
    scenario.kube_faults = [*scenario.kube_faults, *json_copy(_list(section.get("faults"), path, "kube.faults"))]


def _find_kube(index: dict[tuple[str, str, str, str], int], ref: Any, path: Path, where: str) -> tuple[str, str, str, str]:
    if not isinstance(ref, dict) or not {"apiVersion", "kind", "name"} <= set(ref):
        raise ScenarioError(f"{path}: each {where} entry needs apiVersion, kind, name (and namespace if namespaced)")
    wanted = _kube_identity(ref)
    if wanted not in index:
        raise ScenarioError(f"{path}: {where} names {'/'.join(part for part in wanted if part)}, which the base does not have")
    return wanted


def _apply_azure(scenario: Scenario, section: dict[str, Any], path: Path) -> None:
    _known_keys(section, _SECTION_KEYS, path, "azure")
    resources = scenario.azure_resources
    for resource_id in _list(section.get("remove"), path, "azure.remove"):
        wanted = str(resource_id).lower().rstrip("/")
        kept = [r for r in resources if not (r["id"].lower() == wanted or r["id"].lower().startswith(wanted + "/"))]
        if len(kept) == len(resources):
            raise ScenarioError(f"{path}: azure.remove names {resource_id}, which the base does not have")
        resources[:] = kept
    for ref in _list(section.get("patch"), path, "azure.patch"):
        if not isinstance(ref, dict) or "id" not in ref or not isinstance(ref.get("merge"), dict):
            raise ScenarioError(f"{path}: each azure.patch entry needs an 'id' and a 'merge' mapping")
        index = next((i for i, r in enumerate(resources) if r["id"].lower() == str(ref["id"]).lower()), None)
        if index is None:
            raise ScenarioError(f"{path}: azure.patch names {ref['id']}, which the base does not have")
        resources[index] = merge_patch(resources[index], ref["merge"])
    known = {r["id"].lower() for r in resources}  # a set, not a scan per added resource
    for resource in _list(section.get("add"), path, "azure.add"):
        if not isinstance(resource, dict) or not resource.get("id"):
            raise ScenarioError(f"{path}: each azure.add entry must be a resource with an 'id'")
        if resource["id"].lower() in known:
            raise ScenarioError(f"{path}: azure.add {resource['id']} already exists; use azure.patch")
        known.add(resource["id"].lower())
        resources.append(json_copy(resource))
    scenario.azure_faults = [*scenario.azure_faults, *json_copy(_list(section.get("faults"), path, "azure.faults"))]


def _apply_dns(scenario: Scenario, section: dict[str, Any], path: Path) -> None:
    """`dns:` is the DNS sandbox's staging, merged over the base's (RFC 7386: lists replace, null deletes)."""
    try:
        validate_dns_staging(section)
        merged = merge_patch(scenario.dns, section)
        validate_dns_staging(merged)
    except DnsSandboxError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    scenario.dns = merged


def _rights(value: Any, path: Path) -> list[str]:
    """`rights: DIR` or a list of files/directories, relative to the scenario file; each must exist."""
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) and e for e in entries):
        raise ScenarioError(f"{path}: 'rights' must be a path or a list of paths (deploy/ directories or files)")
    resolved = []
    for entry in entries:
        where = Path(entry).expanduser()
        where = where if where.is_absolute() else path.parent / where
        if not where.exists():
            raise ScenarioError(f"{path}: rights names {where}, which does not exist")
        resolved.append(str(where.resolve()))
    return resolved


def _controller_knobs(section: Any, path: Path) -> dict[str, Any]:
    """`controllers: {nmi: {leaky: true}}`: keys and types checked when the file is read."""
    knobs = _mapping(section, path, "controllers")
    _known_keys(knobs, set(_CONTROLLER_KNOBS), path, "controllers")
    for name, settings in knobs.items():
        settings = _mapping(settings, path, f"controllers.{name}")
        _known_keys(settings, set(_CONTROLLER_KNOBS[name]), path, f"controllers.{name}")
        for key, value in settings.items():
            if value is not None and not isinstance(value, _CONTROLLER_KNOBS[name][key]):
                raise ScenarioError(f"{path}: controllers.{name}.{key} must be a {_CONTROLLER_KNOBS[name][key].__name__}")
    return knobs


def _apply_tls(scenario: Scenario, section: Any, path: Path) -> None:
    """`tls:` is the certificate and edge staging, merged over the base's (RFC 7386, like `dns:`)."""
    try:
        if section is not None and not isinstance(section, dict):
            raise EdgeError("'tls' must be a mapping")
        validate_tls_staging({key: value for key, value in (section or {}).items() if value is not None})  # null deletes
        merged = merge_patch(scenario.tls, section or {})
        validate_tls_staging(merged)
    except EdgeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    scenario.tls = merged
