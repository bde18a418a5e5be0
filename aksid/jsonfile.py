"""JSON in and out: decoding what the network sends; encoding the large documents the suite writes (orjson: 9x the
standard library's C encoder on a large cluster, and the standard library's indented form is its pure-Python
encoder). A JSON file a user hands the suite (a snapshot, a results.json) is read by aksid.userfiles."""

from __future__ import annotations

import json
from typing import Any

import orjson

_COMPACT = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_INDENTED = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def compact_sorted(value: Any) -> bytes:
    """Compact JSON with sorted keys, as UTF-8 (the snapshot's form). What orjson refuses (an integer beyond 64 bits)
    goes through the standard library."""
    try:
        return orjson.dumps(value, option=_COMPACT)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("ascii")


def indented(value: Any) -> bytes:
    """JSON indented by two spaces, keys in their order, ending with a newline (results.json's form)."""
    try:
        return orjson.dumps(value, option=_INDENTED) + b"\n"
    except orjson.JSONEncodeError:
        return (json.dumps(value, indent=2) + "\n").encode("ascii")


def parsed(data: bytes | str) -> Any:
    """A JSON document read from the network (a LIST page): orjson, about twice the standard library's decoder on
    pod pages. What orjson refuses and the standard library reads (a lone surrogate escape, NaN) goes through the
    latter, which also raises the error for what is not JSON at all. An integer beyond 64 bits reads as a float, as
    the API server itself stores it (apimachinery's JSON decoding keeps int64, else float64)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
