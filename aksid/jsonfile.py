"""Reading a JSON document a user hands the suite (a snapshot, a results.json): one sentence when it is not one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: Path, error: type[Exception], name: str | None = None,
                     expected: str = "a JSON object") -> dict[str, Any]:
    """The JSON object in `path`; otherwise `error` with "<name> cannot be read / is not valid JSON (line N) /
    is not <expected>" (`name` defaults to the path)."""
    name = name or str(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{name} cannot be read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{name} is not valid JSON (line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise error(f"{name} is not {expected}")
    return document
