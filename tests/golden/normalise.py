"""A run's results.json with what differs between two runs of the same code taken out, and the differences
between two such documents worded by check and subject (tests/test_same_results.py, tests/golden/regenerate.py).

What is normalised, and why (each found by running the same code twice, or more, and diffing; nothing else is
touched, so an outcome, a message, a fix, an evidence value or the order of the checks still counts):

- `started`, and every ISO 8601 time in any string (`2026-12-07T07:55:34+00:00`, `2027-03-07T07:55:33Z`,
  `2026-12-07 07:55`) -> `<time>`: the wall clock of the run (the snapshot's `created`), and the sandbox's
  certificates, issued at start-up (Certificate status.notAfter/renewalTime, "valid ... to ..." in notes).
- a provision run id (`20261207t0755-72f3c5`: minute and random hex) -> `<run-id>`, wherever it appears, so
  the names derived from it too: the run namespace `aksid-<run-id>`, probe pods `aksid-probe-bound-<run-id>`,
  subjects (`run/<run-id>`) and pytest node ids.
- `snapshot` paths: the reports folder (the folder of the top-level `snapshot`, a temp folder of the test or of
  the regenerate script) -> `<reports>`.
- the demo's sandbox state folder (`tempfile.mkdtemp(prefix="aksid-sandbox-")`: kubeconfig, ca.crt, arm-token,
  public-roots.pem in the target and in evidence) -> `<sandbox-state>`; any other path under the temp folder
  (`/tmp/...`) -> `<tmp>/...` with only its last part kept.
- ports of the sandbox's servers on loopback, ephemeral per start: `127.x.x.x:PORT`, `localhost:PORT`,
  `[::1]:PORT` in any string, the target's `tls_https_port` / `tls_http_port`, and an evidence value whose
  field ends in `port`. Each port is named by the target field that declares it (`<arm-port>`,
  `<acme-prod-port>`, `<acme-staging-port>`, `<dns-port>`, `<tls-https-port>`, `<tls-http-port>`), so a check
  that looked at the wrong server still shows; a loopback port no target field names -> `<port>`. Ports below
  1024 (static mode's 443/80) are kept.
- the sandbox CA's names: pebble names its root and intermediate with a random 6-hex suffix per start
  (`Pebble Intermediate CA 421abc`) -> `Pebble Intermediate CA <ca-1>`, numbered by first appearance, so the
  same CA keeps one name across the document.
- certificate serials in notes (`serial 4c1243301f18dfda`) -> `serial <serial-1>`, numbered by first
  appearance: the sandbox issues new certificates at every start.
- certificate digests: the `{"sha256", "size"}` value of an evidence item whose note describes a certificate
  ("subject ... serial ...") -> sha256 `<sha256-1>` (numbered by first appearance, so "the served leaf is the
  Secret's" still shows) and size `<size>` (a DER serial or ECDSA signature is a byte shorter now and then).
  Other digests (the demo page's body) are kept: they do not vary.
- the Python version in a server banner (`BaseHTTP/0.6 Python/3.11.7`, what the sandbox's IMDS/NMI answers a
  provision probe with) -> `Python/<version>`: a fact about the interpreter, not the code.

Numbering walks the document with dict keys sorted, so a change of key order alone renames nothing.
No list is sorted: in repeated runs (attach healthy/healthy-wi, provision healthy, static tutorial) the order of
the checks, of their evidence and of every list inside was always the same, so an order change is reported.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from collections.abc import Callable
from typing import Any

RUN_ID = re.compile(r"\b\d{8}t\d{4}-[0-9a-f]{6}\b")
TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
LOOPBACK_PORT = re.compile(r"(127(?:\.\d{1,3}){3}|localhost|\[::1\]):(\d{1,5})\b")
SANDBOX_STATE = re.compile(r"(?:/[^\s\"',;=]+)*/aksid-sandbox-[A-Za-z0-9_]+")
CA_NAME = re.compile(r"\b(Pebble (?:Root|Intermediate) CA) ([0-9a-f]{6})\b")
SERIAL = re.compile(r"\bserial ([0-9a-f]+)\b")
PYTHON_BANNER = re.compile(r"\bPython/\d+\.\d+\.\d+\S*")

# the target fields whose loopback ports name the sandbox's servers
PORT_FIELDS = {"arm_endpoint": "arm-port", "acme_prod_server": "acme-prod-port",
               "acme_staging_server": "acme-staging-port", "dns_parent_servers": "dns-port",
               "dns_server_addresses": "dns-port", "tls_https_port": "tls-https-port", "tls_http_port": "tls-http-port"}
EPHEMERAL = 1024


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a results.json document with the run-to-run differences replaced (see the module's list)."""
    document = copy.deepcopy(document)
    ports = _port_names(document)
    reports = _reports_dir(document)
    numbered = _Numbering()

    def text(value: str) -> str:
        value = RUN_ID.sub("<run-id>", value)
        if reports:
            value = value.replace(reports, "<reports>")
        value = SANDBOX_STATE.sub("<sandbox-state>", value)
        value = _temp_paths(value)
        value = TIME.sub("<time>", value)
        value = LOOPBACK_PORT.sub(lambda m: f"{m.group(1)}:<{ports.get(int(m.group(2)), 'port')}>", value)
        value = CA_NAME.sub(lambda m: f"{m.group(1)} <{numbered('ca', m.group(2))}>", value)
        value = SERIAL.sub(lambda m: f"serial <{numbered('serial', m.group(1))}>", value)
        return PYTHON_BANNER.sub("Python/<version>", value)

    def port(value: Any) -> Any:
        number = int(value) if isinstance(value, int | str) and str(value).isdigit() else None
        if number is None or number < EPHEMERAL:
            return value
        return f"<{ports.get(number, 'port')}>"

    if "started" in document:
        document["started"] = "<time>"
    for target in _targets(document):
        for field in ("tls_https_port", "tls_http_port"):
            if field in target:
                target[field] = port(target[field])
    for check in document.get("checks") or []:
        for item in check.get("evidence") or []:
            if not isinstance(item, dict):
                continue
            if str(item.get("field", "")).endswith("port"):
                item["value"] = port(item.get("value"))
            value = item.get("value")
            if _is_certificate(item) and isinstance(value, dict) and "sha256" in value:
                value["sha256"] = f"<{numbered('sha256', value['sha256'])}>"
                if "size" in value:
                    value["size"] = "<size>"
    return _walk(document, text)


