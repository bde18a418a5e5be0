"""Label and field selectors with the Kubernetes API server's grammar, semantics and error messages.

Label selectors (k8s.io/apimachinery/pkg/labels): comma-joined requirements, each one of
`key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`, `key>n`, `key<n`.
`!=` and `notin` also match objects without the label, as on a real cluster.

Field selectors (k8s.io/apimachinery/pkg/fields): comma-joined `field=v`, `field==v`, `field!=v`,
with `\\` escaping `,`, `=` and `\\` inside values. Which fields are selectable depends on the kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from aksid.sandbox.kube.jsonpath import jsonpath_values
from aksid.sandbox.kube.resources import KubeObject, Resource

_NO_LABELS: Mapping[str, str] = MappingProxyType({})  # what a selector sees of an object without labels


class SelectorError(ValueError):
    """The selector is malformed or names an unsupported field; the API answers 400 BadRequest."""


# --- label selectors ------------------------------------------------------------------------

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# The lexer's special characters; everything else up to whitespace is an identifier.
_SPECIAL = "!=,()<>"
_OPERATORS = ("!=", "==", "=", "!", ",", "(", ")", "<", ">")


@dataclass(frozen=True)
class _Token:
    kind: str  # "ident", "end", or the operator text itself
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
            continue
        if char in _SPECIAL:
            # Longest match first, so that `!=` is not read as `!` then `=`.
            operator = next(op for op in _OPERATORS if text.startswith(op, index))
            tokens.append(_Token(operator, operator))
            index += len(operator)
            continue
        start = index
        while index < len(text) and not text[index].isspace() and text[index] not in _SPECIAL:
            index += 1
        tokens.append(_Token("ident", text[start:index]))
    tokens.append(_Token("end", ""))
    return tokens


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # exists, !, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def test(self) -> Callable[[Mapping[str, str]], bool]:
        """`matches` as one small function: a selector scanning tens of thousands of objects calls it for each."""
        key, values = self.key, frozenset(self.values)
        if self.operator == "exists":
            return lambda labels: key in labels
        if self.operator == "!":
            return lambda labels: key not in labels
        if self.operator in ("=", "in"):
            return lambda labels: labels.get(key) in values  # an absent label gives None, in no set of strings
        if self.operator in ("!=", "notin"):
            return lambda labels: labels.get(key) not in values
        return self.matches

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        # gt / lt compare integers; a label that is not an integer never matches.
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return present and (number > bound if self.operator == "gt" else number < bound)


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def predicate(self) -> Callable[[Mapping[str, str] | None], bool]:
        """`matches`, with each requirement made a small function once rather than interpreted per object."""
        tests = [requirement.test() for requirement in self.requirements]
        if len(tests) == 1:
            only = tests[0]
            return lambda labels: only(labels or _NO_LABELS)
        return lambda labels: all(test(labels or _NO_LABELS) for test in tests)

    @property
    def empty(self) -> bool:
        return not self.requirements


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self) -> _Token:
        return self.tokens[self.position]

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def fail(self, token: _Token, expected: str) -> SelectorError:
        return SelectorError(f"unable to parse requirement: found '{token.text}', expected: {expected}")

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        if self.peek().kind == "end":
            return LabelSelector()
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token.kind == "end":
                return LabelSelector(tuple(requirements))
            if token.kind != ",":
                raise self.fail(token, "',' or 'end of string'")

    def requirement(self) -> Requirement:
        token = self.take()
        if token.kind == "!":
            key = self.key()
            if self.peek().kind not in (",", "end"):
                raise self.fail(self.peek(), "',' or 'end of string'")
            return Requirement(key, "!")
        self.position -= 1
        key = self.key()
        token = self.peek()
        if token.kind in (",", "end"):
            return Requirement(key, "exists")
        self.take()
        if token.kind == "ident" and token.text in ("in", "notin"):
            return Requirement(key, token.text, self.value_set(key))
        if token.kind in ("=", "==", "!="):
            return Requirement(key, "!=" if token.kind == "!=" else "=", (self.exact_value(key),))
        if token.kind in ("<", ">"):
            value = self.exact_value(key)
            if not re.fullmatch(r"-?\d+", value):
                raise SelectorError(f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be "
                                    f"an integer, not {value!r}")
            return Requirement(key, "gt" if token.kind == ">" else "lt", (value,))
        raise self.fail(token, "'=', '!=', '==', 'in', 'notin'")

    def key(self) -> str:
        token = self.take()
        if token.kind != "ident":
            raise self.fail(token, "identifier")
        _validate_key(token.text)
        return token.text

    def exact_value(self, key: str) -> str:
        if self.peek().kind in (",", "end"):
            return ""  # `key=` selects the empty value
        token = self.take()
        if token.kind != "ident":
            raise self.fail(token, "identifier")
        _validate_value(key, token.text)
        return token.text

    def value_set(self, key: str) -> tuple[str, ...]:
        token = self.take()
        if token.kind != "(":
            raise self.fail(token, "'('")
        values: list[str] = []
        expect_value = True
        while True:
            token = self.take()
            if token.kind == ")":
                if expect_value and values:
                    values.append("")  # `(a,)` lists the empty value, as upstream
                break
            if token.kind == "," and not expect_value:
                expect_value = True
                continue
            if token.kind == "," and expect_value:
                values.append("")
                continue
            if token.kind != "ident" or not expect_value:
                raise self.fail(token, "',', ')' or identifier")
            _validate_value(key, token.text)
            values.append(token.text)
            expect_value = False
        if not values:
            raise SelectorError("unable to parse requirement: for 'in', 'notin' operators, values set can't be empty")
        return tuple(values)


def _validate_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        problems.append("prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _NAME.match(name):
        problems.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
                        "and end with an alphanumeric character, at most 63 characters")
    if problems:
        raise SelectorError(f"unable to parse requirement: key: Invalid value: {key!r}: {'; '.join(problems)}")


def _validate_value(key: str, value: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(
            f"unable to parse requirement: values[0][{key}]: Invalid value: {value!r}: a valid label must be an "
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
            "an alphanumeric character, at most 63 characters"
        )


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a `labelSelector` query value; an absent or blank one selects everything."""
    return _LabelParser(text or "").parse()


