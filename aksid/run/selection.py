"""Which checks a run runs: `--aksid-check ID|AREA` keeps only those named, `--aksid-skip-check ID|AREA` leaves
those named out.

Modelled on checkov's `-c/--check` ("filter scan to run only on a specific check identifier (allowlist)") and
`--skip-check` ("... (denylist)"), both taking "multiple checks separated by comma delimiter", and on kube-bench's
`--check`/`--skip` ("a comma-delimited list of checks"): repeatable, comma-delimited, a skip wins over a check
(the allowlist, then the denylist). aksid adds the area (`RBAC`) as a name for all of its checks. A name that is no
check or area is a usage error naming the closest ones (a typo must not silently run nothing).
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aksid.catalogue import AREAS

CHECK_FLAG, SKIP_FLAG = "--aksid-check", "--aksid-skip-check"


@dataclass(frozen=True)
class Selection:
    only: tuple[str, ...] = ()  # upper-cased check IDs or areas; empty: every check
    skip: tuple[str, ...] = ()

    @classmethod
    def of(cls, only: Iterable[str], skip: Iterable[str]) -> Selection:
        return cls(_names(only), _names(skip))

    def __bool__(self) -> bool:
        return bool(self.only or self.skip)

    def keeps(self, check_id: str, area: str) -> bool:
        names = {check_id.upper(), area.upper()}
        return (not self.only or bool(names & set(self.only))) and not names & set(self.skip)

    def dropped(self, checks: Iterable[tuple[str, str]], known: Iterable[str]) -> tuple[set[int], str | None]:
        """Of (check id, area) pairs, the positions this selection leaves out, and the sentence naming an unknown
        name (None when every name is known)."""
        return {i for i, (check_id, area) in enumerate(checks) if not self.keeps(check_id, area)}, self.unknown(known)

    def unknown(self, known: Iterable[str]) -> str | None:
        """The usage error for the first name that is no known check ID or area, with the closest known ones."""
        known = sorted({name.upper() for name in known})
        for flag, names in ((CHECK_FLAG, self.only), (SKIP_FLAG, self.skip)):
            for name in names:
                if name in known:
                    continue
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
                hint = f"did you mean {_either(close)}?" if close else f"the areas are {', '.join(AREAS)}"
                return f"{flag} {name}: no check or area has that name; {hint} (`aksid checks` lists every check)"
        return None


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(name.strip().upper() for value in values for name in value.split(",") if name.strip())


def names_of(check_ids: Iterable[str]) -> set[str]:
    """The names that select checks: their IDs and their areas (the ID's prefix), and every catalogued area."""
    ids = set(check_ids)
    return ids | {check_id.split("-", 1)[0] for check_id in ids} | set(AREAS)


def declared_ids(folder: Path) -> set[str]:
    """The check IDs the modules of `folder` declare, read from their source (`@check("RBAC-003", ...)`).

    Read, not imported: importing the bundled suites before pytest does would keep pytest from rewriting their
    asserts (aksid/paths.py). The catalogue (aksid.catalogue.builtin, which imports them) agrees: tested."""
    ids = set()
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and "check" in (getattr(node.func, "id", None), getattr(node.func, "attr", None))):
                continue
            given = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "id"), None)
            if isinstance(given, ast.Constant) and isinstance(given.value, str):
                ids.add(given.value)
    return ids


def beside_other_paths(args: Iterable[str], suites: Path) -> bool:
    """Whether the run collects paths besides the bundled suites (a team's checks, whose IDs are known only once
    collected)."""
    for arg in args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if not (path == suites or suites in path.parents):
            return True
    return False
