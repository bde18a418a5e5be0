"""The team's own provisioning commands (a helmfile, terraform, the tutorial's scripts) around a run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def run_hook(name: str, command: str, say: Callable[[str], None]) -> bool:
    """Run `command` through the shell, its output shown line by line; True when it exits 0."""
    say(f"{name} command: {command}")
    began = time.monotonic()
    try:
        process = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: S602 - the user's own command line
    except OSError as exc:
        say(f"{name} command could not start: {exc}")
        return False
    assert process.stdout is not None
    for line in process.stdout:
        say(f"  {name}: {line.rstrip()}")
    code = process.wait()
    say(f"{name} command exited {code} after {time.monotonic() - began:.1f} s")
    return code == 0
