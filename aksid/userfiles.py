"""The files a user hands the suite (a profile, a waiver file, manifests, a Terraform plan, an ARM template or
parameters file, a snapshot or results.json to replay, diff or merge): one reader per format, one error.

Whatever is wrong with such a file is one sentence naming it, with the line (and column) of a syntax error:

    the profile ci.yaml:12 is not valid YAML (column 3: mapping values are not allowed here)
    the Terraform plan plan.json:1 is not valid JSON (column 2: expecting property name enclosed in double quotes)
    the waiver file w.yaml cannot be read: no such file or directory

Callers with their own error type (ConfigError, WaiverError, ...) re-raise it as theirs with `reported_as`.
Our own data (the snapshot hand-over between processes, the fleet index, the catalogue) is not read here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Kind = Literal["unreadable", "empty", "syntax", "shape"]


class UserFileError(ValueError):
    """A user file that cannot be read or parsed; the message is one sentence naming the file (and line)."""

    def __init__(self, message: str, path: Path | str, kind: Kind, line: int | None = None) -> None:
        super().__init__(message)
        self.path, self.kind, self.line = Path(path), kind, line


@contextmanager
def reported_as(error: Callable[[str], Exception]) -> Iterator[None]:
    """A UserFileError raised inside becomes `error(<its sentence>)` (a caller's own error type), without a chain."""
    try:
        yield
    except UserFileError as exc:
        raise error(str(exc)) from None


def _named(what: str, path: Path | str) -> str:
    return f"{what} {path}" if what else str(path)


def _lowered(text: str) -> str:
    return text[:1].lower() + text[1:]


# --- text ------------------------------------------------------------------------------------------------


def read_text(path: Path, what: str) -> str:
    """The file's text (UTF-8, a byte order mark dropped as Windows editors and PowerShell write one)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        reason = _lowered(exc.strerror) if exc.strerror else str(exc)
        raise UserFileError(f"{_named(what, path)} cannot be read: {reason}", path, "unreadable") from None
    except UnicodeDecodeError as exc:
        data = exc.object if isinstance(exc.object, bytes) else b""
        if exc.start == 0 and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            reason = "it is UTF-16 text (save it as UTF-8)"
        else:
            line = data.count(b"\n", 0, exc.start) + 1
            reason = f"line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x})"
        raise UserFileError(f"{_named(what, path)} cannot be read: {reason}", path, "unreadable") from None


# --- JSON ------------------------------------------------------------------------------------------------


def parse_json(text: str, path: Path, what: str) -> Any:
    """The JSON value in `text`, read from `path` (for a caller that keeps the text: positions are looked up in it)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if not text or text.isspace():  # looked at only on failure: a snapshot is tens of MB
            raise UserFileError(f"{_named(what, path)} is empty (no JSON value)", path, "empty") from None
        raise UserFileError(f"{_named(what, path)}:{exc.lineno} is not valid JSON (column {exc.colno}: "
                            f"{_lowered(exc.msg)})", path, "syntax", exc.lineno) from None


def read_json(path: Path, what: str) -> Any:
    """The JSON value in the file; UserFileError when it cannot be read, is empty or is not JSON."""
    return parse_json(read_text(path, what), path, what)


def read_json_object(path: Path, what: str, expected: str = "a JSON object") -> dict[str, Any]:
    """As read_json, and the value must be an object (else "<what> <path> is not <expected>")."""
    document = read_json(path, what)
    if not isinstance(document, dict):
        raise UserFileError(f"{_named(what, path)} is not {expected}", path, "shape")
    return document


# --- YAML ------------------------------------------------------------------------------------------------


# libyaml's parser when PyYAML was built with it (Debian's and the wheels are): the same documents and marks, read
# ~10x faster than the pure-Python one (a rendered chart's manifests took most of a static run). A file it refuses
# is parsed again by the pure-Python parser, whose error is the one reported (the same words on every install).
_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _python_error(parse: Any, text: str) -> yaml.YAMLError:
    try:
        parse(yaml.SafeLoader)
    except yaml.YAMLError as exc:
        return exc
    raise AssertionError("libyaml refused what the pure-Python parser accepts")  # pragma: no cover


@dataclass(frozen=True)
class YamlDocument:
    value: Any
    line: int  # 1-based line where the document's content starts (a mapping's first key)
    node: yaml.Node  # for the lines of what is inside (a List's items)


def _yaml_error(exc: yaml.YAMLError, text: str, path: Path, what: str, fallback: yaml.Mark | None = None) -> UserFileError:
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow; a position, not a mark
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"unacceptable character #x{code:04x}: {exc.reason}"
    else:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None) or fallback
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        context = getattr(exc, "context", None)
        problem = getattr(exc, "problem", None) or context or str(exc).partition("\n")[0] or type(exc).__name__
        if problem.startswith("but ") and context:  # "expected a single document ..., but found another document"
            problem = f"{context}, {problem}"
    if line is None:
        return UserFileError(f"{_named(what, path)} is not valid YAML ({problem})", path, "syntax")
    return UserFileError(f"{_named(what, path)}:{line} is not valid YAML (column {column}: {problem})", path,
                         "syntax", line)


def parse_yaml(text: str, path: Path, what: str) -> Any:
    """The one YAML document in `text` (None when it is empty), read from `path`."""
    def parse(loader: type) -> Any:
        return yaml.load(text, Loader=loader)  # noqa: S506 - safe loaders only

    try:
        return parse(_LOADER)
    except yaml.YAMLError:
        raise _yaml_error(_python_error(parse, text), text, path, what) from None


def yaml_documents(text: str, path: Path, what: str) -> list[YamlDocument]:
    """Every document of a multi-document stream (`---`), each with the line it starts at. The whole stream is
    parsed before any document is built, so a syntax error anywhere is reported first."""
    def parse(loader: type) -> list[Any]:
        return list(yaml.compose_all(text, Loader=loader))

    try:
        nodes = parse(_LOADER)
    except yaml.YAMLError:
        raise _yaml_error(_python_error(parse, text), text, path, what) from None
    documents = []
    for node in nodes:
        if node is None:
            continue
        try:
            value = _LOADER("").construct_document(node)
        except yaml.YAMLError as exc:  # e.g. an unhashable key; where, else where the document starts
            raise _yaml_error(exc, text, path, what, fallback=node.start_mark) from None
        documents.append(YamlDocument(value, node.start_mark.line + 1, node))
    return documents


def read_yaml(path: Path, what: str, multi: bool = False) -> Any:
    """The YAML document in the file (None when empty), or with `multi` the list of its documents' values;
    UserFileError when it cannot be read or is not YAML."""
    text = read_text(path, what)
    if multi:
        return [document.value for document in yaml_documents(text, path, what)]
    return parse_yaml(text, path, what)
