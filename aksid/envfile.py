"""Read the tutorial's env.sh without executing it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

# `export NAME=value`, `NAME="value"`, `NAME='value'`; comments and blank lines ignored.
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class EnvFileError(ValueError):
    """The env file cannot be read as plain assignments."""


def parse_env_file(path: Path) -> dict[str, str]:
    """Return the variables assigned in `path`.

    Only literal values and `$VAR`/`${VAR}` references to variables assigned earlier in the same
    file are understood; command substitutions (`$(az account show ...)`) are not run — those
    values are left out, so the caller reports them as missing rather than guessing.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvFileError(f"the env file {path} cannot be read ({exc.strerror or exc})") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if not match:
            continue  # other shell statements (if/fi, echo) carry no settings
        name, raw = match.groups()
        if "$(" in raw or "`" in raw:
            continue
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise EnvFileError(f"the env file {path} line {number} is not a valid assignment ({exc})") from None
        value = " ".join(words)
        if not raw.lstrip().startswith("'"):
            value = _REFERENCE.sub(lambda m: values.get(m.group(1) or m.group(2), ""), value)
        values[name] = value
    return values
