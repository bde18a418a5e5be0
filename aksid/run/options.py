"""What a run was asked to do, read once from the command line (pytest's options or an `aksid` subcommand).

Every other part of the run reads these fields, never the option parser: the `--aksid-*` spellings live in
aksid/activation.py, the meaning here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aksid.run.selection import Selection


@dataclass(frozen=True)
class RunOptions:
    mode: str = "attach"  # the evidence source (aksid/run/sources.py); `replay` when a snapshot is re-judged
    reports_dir: Path = Path("reports")
    replay: Path | None = None
    profile: Path | None = None
    targets: tuple[Path, ...] = ()  # a fleet: one profile per environment
    env_file: Path | None = None
    settings: tuple[str, ...] = ()  # --aksid-set pairs
    timeout: str | None = None  # --aksid-timeout (the setting collect_timeout)
    kube_context: str | None = None
    manifests: tuple[Path, ...] = ()
    plans: tuple[Path, ...] = ()
    arm_templates: tuple[Path, ...] = ()
    arm_parameters: tuple[Path, ...] = ()
    source_root: Path | None = None
    provision_cmd: str | None = None
    teardown_cmd: str | None = None
    read_secrets: bool = False
    waivers: Path | None = None
    fail_on: str = "low"
    baseline: Path | None = None
    min_coverage: float | None = None
    checks: tuple[str, ...] = ()  # --aksid-check: only these check IDs or areas (aksid/run/selection.py)
    skip_checks: tuple[str, ...] = ()  # --aksid-skip-check: not these
    verbose: bool = False
    parallel: int = 0  # pytest-xdist's -n (0: one process)
    mode_given: bool = field(default=False, compare=False)  # --aksid-mode was on the command line

    @property
    def overrides(self) -> list[str]:
        """`--aksid-set` pairs, then `--aksid-timeout` (the last word), as config.parse_overrides reads them."""
        return [*self.settings, *([f"--aksid-timeout={self.timeout}"] if self.timeout is not None else [])]

    @property
    def selection(self) -> Selection:
        return Selection.of(self.checks, self.skip_checks)

    @property
    def is_fleet(self) -> bool:
        return bool(self.targets)

    @classmethod
    def read(cls, option: Callable[[str], Any], *, verbose: bool = False, parallel: int = 0) -> RunOptions:
        """From a getter of the parsed options by their dest (`aksid_profile`...): pytest's `config.getoption`."""
        def path(name: str) -> Path | None:
            value = option(name)
            return Path(value).expanduser() if value else None

        def paths(name: str) -> tuple[Path, ...]:
            return tuple(Path(value).expanduser() for value in option(name) or ())

        replay = path("aksid_replay")
        return cls(
            mode="replay" if replay else option("aksid_mode") or "attach", reports_dir=Path(option("aksid_reports_dir")),
            replay=replay, profile=path("aksid_profile"), targets=paths("aksid_target"), env_file=path("aksid_env_file"),
            settings=tuple(option("aksid_set") or ()),
            timeout=str(option("aksid_timeout")) if option("aksid_timeout") is not None else None,
            kube_context=option("aksid_kube_context"), manifests=paths("aksid_manifests"), plans=paths("aksid_plan"),
            arm_templates=paths("aksid_arm_template"), arm_parameters=paths("aksid_arm_parameters"),
            source_root=path("aksid_source_root"), provision_cmd=option("aksid_provision_cmd"),
            teardown_cmd=option("aksid_teardown_cmd"), read_secrets=bool(option("aksid_read_secrets")),
            waivers=path("aksid_waivers"), fail_on=option("aksid_fail_on"), baseline=path("aksid_baseline"),
            min_coverage=option("aksid_min_coverage"), verbose=verbose, parallel=parallel,
            checks=tuple(option("aksid_check") or ()), skip_checks=tuple(option("aksid_skip_check") or ()),
            mode_given=bool(option("aksid_mode")),
        )