def canonical(document: Any) -> str:
    """The text a golden file holds: indented, keys in the order the run wrote them, one newline at the end."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def differences(golden: dict[str, Any], actual: dict[str, Any], limit: int = 40) -> list[str]:
    """What differs, worded for a reader: checks by `ID [subject]` first (missing, added, then field by field in
    the golden's order), then the order of the checks, then everything else by its JSON path."""
    lines: list[str] = []
    old_checks, new_checks = golden.get("checks") or [], actual.get("checks") or []
    old, new = _by_key(old_checks), _by_key(new_checks)
    for key in old:
        if key not in new:
            lines.append(f"check {_name(key)}: in the golden, missing now (outcome was {_short(old[key].get('outcome'))})")
    for key in new:
        if key not in old:
            lines.append(f"check {_name(key)}: new now, not in the golden (outcome {_short(new[key].get('outcome'))})")
    for key, check in old.items():
        if key in new and check != new[key]:
            lines += [f"check {_name(key)}: {line}" for line in _field_differences(check, new[key])]
    common_old = [key for key in old if key in new]
    common_new = [key for key in new if key in old]
    if common_old != common_new:
        at = next(i for i, (a, b) in enumerate(zip(common_old, common_new, strict=True)) if a != b)
        lines.append(f"order of the checks: position {at} was {_name(common_old[at])}, is now {_name(common_new[at])}")
    rest_old = {k: v for k, v in golden.items() if k != "checks"}
    rest_new = {k: v for k, v in actual.items() if k != "checks"}
    lines += _field_differences(rest_old, rest_new)
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines


# -- helpers ----------------------------------------------------------------------------------------


class _Numbering:
    """`<kind-N>` by first appearance (the document walked with sorted keys, see _walk's order)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], str] = {}
        self.count: dict[str, int] = {}

    def __call__(self, kind: str, value: str) -> str:
        if (kind, value) not in self.seen:
            self.count[kind] = self.count.get(kind, 0) + 1
            self.seen[(kind, value)] = f"{kind}-{self.count[kind]}"
        return self.seen[(kind, value)]


def _walk(value: Any, text: Callable[[str], str]) -> Any:
    """Every string (keys included) through `text`, dict keys visited in sorted order, the dict's order kept."""
    if isinstance(value, dict):
        done = {key: (text(key), _walk(value[key], text)) for key in sorted(value)}
        return {done[key][0]: done[key][1] for key in value}
    if isinstance(value, list):
        return [_walk(item, text) for item in value]
    if isinstance(value, str):
        return text(value)
    return value


def _targets(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = [document["target"]] if isinstance(document.get("target"), dict) else []
    return found + [t["target"] for t in document.get("targets") or [] if isinstance(t.get("target"), dict)]


def _port_names(document: dict[str, Any]) -> dict[int, str]:
    names: dict[int, str] = {}
    for target in _targets(document):
        for field, name in PORT_FIELDS.items():
            value = target.get(field)
            if value is None:
                continue
            numbers = [int(value)] if str(value).isdigit() else [int(m.group(2)) for m in LOOPBACK_PORT.finditer(str(value))]
            for number in numbers:
                if number >= EPHEMERAL:
                    names.setdefault(number, name)
    return names


def _reports_dir(document: dict[str, Any]) -> str | None:
    snapshot = document.get("snapshot")
    if not isinstance(snapshot, str) or "/" not in snapshot:
        return None
    return snapshot.rsplit("/", 1)[0]


def _temp_paths(value: str) -> str:
    root = re.escape(tempfile.gettempdir().rstrip("/"))
    return re.sub(rf"{root}(?:/[^\s\"',;:=]+)*/([^\s\"',;:=/]+)", r"<tmp>/\1", value) if root else value


def _is_certificate(item: dict[str, Any]) -> bool:
    note = item.get("note")
    return isinstance(note, str) and note.startswith("subject ") and " serial " in note


def _by_key(checks: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    keyed: dict[tuple[str, str, str], dict[str, Any]] = {}
    for check in checks:
        key = (str(check.get("id")), str(check.get("subject")), str(check.get("target")))
        n = 1
        while key in keyed:  # the same check and subject twice: told apart by position
            n += 1
            key = (key[0], key[1].split(" #")[0] + f" #{n}", key[2])
        keyed[key] = check
    return keyed


def _name(key: tuple[str, str, str]) -> str:
    return f"{key[0]} [{key[1]}]"


def _field_differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Leaf by leaf, in `old`'s order; `outcome` and `message` first when a check is compared."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in ("outcome", "message") if k in old] + [k for k in old if k not in ("outcome", "message")]
        lines = []
        for key in keys:
            where = f"{path}.{key}" if path else key
            if key not in new:
                lines.append(f"{where}: missing now (golden {_short(old[key])})")
            else:
                lines += _field_differences(old[key], new[key], where)
        lines += [f"{path}.{key}: new now ({_short(new[key])})" if path else f"{key}: new now ({_short(new[key])})"
                  for key in new if key not in old]
        return lines
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{path}: {len(old)} items in the golden, {len(new)} now: golden {_short(old)}, now {_short(new)}"]
        return [line for i, (a, b) in enumerate(zip(old, new, strict=True)) for line in _field_differences(a, b, f"{path}[{i}]")]
    if old != new:
        return [f"{path}: golden {_short(old)}, now {_short(new)}"]
    return []


def _short(value: Any, width: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."
