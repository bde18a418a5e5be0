"""ARM template expressions, evaluated as ARM evaluates them before a deployment.

`[if(parameters('x'), union(variables('a'), createObject('b', 1)), json('null'))]`: a parser for the expression
grammar (strings with '' escapes, numbers, function calls, `.member` and `[index]` access) and the template
functions real Bicep output and hand-written templates use. What cannot be known before the deployment (a
`reference()` to a resource's runtime properties, a parameter without a default value, `utcNow()`) is an `Unknown`
that names where it comes from; functions propagate it, and the template reader turns it into a placeholder the
checks judge on what is known. An expression aksid cannot parse or a function it does not know is `Unknown`
naming it, never an exception.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aksid.snapshot import DEPLOY_TIME

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>[(),.\[\]]))")


@dataclass(frozen=True)
class Unknown:
    """A value known only when the template is deployed; `what` names it (`reference(<id>).properties.principalId`,
    `parameters('clusterName') (no default value)`). `comparable` ones name one runtime value, so two references
    to it compare equal as the deployed values will."""

    what: str
    comparable: bool = False


@dataclass(frozen=True)
class ResourceRef:
    """What `reference(...)` returns: a resource whose runtime properties are read member by member."""

    resource_id: str
    full: bool  # 'Full': the whole resource (properties under `.properties`); else its properties

    def member(self, key: Any) -> Unknown:
        path = str(key) if self.full else f"properties.{key}"
        return Unknown(f"reference({self.resource_id.lower()}).{path}", comparable=True)  # ids: any case


@dataclass(frozen=True)
class _Path:
    """A member path under a reference: `reference(x).identityProfile.kubeletidentity.objectId`."""

    base: Unknown

    def member(self, key: Any) -> Unknown:
        return Unknown(f"{self.base.what}.{key}", comparable=self.base.comparable)


class ExpressionError(ValueError):
    """An expression aksid cannot parse (the reader reports it, naming the expression and where it is)."""


@dataclass
class Scope:
    """Where a template deploys, and what its expressions can see."""

    subscription: str
    group: str | None  # None at subscription scope
    tenant: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    raw_variables: dict[str, Any] = field(default_factory=dict)  # evaluated on first use (they may refer to others)
    symbols: dict[str, dict[str, Any]] = field(default_factory=dict)  # symbolic name -> {id, name, type}
    copy_index: dict[str | None, int] = field(default_factory=dict)
    deployment_name: str = "aksid-static"
    evaluating: set[str] = field(default_factory=set)
    lambda_vars: dict[str, Any] = field(default_factory=dict)  # lambdaVariables('x') inside a lambda's body

    def child(self, **changes: Any) -> Scope:
        values = {**self.__dict__, **changes}
        values["evaluating"] = set()
        return Scope(**values)


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def evaluate(value: Any, scope: Scope) -> Any:
    """Template values: `[expr]` strings evaluated, containers walked; `[[` is a literal `[`."""
    if isinstance(value, dict):
        return {k: evaluate(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    if isinstance(value, str):
        if is_expression(value):
            return evaluate_expression(value[1:-1], scope)
        if value.startswith("[["):
            return value[1:]
    return value


def evaluate_expression(text: str, scope: Scope) -> Any:
    try:
        tokens = [m for m in _TOKEN.finditer(text) if m.group(0).strip()]
        if "".join(m.group(0) for m in _TOKEN.finditer(text)).strip() != text.strip():
            raise ExpressionError(f"cannot read `[{text}]`")
        value, rest = _Parser(tokens, scope).expression(0)
        if rest != len(tokens):
            raise ExpressionError(f"cannot read `[{text}]`")
        return value
    except ExpressionError as exc:
        return Unknown(str(exc))
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError, RecursionError) as exc:
        return Unknown(f"`[{text}]` ({type(exc).__name__})")


class _Parser:
    def __init__(self, tokens: list[re.Match[str]], scope: Scope) -> None:
        self.tokens, self.scope = tokens, scope

    def op(self, position: int) -> str | None:
        return self.tokens[position].group("op") if position < len(self.tokens) else None

    def expression(self, position: int) -> tuple[Any, int]:
        token = self.tokens[position]
        if token.group("string") is not None:
            value: Any = token.group("string")[1:-1].replace("''", "'")
            position += 1
        elif token.group("number") is not None:
            number = token.group("number")
            value = float(number) if "." in number else int(number)
            position += 1
        elif token.group("name") is not None:
            name = token.group("name")
            if self.op(position + 1) != "(":
                raise ExpressionError(f"`{name}` is not a function call")
            position += 2
            if name.lower() == "lambda":
                return self._lambda(position)
            if name.lower() in _LAZY:
                return self._lazy(name.lower(), position)
            arguments: list[Any] = []
            while self.op(position) != ")":
                argument, position = self.expression(position)
                arguments.append(argument)
                if self.op(position) == ",":
                    position += 1
                elif self.op(position) != ")":
                    raise ExpressionError(f"expected `,` or `)` after an argument of {name}()")
            position += 1
            value = call(name, arguments, self.scope)
        else:
            raise ExpressionError(f"unexpected `{token.group(0).strip()}`")
        return self.accessors(value, position)

    def accessors(self, value: Any, position: int) -> tuple[Any, int]:
        while self.op(position) in (".", "["):
            if self.op(position) == ".":
                token = self.tokens[position + 1]
                key = token.group("name")
                if key is None:
                    raise ExpressionError("expected a property name after `.`")
                for part in key.split("."):
                    value = member(value, part)
                position += 2
            else:
                index, position = self.expression(position + 1)
                if self.op(position) != "]":
                    raise ExpressionError("expected `]`")
                value, position = member(value, index), position + 1
        return value, position

    def _lazy(self, name: str, position: int) -> tuple[Any, int]:
        """`if` and `coalesce`: a branch not taken is parsed but not judged (its unknowns do not matter)."""
        raw: list[tuple[int, int]] = []
        while self.op(position) != ")":
            start = position
            _value, position = self._skip(position)
            raw.append((start, position))
            if self.op(position) == ",":
                position += 1
        position += 1

        def argument(i: int) -> Any:
            start, _end = raw[i]
            value, _ = self.expression(start)
            return value

        if name == "if":
            if len(raw) != 3:
                raise ExpressionError("if() takes three arguments")
            condition = argument(0)
            if isinstance(condition, Unknown):
                first, second = argument(1), argument(2)
                value = first if _same(first, second) else Unknown(f"if({condition.what}, ...)")
            else:
                value = argument(1) if _truthy(condition) else argument(2)
        else:  # coalesce: the first argument that is not null
            value = None
            for i in range(len(raw)):
                candidate = argument(i)
                if isinstance(candidate, Unknown):
                    value = candidate
                    break
                if candidate is not None:
                    value = candidate
                    break
        return self.accessors(value, position)

    def _lambda(self, position: int) -> tuple[Any, int]:
        """`lambda('a', 'b', body)`: the body is kept unevaluated, and evaluated per call with the names bound."""
        spans: list[tuple[int, int]] = []
        while self.op(position) != ")":
            start = position
            _value, position = self._skip(position)
            spans.append((start, position))
            if self.op(position) == ",":
                position += 1
        position += 1
        if len(spans) < 2:
            raise ExpressionError("lambda() takes parameter names and a body")
        names = [self.expression(start)[0] for start, _end in spans[:-1]]
        start, end = spans[-1]
        return Lambda([str(n) for n in names], self.tokens[start:end], self.scope), position

    def _skip(self, position: int) -> tuple[None, int]:
        """Past one argument, without evaluating it."""
        depth = 0
        while position < len(self.tokens):
            op = self.op(position)
            if op in ("(", "["):
                depth += 1
            elif op in (")", "]"):
                if depth == 0:
                    return None, position
                depth -= 1
            elif op == "," and depth == 0:
                return None, position
            position += 1
        raise ExpressionError("unbalanced parentheses")


_LAZY = {"if", "coalesce"}


@dataclass
class Lambda:
    """What `lambda(...)` makes: a body evaluated with its parameters bound (map, filter, reduce, toObject)."""

    names: list[str]
    body: list[re.Match[str]]
    scope: Scope

    def __call__(self, *values: Any) -> Any:
        bound = self.scope.child(lambda_vars={**self.scope.lambda_vars, **dict(zip(self.names, values, strict=False))})
        value, rest = _Parser(self.body, bound).expression(0)
        if rest != len(self.body):
            raise ExpressionError("cannot read a lambda's body")
        return value


def _map(items: Any, function: Any) -> Any:
    return [function(item) for item in items]


def _filter(items: Any, function: Any) -> Any:
    kept = []
    for item in items:
        verdict = function(item)
        if isinstance(verdict, Unknown):
            return Unknown(f"filter() whose condition is {verdict.what}")
        if _truthy(verdict):
            kept.append(item)
    return kept


def _reduce(items: Any, initial: Any, function: Any) -> Any:
    value = initial
    for item in items:
        value = function(value, item)
    return value


def _to_object(items: Any, key: Any, value: Any = None) -> Any:
    return {str(key(item)): (value(item) if value is not None else item) for item in items}


def _same(a: Any, b: Any) -> bool:
    return a == b and not isinstance(a, Unknown)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def member(value: Any, key: Any) -> Any:
    if isinstance(value, ResourceRef):
        return value.member(key)
    if isinstance(value, Unknown):
        return _Path(value).member(key) if value.comparable else value
    if isinstance(key, Unknown):
        return key
    if isinstance(value, dict):
        found = value.get(key)
        if found is None and isinstance(key, str):  # ARM property names are case-insensitive
            found = next((v for k, v in value.items() if k.lower() == key.lower()), None)
        return found
    if isinstance(value, list) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else None
    if isinstance(value, str) and isinstance(key, int):
        return value[key]
    return None


# -- functions ------------------------------------------------------------------------------------

def _any_unknown(arguments: list[Any]) -> Unknown | None:
    return next((a for a in arguments if isinstance(a, (Unknown, ResourceRef))), None)  # type: ignore[misc]


def _unknown_of(found: Any) -> Unknown:
    return found if isinstance(found, Unknown) else Unknown(f"reference({found.resource_id})")


def resource_id(subscription: str, group: str | None, resource_type: str, names: list[str]) -> str:
    """`/subscriptions/s/resourceGroups/g/providers/A/B/x/C/y` from type `A/B/C` and names `x`, `y`
    (a child type's segments interleave with its names)."""
    namespace, *types = resource_type.split("/")
    path = namespace + "".join(f"/{t}/{n}" for t, n in zip(types, names, strict=False))
    prefix = f"/subscriptions/{subscription}" + (f"/resourceGroups/{group}" if group else "")
    return f"{prefix}/providers/{path}"


def _resource_id_call(arguments: list[Any], scope: Scope) -> str:
    """resourceId([subscriptionId], [resourceGroupName], resourceType, resourceName1, ...)."""
    type_at = next(i for i, a in enumerate(arguments) if isinstance(a, str) and "/" in a and "." in a.split("/")[0])
    leading = [str(a) for a in arguments[:type_at]]
    subscription = leading[0] if len(leading) == 2 else scope.subscription
    group = leading[-1] if leading else scope.group
    return resource_id(subscription, group, arguments[type_at], [str(a) for a in arguments[type_at + 1:]])


def _format(template: str, values: list[Any]) -> str:
    def one(match: re.Match[str]) -> str:
        value = values[int(match.group(1))]
        return json.dumps(value) if isinstance(value, bool) else str(value)  # ARM writes booleans as True/False
    return re.sub(r"\{(\d+)(?::[^}]*)?\}", one, template.replace("{{", "\0").replace("}}", "\1")).replace(
        "\0", "{").replace("\1", "}")


def _union(arguments: list[Any]) -> Any:
    if all(isinstance(a, dict) for a in arguments):
        merged: dict[str, Any] = {}
        for argument in arguments:
            for key, value in argument.items():  # objects merge deeply in ARM's union
                merged[key] = _union([merged[key], value]) if isinstance(merged.get(key), dict) and isinstance(
                    value, dict) else value
        return merged
    if all(isinstance(a, list) for a in arguments):
        out: list[Any] = []
        for argument in arguments:
            out += [v for v in argument if v not in out]
        return out
    raise TypeError("union of mixed types")


def _guid(arguments: list[Any]) -> str:
    return str(uuid.uuid5(uuid.UUID("11fb06fb-712d-4ddd-98c7-e71bbd588830"), "-".join(str(a) for a in arguments)))


def _unique_string(arguments: list[Any]) -> str:
    """ARM's hash of its arguments, which aksid cannot compute: a stand-in naming them, so the same call gives the
    same name everywhere in the template (`aks-«uniqueString(aks, <sub>, <group id>)»`), and ids built from it
    compare as the deployed ones will."""
    return f"{DEPLOY_TIME}uniqueString({', '.join(str(a) for a in arguments)})»"


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, dict):
        return any(str(k).lower() == str(item).lower() for k in container)
    if isinstance(container, str):
        return str(item).lower() in container.lower()
    return item in (container or [])


