"""The one error static inputs raise, and reading a JSON input file into it."""

import json
from pathlib import Path
from typing import Any


class StaticInputError(ValueError):
    """A malformed or unsupported input file; the message is one sentence naming the file (and line)."""


def read_json_input(path: Path, what: str, hint: str) -> tuple[str, Any]:
    """(text, document) of a JSON input; `what` names it for a reader ("the Terraform plan"), `hint` says what
    produces it. The text is kept: positions in findings are looked up in it."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise StaticInputError(f"{what} {path} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise StaticInputError(f"{path}:{exc.lineno} is not valid JSON ({hint})") from None
