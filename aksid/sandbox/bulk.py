"""Scenario-sized data at scale: reading a large YAML (or JSON) document, copying object trees.

A 20,000-pod scenario is some 80 MB of YAML and millions of Python objects. PyYAML's own construction of
that costs more than the whole sandbox's start-up budget, and so does `copy.deepcopy` of it; the cyclic
garbage collector, triggered over and over while millions of containers are allocated, costs as much
again (hence aksid.memory.gc_paused around them). The functions here give the same values (PyYAML's safe
reading of the text) at a fraction of that.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode

from aksid.memory import gc_paused

# libyaml when PyYAML has it: the parse itself then runs in C
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
# YAML 1.1 floats as PyYAML resolves them: `1e3` (no dot) or `1.0e3` (unsigned exponent) are strings there
_YAML_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?$")
_OPEN = object()  # an anchored collection still being read: an alias to it is a recursive structure
_NO_KEY = object()  # a mapping waiting for its next key


class _Unusual(Exception):
    """A construct the fast reader leaves to PyYAML's own constructor (explicit tags, merge keys, ...)."""


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON-shaped tree (dicts, lists, scalars), several times faster than copy.deepcopy;
    anything else (a YAML timestamp, a set) is copied by copy.deepcopy."""
    kind = type(value)
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)


def load_document(text: str) -> Any:
    """The value of a one-document YAML text, as `yaml.load(text, Loader=CSafeLoader)` reads it."""
    with gc_paused():
        if text.lstrip()[:1] == "{":
            with contextlib.suppress(ValueError):
                # JSON is YAML: a generated scenario written as JSON reads ~20 times faster this way. Numbers
                # and constants are read as PyYAML (YAML 1.1) would read the same text.
                return json.loads(text, parse_float=_yaml_float, parse_constant=str)
        try:
            return _EventReader(text).read()
        except _Unusual:
            return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader


def _yaml_float(text: str) -> float | str:
    return float(text) if _YAML_FLOAT.match(text) else text


class _EventReader:
    """Builds the document straight from libyaml's events, without PyYAML's node graph: plain scalars are
    resolved (and converted) once per distinct text, by PyYAML's own resolver and constructors."""

    def __init__(self, text: str) -> None:
        self.loader = _LOADER(text)
        self.plain: dict[str, Any] = {}
        self.anchors: dict[str, Any] = {}

    def read(self) -> Any:
        loader = self.loader
        try:
            loader.get_event()  # StreamStart
            if loader.check_event(yaml.StreamEndEvent):
                return None
            loader.get_event()  # DocumentStart
            value = self._node(loader.get_event())
            loader.get_event()  # DocumentEnd
            if not loader.check_event(yaml.StreamEndEvent):
                raise _Unusual  # more than one document: PyYAML's error
            return value
        finally:
            loader.dispose()

    def _node(self, event: Any) -> Any:
        """The value starting at `event`; collections are filled iteratively (a frame per open collection)."""
        root = self._start(event)
        if type(root) is not _Frame:
            return root
        stack = [root]
        get_event = self.loader.get_event
        while stack:
            frame = stack[-1]
            event = get_event()
            kind = type(event)
            if kind is MappingEndEvent or kind is SequenceEndEvent:
                stack.pop()
                self._close(frame)
                value = frame.value
                if stack:
                    stack[-1].add(value)
                continue
            value = self._start(event)
            if type(value) is _Frame:
                if frame.expects_key():
                    raise _Unusual  # a collection as a mapping key
                stack.append(value)
            else:
                frame.add(value)
        return root.value

    def _start(self, event: Any) -> Any:
        """A scalar's or an alias's value, or a _Frame for a collection that starts here."""
        kind = type(event)
        if kind is ScalarEvent:
            if event.tag is not None:
                raise _Unusual
            value = self._plain(event.value) if event.implicit[0] else event.value
        elif kind is AliasEvent:
            value = self.anchors.get(event.anchor, _OPEN)
            if value is _OPEN:
                raise _Unusual  # undefined, or recursive: PyYAML's error or its recursive structure
            return value
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.tag is not None:
                raise _Unusual
            value = _Frame({} if kind is MappingStartEvent else [])
            if event.anchor is not None:
                self._anchor(event.anchor, _OPEN)
                value.anchor = event.anchor
            return value
        else:
            raise _Unusual
        if event.anchor is not None:
            self._anchor(event.anchor, value)
        return value

    def _anchor(self, name: str, value: Any) -> None:
        if name in self.anchors:
            raise _Unusual  # a redefined anchor: PyYAML's error
        self.anchors[name] = value

    def _close(self, frame: _Frame) -> None:
        if frame.anchor is not None:
            self.anchors[frame.anchor] = frame.value

    def _plain(self, text: str) -> Any:
        """A plain scalar's value: its implicit tag (str, int, bool, null, ...) resolved as PyYAML does."""
        try:
            return self.plain[text]
        except KeyError:
            pass
        loader = self.loader
        tag = loader.resolve(ScalarNode, text, (True, False))
        if tag == _STR_TAG:
            value = text
        elif tag in ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"):
            raise _Unusual  # `<<` merge keys and `=` keys have meaning only to the full constructor
        else:
            value = loader.yaml_constructors[tag](loader, ScalarNode(tag, text))
        self.plain[text] = value  # immutable values only: int, float, bool, None, datetime, str
        return value


class _Frame:
    """A collection being read: a list, or a dict and the key waiting for its value."""

    __slots__ = ("anchor", "is_map", "key", "value")

    def __init__(self, value: dict | list) -> None:
        self.value = value
        self.is_map = type(value) is dict
        self.key: Any = _NO_KEY
        self.anchor: str | None = None

    def expects_key(self) -> bool:
        return self.is_map and self.key is _NO_KEY

    def add(self, item: Any) -> None:
        if not self.is_map:
            self.value.append(item)
        elif self.key is _NO_KEY:
            if type(item) is dict or type(item) is list:
                raise _Unusual  # an alias to a collection as a key: PyYAML's "unhashable key" error
            self.key = item
        else:
            self.value[self.key] = item
            self.key = _NO_KEY