# --- field selectors ------------------------------------------------------------------------

FieldGetter = Callable[[dict[str, Any]], str]


def _path(*keys: str) -> FieldGetter:
    def get(obj: dict[str, Any]) -> str:
        value: Any = obj
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return get


# Every kind accepts metadata.name and metadata.namespace (the API's default conversion).
COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

# Extra selectable fields per (group, kind), as registered by kube-apiserver 1.32.
KIND_FIELDS: dict[tuple[str, str], dict[str, FieldGetter]] = {
    ("", "Pod"): {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": lambda obj: "true" if (obj.get("spec") or {}).get("hostNetwork") else "false",
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    ("", "Namespace"): {"status.phase": _path("status", "phase")},
    ("", "Node"): {"spec.unschedulable": lambda obj: "true" if (obj.get("spec") or {}).get("unschedulable") else "false"},
    ("", "Secret"): {"type": _path("type")},
    ("", "Event"): {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    ("apps", "ReplicaSet"): {"status.replicas": _path("status", "replicas")},
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negate: bool
    value: str
    getter: FieldGetter

    def matches(self, obj: dict[str, Any]) -> bool:
        return (self.getter(obj) == self.value) != self.negate


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(requirement.matches(obj) for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Find the first unescaped operator, trying `!=`, `==`, `=` at each position (as upstream)."""
    index = 0
    while index < len(term):
        if term[index] == "\\":
            index += 2
            continue
        for operator in ("!=", "==", "="):
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator):]
        index += 1
    return None


def _unescape(value: str) -> str:
    out, escaped = [], False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector: unescaped {char!r} in value")
        else:
            out.append(char)
    if escaped:
        raise SelectorError("invalid field selector: trailing backslash in value")
    return "".join(out)


def parse_field_selector(text: str | None, fields: Mapping[str, FieldGetter]) -> FieldSelector:
    """Parse a `fieldSelector` against the fields the kind supports (`fields_for`)."""
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text or "", ","):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, operator, raw_value = split
        getter = fields.get(field)
        if getter is None:
            raise SelectorError(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, operator == "!=", _unescape(raw_value), getter))
    return FieldSelector(tuple(requirements))


def fields_for(group: str, kind: str) -> dict[str, FieldGetter]:
    return {**COMMON_FIELDS, **KIND_FIELDS.get((group, kind), {})}


def selectable_fields(resource: Resource) -> dict[str, FieldGetter]:
    """The fields a fieldSelector may name: per built-in kind, or a CRD's selectableFields."""
    fields = fields_for(resource.group, resource.kind)
    for json_path in resource.selectable_fields:
        fields[json_path.lstrip(".")] = _json_path_getter(json_path)
    return fields


def _json_path_getter(json_path: str) -> FieldGetter:
    def get(obj: KubeObject) -> str:
        values = jsonpath_values(obj, json_path)
        if not values:
            return ""
        value = values[0]
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return get
