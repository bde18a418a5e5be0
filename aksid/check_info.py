"""What an aksid check is, without pytest: its declaration (CheckInfo), the severities, and how a subjects function
says a check does not apply. aksid/checks.py puts it on a test as the `check` marker; a run (aksid/run/) reads it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aksid.modes import MODES, all_modes

__all__ = ["IDENTITY_MODELS", "SEVERITIES", "CheckInfo", "NotApplicable", "SubjectsFn", "check_info"]

IDENTITY_MODELS = ("pod-identity", "workload-identity")  # aksid.identity_models.MODELS, without importing the snapshot

SEVERITIES = ("low", "medium", "high", "critical")

# A subjects function maps (snapshot, target) to {subject id: value}; each becomes one test case.
SubjectsFn = Callable[[Any, Any], Mapping[str, Any]]


class NotApplicable(Exception):
    """Raised by a subjects function when the check does not apply here; the message is the reason."""


@dataclass(frozen=True)
class CheckInfo:
    id: str
    title: str
    severity: str
    remediation: str
    modes: tuple[str, ...] = MODES
    model: str | None = None  # the identity model the check belongs to (aksid.identity_models); None: every model
    reads: tuple[str, ...] = ()  # the units of evidence it reads (aksid.units: `kube:Pod`, `azure:roleAssignments`, ...)
    link: tuple[str, ...] = ()  # the arrows of the chain picture it judges (`identity → role`); none: not drawn
    groups: tuple[str, ...] = ()  # of its reads, those whose changes `aksid diff` shows under it (aksid.catalogue)

    @property
    def area(self) -> str:
        return self.id.split("-", 1)[0]


def check_info(marker: Any) -> CheckInfo:
    """The declaration a `check` marker (a pytest.Mark) carries."""
    kw = marker.kwargs
    return CheckInfo(id=kw["id"], title=kw["title"], severity=kw["severity"], remediation=kw["remediation"],
                     modes=tuple(kw.get("modes") or all_modes()), model=kw.get("model"), reads=tuple(kw.get("reads") or ()),
                     link=tuple(kw.get("link") or ()), groups=tuple(kw.get("groups") or ()))
