"""Several environments in one run: each target is a member with its own target, credentials and snapshot.

A member's name is its profile's `name:` or the profile file's stem; two members with one name are a
usage error. Members are collected one after the other, or side by side with -n; their snapshots go to
`reports/snapshots/<name>.json` and an index, `reports/fleet.json`, tells xdist workers where they are."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.config import ConfigError, Target
from aksid.userfiles import UserFileError, read_yaml

INDEX = "fleet.json"


@dataclass
class Member:
    name: str
    target: Target
    kube_configuration: Any = None
    credential: Any = None
    snapshot: Any = None  # aksid.snapshot.Snapshot
    snapshot_path: Path | None = None


def member_name(profile: Path) -> str:
    """The profile's `name:`, else the file's stem."""
    try:
        document = read_yaml(profile, "the profile")
    except UserFileError:
        document = None  # load_profile reports it in one sentence
    name = document.get("name") if isinstance(document, dict) else None
    return str(name or profile.stem)


def unique_names(profiles: list[Path]) -> list[str]:
    names = [member_name(profile) for profile in profiles]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise ConfigError(f"two targets are named {', '.join(doubled)}: give each profile its own `name:`")
    return names


def collect_members(members: list[Member], collect: Callable[[Member], None], parallel: int, reports_dir: Path) -> Path:
    """Collect every member (side by side when `parallel` > 1), then write the index; return its path."""
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="aksid-fleet") as pool:
        for future in [pool.submit(collect, member) for member in members]:
            future.result()
    index = {member.name: str(member.snapshot_path) for member in members}
    path = reports_dir / INDEX
    fd, tmp = tempfile.mkstemp(dir=reports_dir, prefix=".fleet-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(index, handle)
    os.replace(tmp, path)  # whole or not at all: workers wait for it
    return path


def read_index(path: Path) -> dict[str, Path]:
    return {name: Path(value) for name, value in json.loads(path.read_text(encoding="utf-8")).items()}
