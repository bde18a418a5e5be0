"""The one error static inputs raise, and reading a JSON input file into it."""

from pathlib import Path
from typing import Any

from aksid.userfiles import UserFileError, parse_json, read_text


class StaticInputError(ValueError):
    """A malformed or unsupported input file; the message is one sentence naming the file (and line)."""


def static_input_error(exc: UserFileError, hint: str) -> StaticInputError:
    """The reader's sentence as a StaticInputError; `hint` (what produces the file) follows when it was read but
    holds no valid document."""
    return StaticInputError(str(exc) if exc.kind == "unreadable" else f"{exc}; {hint}")


def read_json_input(path: Path, what: str, hint: str) -> tuple[str, Any]:
    """(text, document) of a JSON input; `what` names it for a reader ("the Terraform plan"), `hint` says what
    produces it. The text is kept: positions in findings are looked up in it."""
    try:
        text = read_text(path, what)
        return text, parse_json(text, path, what)
    except UserFileError as exc:
        raise static_input_error(exc, hint) from None