def _length(value: Any) -> int:
    return len(value or [])


def _split(text: str, separators: Any) -> list[str]:
    pattern = "|".join(re.escape(s) for s in (separators if isinstance(separators, list) else [separators]))
    return re.split(pattern, text)


_PURE: dict[str, Callable[..., Any]] = {
    "concat": lambda *a: ([v for x in a for v in x] if a and all(isinstance(x, list) for x in a)
                          else "".join("" if x is None else str(x) for x in a)),
    "format": lambda t, *v: _format(t, list(v)),
    "union": lambda *a: _union(list(a)),
    "createobject": lambda *a: {a[i]: a[i + 1] for i in range(0, len(a), 2)},
    "createarray": lambda *a: list(a),
    "array": lambda v: v if isinstance(v, list) else [v],
    "contains": _contains,
    "empty": lambda v: v is None or len(v) == 0,
    "equals": lambda a, b: a == b,
    "not": lambda v: not _truthy(v),
    "and": lambda *a: all(_truthy(v) for v in a),
    "or": lambda *a: any(_truthy(v) for v in a),
    "greater": lambda a, b: a > b, "greaterorequals": lambda a, b: a >= b,
    "less": lambda a, b: a < b, "lessorequals": lambda a, b: a <= b,
    "length": _length,
    "tolower": lambda s: str(s).lower(), "toupper": lambda s: str(s).upper(), "trim": lambda s: str(s).strip(),
    "replace": lambda s, a, b: str(s).replace(str(a), str(b)),
    "split": _split,
    "join": lambda items, sep: str(sep).join(str(i) for i in items),
    "substring": lambda s, start=0, length=None: str(s)[start:] if length is None else str(s)[start:start + length],
    "startswith": lambda s, p: str(s).lower().startswith(str(p).lower()),
    "endswith": lambda s, p: str(s).lower().endswith(str(p).lower()),
    "indexof": lambda s, p: str(s).lower().find(str(p).lower()),
    "lastindexof": lambda s, p: str(s).lower().rfind(str(p).lower()),
    "string": lambda v: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")),
    "int": lambda v: int(v), "bool": lambda v: _truthy(v), "float": lambda v: float(v),
    "json": lambda v: json.loads(v),
    "first": lambda v: v[0] if v else None, "last": lambda v: v[-1] if v else None,
    "take": lambda v, n: v[:n], "skip": lambda v, n: v[n:],
    "min": lambda *a: min(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "max": lambda *a: max(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "range": lambda start, count: list(range(start, start + count)),
    "guid": lambda *a: _guid(list(a)),
    "uniquestring": lambda *a: _unique_string(list(a)),
    "base64": lambda s: base64.b64encode(str(s).encode()).decode(),
    "uri": lambda base, rel: base.rsplit("/", 1)[0] + "/" + rel,
    "true": lambda: True, "false": lambda: False, "null": lambda: None,
    "objectkeys": lambda o: list(o), "items": lambda o: [{"key": k, "value": v} for k, v in o.items()],
    "trygetvalue": lambda o, k: member(o, k),
    "tryget": lambda o, *keys: _try_get(o, list(keys)),
    "intersection": lambda *a: ({k: v for k, v in a[0].items() if all(o.get(k) == v for o in a[1:])}
                                if isinstance(a[0], dict) else [v for v in a[0] if all(v in o for o in a[1:])]),
    "padleft": lambda s, n, c=" ": str(s).rjust(n, c),
    "map": _map, "filter": _filter, "reduce": _reduce, "toobject": _to_object,
}


def _try_get(value: Any, keys: list[Any]) -> Any:
    for key in keys:
        value = member(value, key)
        if value is None:
            return None
    return value


def call(name: str, arguments: list[Any], scope: Scope) -> Any:
    lower = name.lower()
    if lower == "parameters":
        if arguments[0] not in scope.parameters:
            return Unknown(f"parameters('{arguments[0]}') is not declared")
        return scope.parameters[arguments[0]]
    if lower == "variables":
        return _variable(str(arguments[0]), scope)
    if lower == "lambdavariables":
        name = str(arguments[0])
        return scope.lambda_vars[name] if name in scope.lambda_vars else Unknown(f"lambdaVariables('{name}') outside "
                                                                                  "its lambda")
    if lower == "copyindex":
        offset = next((a for a in arguments if isinstance(a, int)), 0)
        loop = next((a for a in arguments if isinstance(a, str)), None)
        index = scope.copy_index.get(loop, scope.copy_index.get(None))
        return Unknown("copyIndex()") if index is None else index + offset
    if lower == "reference":
        target = arguments[0]
        if isinstance(target, (Unknown, ResourceRef)):
            return _unknown_of(target)
        full = len(arguments) > 2 and str(arguments[2]).lower() == "full"
        found = scope.symbols.get(target)
        return ResourceRef(found["id"] if found else _absolute_id(str(target), scope), full)
    if lower == "resourceinfo":
        found = scope.symbols.get(arguments[0])
        return dict(found) if found else Unknown(f"resourceInfo('{arguments[0]}')")
    if lower == "resourcegroup":
        if scope.group is None:
            return Unknown("resourceGroup() at subscription scope")
        return {"name": scope.group, "id": f"/subscriptions/{scope.subscription}/resourceGroups/{scope.group}",
                "location": Unknown("resourceGroup().location"), "type": "Microsoft.Resources/resourceGroups"}
    if lower == "subscription":
        return {"subscriptionId": scope.subscription, "id": f"/subscriptions/{scope.subscription}",
                "tenantId": scope.tenant or Unknown("subscription().tenantId")}
    if lower == "tenant":
        return {"tenantId": scope.tenant or Unknown("tenant().tenantId")}
    if lower == "deployment":
        return {"name": scope.deployment_name, "properties": {"templateLink": Unknown("deployment().templateLink")}}
    if lower == "environment":
        return {"name": "AzureCloud", "resourceManager": "https://management.azure.com/",
                "suffixes": {"storage": "core.windows.net", "acrLoginServer": ".azurecr.io"}}
    if lower in ("createobject", "createarray"):  # values may stay unknown inside what they build
        return _PURE[lower](*[a if not isinstance(a, ResourceRef) else _unknown_of(a) for a in arguments])
    unknown = _any_unknown(arguments)
    if unknown is not None:
        found = _unknown_of(unknown)
        if lower in ("string", "tolower", "toupper", "trim") and found.comparable:
            return found  # the same runtime value (ids compare case-insensitively anyway)
        return Unknown(f"{name}() of {found.what}")
    if lower == "resourceid":
        return _resource_id_call(arguments, scope)
    if lower == "subscriptionresourceid":
        leading = 1 if arguments and "/" not in str(arguments[0]) and len(arguments) > 2 and "." not in str(
            arguments[0]) else 0
        subscription = str(arguments[0]) if leading else scope.subscription
        return resource_id(subscription, None, str(arguments[leading]), [str(a) for a in arguments[leading + 1:]])
    if lower == "tenantresourceid":
        namespace, *types = str(arguments[0]).split("/")
        return "/providers/" + namespace + "".join(f"/{t}/{n}" for t, n in zip(types, arguments[1:], strict=False))
    if lower == "extensionresourceid":
        namespace, *types = str(arguments[1]).split("/")
        return f"{str(arguments[0]).rstrip('/')}/providers/{namespace}" + "".join(
            f"/{t}/{n}" for t, n in zip(types, arguments[2:], strict=False))
    if lower == "managementgroupresourceid":
        return Unknown("managementGroupResourceId()")
    function = _PURE.get(lower)
    if function is None:
        return Unknown(f"{name}() (a function aksid does not evaluate)")
    return function(*arguments)


def _variable(name: str, scope: Scope) -> Any:
    if name in scope.variables:
        return scope.variables[name]
    if name not in scope.raw_variables:
        return Unknown(f"variables('{name}') is not declared")
    if name in scope.evaluating:
        return Unknown(f"variables('{name}') refers to itself")
    scope.evaluating.add(name)
    try:
        raw = scope.raw_variables[name]
        value = _copy_variable(raw[_COPY], scope) if isinstance(raw, dict) and _COPY in raw else evaluate(raw, scope)
    finally:
        scope.evaluating.discard(name)
    scope.variables[name] = value
    return value


_COPY = "__aksid_copy__"


def copy_variables(raw: dict[str, Any]) -> dict[str, Any]:
    """Variables as declared, a `copy` array (`[{name, count, input}]`) as one variable per loop."""
    out = {k: v for k, v in raw.items() if k != "copy"}
    for loop in raw.get("copy") or []:
        if isinstance(loop, dict) and "name" in loop:
            out[loop["name"]] = {_COPY: loop}
    return out


def _copy_variable(loop: dict[str, Any], scope: Scope) -> Any:
    count = evaluate(loop.get("count"), scope)
    if not isinstance(count, int):
        return Unknown(f"the copy loop {loop.get('name')} has count {count}")
    return [evaluate(loop.get("input"), _with_index(scope, loop["name"], index)) for index in range(count)]


def _with_index(scope: Scope, loop: str | None, index: int) -> Scope:
    """The same scope (variables shared) with copyIndex() set for one iteration."""
    return Scope(scope.subscription, scope.group, scope.tenant, scope.parameters, scope.variables, scope.raw_variables,
                 scope.symbols, {**scope.copy_index, loop: index, None: index}, scope.deployment_name, scope.evaluating,
                 scope.lambda_vars)


def _absolute_id(value: str, scope: Scope) -> str:
    """`reference('name')` of a template without symbolic names: an id, or a resource's name in the template."""
    if value.startswith("/"):
        return value
    return f"(resource named {value})"


