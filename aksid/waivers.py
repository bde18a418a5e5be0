"""Waivers: a known failure accepted for a while, with a reason and an expiry date.

File format (YAML list):
    - check: RBAC-002                 # a check ID
      subject: "identity/*"           # fnmatch pattern over the subject (default: every subject)
      reason: Reader on the DNS group is needed by our backup job (TICKET-123)
      expires: 2027-03-31             # after this date the waiver no longer applies, and says so
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aksid.userfiles import read_yaml, reported_as

_KEYS = {"check", "subject", "reason", "expires"}


class WaiverError(ValueError):
    """The waiver file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Waiver:
    index: int
    check: str
    subject: str
    reason: str
    expires: dt.date

    def matches(self, check_id: str, subject: str) -> bool:
        return check_id == self.check and fnmatch.fnmatchcase(subject, self.subject)

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def describe(self) -> dict[str, Any]:
        return {"index": self.index, "check": self.check, "subject": self.subject, "reason": self.reason,
                "expires": self.expires.isoformat()}


def load_waivers(path: Path) -> list[Waiver]:
    with reported_as(WaiverError):
        document = read_yaml(path, "the waiver file")
    if document is None:
        return []
    if not isinstance(document, list):
        raise WaiverError(f"the waiver file {path} must be a YAML list of waivers")
    waivers = []
    for index, entry in enumerate(document):
        where = f"the waiver file {path} entry {index + 1}"
        if not isinstance(entry, dict):
            raise WaiverError(f"{where} must be a mapping with check, reason, expires")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise WaiverError(f"{where} has unknown key(s) {', '.join(unknown)}")
        missing = [key for key in ("check", "reason", "expires") if not entry.get(key)]
        if missing:
            raise WaiverError(f"{where} needs {', '.join(missing)}: a waiver without a reason and an expiry is a silent pass")
        expires = entry["expires"]
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise WaiverError(f"{where} expires '{entry['expires']}' is not a date (YYYY-MM-DD)") from None
        if not isinstance(expires, dt.date):
            raise WaiverError(f"{where} expires must be a date (YYYY-MM-DD)")
        waivers.append(Waiver(index, str(entry["check"]), str(entry.get("subject") or "*"), str(entry["reason"]), expires))
    return waivers


def find_waiver(waivers: list[Waiver], check_id: str, subject: str) -> Waiver | None:
    return next((w for w in waivers if w.matches(check_id, subject)), None)
