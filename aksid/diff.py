"""`aksid diff OLD NEW`: what changed that matters between two runs, grouped by check.

Each side is a snapshot.json, a results.json, or a reports folder holding them (a results.json brings the
snapshot beside it). Snapshots are compared by their facts (aksid/diff_facts.py, where the rules for noise
are written); results by each check's outcome per subject.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aksid.diff_facts import Fact, also_bears_on, snapshot_facts, strip_pod_suffix
from aksid.userfiles import read_json_object, reported_as

DIFF_SCHEMA = "aksid.diff/v1"
RED = ("failed", "error")


class DiffError(Exception):
    """A side could not be read; the message says which and why."""


@dataclass
class Side:
    label: str
    snapshot: dict[str, Any] | None = None
    results: dict[str, Any] | None = None


@dataclass(frozen=True)
class Change:
    check: str
    category: str
    action: str  # added | removed | changed | turned red | turned green
    subject: str
    before: Any = None
    after: Any = None

    @property
    def text(self) -> str:
        if self.action == "added":
            return f"{self.category} added: {self.subject}" + _shown(self.after, " = ")
        if self.action == "removed":
            return f"{self.category} removed: {self.subject}" + _shown(self.before, " (was ") + (
                ")" if _shown(self.before, "x") else "")
        if self.action in ("turned red", "turned green"):
            return f"{self.subject} {self.action}: {self.before or 'absent'} → {self.after or 'absent'}"
        if isinstance(self.before, dict) and isinstance(self.after, dict) and self.before.keys() == self.after.keys():
            fields = "; ".join(f"{k}: {_compact(self.before[k], 80)} → {_compact(self.after[k], 80)}" for k in self.before)
            return f"{self.category} {self.subject} changed: {_compact(fields, 400)}"
        return f"{self.category} {self.subject} changed: {_compact(self.before)} → {_compact(self.after)}"


@dataclass
class Diff:
    old: str
    new: str
    changes: list[Change] = field(default_factory=list)
    newly_red: list[dict[str, Any]] = field(default_factory=list)  # {id, subject, target} of checks that turned red

    def bears_on(self) -> set[str]:
        """Every check a change bears on: the one it is grouped under, and the checks that follow the same evidence
        without any of it grouped under them (the allowed path BIND-005/WI-006: an Issuer's solver is ISS-001's and
        cert-manager's path), as the checks' declared reads overlap (aksid.diff_facts.also_bears_on)."""
        found = {change.check for change in self.changes}
        also = also_bears_on()
        return found | {other for check in found for other in also.get(check, ())}

    def grouped(self) -> dict[str, list[Change]]:
        groups: dict[str, list[Change]] = {}
        for change in sorted(self.changes, key=lambda c: (c.check == "other", c.check, c.category, c.subject)):
            groups.setdefault(change.check, []).append(change)
        return groups

    def document(self) -> dict[str, Any]:
        return {"schema": DIFF_SCHEMA, "old": self.old, "new": self.new, "changed": bool(self.changes),
                "changes": [{**asdict(c), "text": c.text} for c in self.changes], "newly_red": self.newly_red}


def _shown(value: Any, prefix: str) -> str:
    return "" if value in (None, "assigned", "answers", "served") else prefix + _compact(value)


def _compact(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- reading the sides ----------------------------------------------------------------------------------


def load_side(path: Path, what: str = "") -> Side:
    """A snapshot, a results.json (with the snapshot beside it, when there is one) or a reports folder; `what`
    names the side in an error ("OLD", "the baseline")."""
    if path.is_dir():
        side = Side(str(path))
        for name in ("results.json", "snapshot.json"):
            if (path / name).exists():
                _fill(side, _read(path / name, what), path / name)
        if side.snapshot is None and side.results is None:
            raise DiffError(f"{path} holds neither results.json nor snapshot.json")
        return side
    side = Side(str(path))
    _fill(side, _read(path, what), path)
    if side.results is not None and side.snapshot is None and (path.parent / "snapshot.json").exists():
        _fill(side, _read(path.parent / "snapshot.json", what), path.parent / "snapshot.json")
    return side


def _read(path: Path, what: str) -> dict[str, Any]:
    with reported_as(DiffError):
        return read_json_object(path, what)


def _fill(side: Side, document: dict[str, Any], path: Path) -> None:
    schema = str(document.get("schema"))
    if schema.startswith("aksid.snapshot/"):
        side.snapshot = document
    elif schema.startswith("aksid.results/"):
        side.results = document
    else:
        raise DiffError(f"{path} is neither an aksid snapshot nor aksid results (schema {schema!r})")


# --- comparing ------------------------------------------------------------------------------------------


def compare(old: Side, new: Side) -> Diff:
    diff = Diff(old.label, new.label)
    if old.snapshot is not None and new.snapshot is not None:
        diff.changes += compare_facts(snapshot_facts(old.snapshot), snapshot_facts(new.snapshot))
    if old.results is not None and new.results is not None:
        changes, diff.newly_red = compare_results(old.results, new.results)
        diff.changes += changes
    return diff


def compare_facts(old: dict[str, Fact], new: dict[str, Fact]) -> list[Change]:
    """Added, removed, changed facts; a kind that appeared, went or could not be listed hides its objects' changes."""
    changes = []
    changed = {key for key in old.keys() | new.keys() if _value(old, key) != _value(new, key)}
    for key in sorted(changed):
        before, after = old.get(key), new.get(key)
        if (before or after).under in changed:  # type: ignore[union-attr]
            continue
        if before is None and after is not None:
            changes.append(Change(after.check, after.category, "added", after.subject, None, after.value))
        elif after is None and before is not None:
            changes.append(Change(before.check, before.category, "removed", before.subject, before.value, None))
        elif before is not None and after is not None and before.value != after.value:
            changes.append(Change(after.check, after.category, "changed", after.subject, *_narrowed(before.value,
                                                                                                   after.value)))
    return changes


def _value(facts: dict[str, Fact], key: str) -> Any:
    fact = facts.get(key)
    return ("absent",) if fact is None else fact.value


def _narrowed(before: Any, after: Any, path: str = "") -> tuple[Any, Any]:
    """For objects: only the fields that differ, by their path (`spec.replicas: 1 → 2`)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return before, after
    old, new = {}, {}
    for field_path, was, now in _differences(before, after, path):
        old[field_path], new[field_path] = was, now
    return old, new


def _differences(before: Any, after: Any, path: str) -> list[tuple[str, Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(before.keys() | after.keys()):
            if before.get(key) != after.get(key):
                found += _differences(before.get(key), after.get(key), f"{path}.{key}" if path else key)
        return found
    return [(path, before, after)]


def result_key(entry: dict[str, Any], with_target: bool = True) -> tuple[str, str, str]:
    """(id, subject with any pod hash suffix dropped, target); one environment's runs compare without the target's name."""
    target = str(entry.get("target") or "") if with_target else ""
    return (entry["id"], strip_pod_suffix(str(entry.get("subject", ""))), target)


def compare_results(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[Change], list[dict[str, Any]]]:
    """Checks that turned red (or green again) per subject; a subject red now and absent before turned red too."""
    fleet = _fleet(old) or _fleet(new)
    before = {result_key(c, fleet): c["outcome"] for c in old.get("checks") or []}
    after = {result_key(c, fleet): c["outcome"] for c in new.get("checks") or []}
    changes, newly_red = [], []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        check_id, subject, target = key
        label = f"{check_id} [{target + ': ' if target else ''}{subject}]"
        if now in RED and was not in RED:
            changes.append(Change(check_id, "check", "turned red", label, was, now))
            newly_red.append({"id": check_id, "subject": subject, "target": target or None})
        elif was in RED and now not in RED and now is not None:
            changes.append(Change(check_id, "check", "turned green", label, was, now))
    return changes, newly_red


def _fleet(results: dict[str, Any]) -> bool:
    return len({c.get("target") for c in results.get("checks") or []}) > 1


def diff_paths(old: Path, new: Path) -> Diff:
    return compare(load_side(old, "OLD"), load_side(new, "NEW"))


# --- rendering --------------------------------------------------------------------------------------------


def _titles() -> dict[str, str]:
    try:
        from aksid.catalogue import load_catalogue

        return {entry.id: entry.title for entry in load_catalogue()}
    except Exception:  # noqa: BLE001 - titles are a courtesy; the diff stands without them
        return {}


_SIGN = {"added": "+", "removed": "-", "changed": "~", "turned red": "✗", "turned green": "✓"}


def as_text(diff: Diff) -> str:
    lines = [f"aksid diff: {diff.old} → {diff.new}"]
    if not diff.changes:
        return "\n".join([*lines, "no change"]) + "\n"
    titles = _titles()
    for check, changes in diff.grouped().items():
        lines.append(f"{check}" + (f" — {titles[check]}" if check in titles else ""))
        lines += [f"  {_SIGN[c.action]} {c.text}" for c in changes]
    lines.append(f"{len(diff.changes)} change(s)" + (f", {len(diff.newly_red)} check(s) turned red"
                                                      if diff.newly_red else ""))
    return "\n".join(lines) + "\n"


def markdown_lines(diff: Diff, heading: str = "###") -> list[str]:
    if not diff.changes:
        return ["no change", ""]
    titles, lines = _titles(), []
    for check, changes in diff.grouped().items():
        lines.append(f"{heading} {check}" + (f" — {titles[check]}" if check in titles else ""))
        lines += [f"- {_SIGN[c.action]} " + c.text.replace("|", r"\|") for c in changes] + [""]
    return lines


def as_markdown(diff: Diff) -> str:
    return "\n".join([f"## aksid diff: `{diff.old}` → `{diff.new}`", "", *markdown_lines(diff)])


def render(diff: Diff, form: str) -> str:
    if form == "json":
        return json.dumps(diff.document(), indent=2) + "\n"
    return as_markdown(diff) if form == "markdown" else as_text(diff)


def diff_command(old: Path, new: Path, form: str) -> int:
    """`aksid diff`: 0 whether or not anything changed (a change is news, not a failure); 4 when a side is unreadable."""
    import sys

    try:
        diff = diff_paths(old, new)
    except DiffError as exc:
        print(f"aksid diff: {exc}", file=sys.stderr)
        return 4
    print(render(diff, form), end="")
    return 0
