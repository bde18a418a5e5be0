"""The small JSONPath subset CRDs use (additionalPrinterColumns, selectableFields)."""

from __future__ import annotations

import re
from typing import Any


def dig(obj: Any, *keys: str | int, default: Any = None) -> Any:
    for key in keys:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and -len(obj) <= key < len(obj) else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
        if obj is None:
            return default
    return obj


# A small JSONPath for CRD additionalPrinterColumns: .a.b, ['a.b'], [0], [*], [?(@.k=="v")].
_JSONPATH_STEP = re.compile(
    r"""\.(?P<field>[^.\[\]]+)"""
    r"""|\[(?P<index>-?\d+|\*)\]"""
    r"""|\[['"](?P<quoted>[^'"]*)['"]\]"""
    r"""|\[\?\(@\.(?P<filter>[\w.-]+)\s*(?P<op>==|!=)\s*(?P<value>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\]"""
)


def jsonpath_values(obj: Any, path: str) -> list[Any]:
    """Values a simple JSONPath selects; [] when it selects nothing or is beyond this subset."""
    text = path.strip().removeprefix("{").removesuffix("}").strip().removeprefix("$")
    nodes, position = [obj], 0
    while position < len(text):
        match = _JSONPATH_STEP.match(text, position)
        if match is None:
            return []
        position = match.end()
        nodes = [result for node in nodes for result in _jsonpath_step(node, match)]
    return [node for node in nodes if node is not None]


def _jsonpath_step(node: Any, step: re.Match[str]) -> list[Any]:
    key = step.group("field") or step.group("quoted")
    if key is not None:
        return [node.get(key)] if isinstance(node, dict) else []
    if not isinstance(node, list):
        return []
    index = step.group("index")
    if index == "*":
        return list(node)
    if index is not None:
        position = int(index)
        return [node[position]] if -len(node) <= position < len(node) else []
    wanted = step.group("value").strip("'\"")
    selected = [item for item in node if isinstance(item, dict)
                and (str(dig(item, *step.group("filter").split("."), default="")) == wanted) == (step.group("op") == "==")]
    return selected
