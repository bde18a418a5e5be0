"""Read the tutorial's env.sh without executing it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# `export NAME=value`, `NAME="value"`, `NAME='value'`; comments and blank lines ignored.
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
# Inside single quotes the shell expands nothing: `'$(date)'` is those seven characters, not a command.
_SINGLE_QUOTED = re.compile(r"'[^']*'")


class EnvFileError(ValueError):
    """The env file cannot be read as plain assignments."""


@dataclass(frozen=True)
class Unrun:
    """An assignment whose value a shell would compute by running a command (`$(...)` or backquotes)."""

    line: int
    text: str  # the value as written, e.g. "$(az account show --query id -o tsv)"


@dataclass
class EnvFile:
    path: Path
    values: dict[str, str] = field(default_factory=dict)
    # Variables the file assigns with a command substitution, left out of `values` (the last assignment wins).
    unrun: dict[str, Unrun] = field(default_factory=dict)


def read_env_file(path: Path) -> EnvFile:
    """The variables assigned in `path`, and those it assigns with a command substitution (never run).

    Only literal values and `$VAR`/`${VAR}` references to variables assigned earlier in the same
    file are understood; a command substitution (`$(az account show ...)`, backquotes) is not run — such a
    variable is left out of the values and kept in `unrun`, so a caller that needs it can say why it is missing.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvFileError(f"the env file {path} cannot be read ({exc.strerror or exc})") from None
    env = EnvFile(path)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if not match:
            continue  # other shell statements (if/fi, echo) carry no settings
        name, raw = match.groups()
        if is_command_substitution(raw):
            env.values.pop(name, None)
            env.unrun[name] = Unrun(number, _without_comment(raw))
            continue
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise EnvFileError(f"the env file {path} line {number} is not a valid assignment ({exc})") from None
        value = " ".join(words)
        if not raw.lstrip().startswith("'"):
            value = _REFERENCE.sub(lambda m: env.values.get(m.group(1) or m.group(2), ""), value)
        env.values[name] = value
        env.unrun.pop(name, None)
    return env


def parse_env_file(path: Path) -> dict[str, str]:
    """Return the variables assigned in `path` (see read_env_file)."""
    return read_env_file(path).values


def is_command_substitution(raw: str) -> bool:
    """True when the shell would run a command to compute this value: `$(...)` or `` `...` `` outside single quotes."""
    unquoted = _SINGLE_QUOTED.sub("", raw)
    return "$(" in unquoted or "`" in unquoted


def _without_comment(raw: str) -> str:
    """The value as written, without the line's trailing `# comment` and the quotes around it."""
    value = raw.strip()
    if " #" in value and value.rfind(")") < value.rfind(" #"):
        value = value[:value.rfind(" #")].rstrip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value
