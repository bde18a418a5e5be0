"""The `check` marker: what makes a pytest test an aksid conformance check."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from aksid.modes import MODES, all_modes

IDENTITY_MODELS = ("pod-identity", "workload-identity")  # aksid.identity_models.MODELS, without importing the snapshot

SEVERITIES = ("low", "medium", "high", "critical")
_ID = re.compile(r"^[A-Z]+-\d{3}$")

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

    @property
    def area(self) -> str:
        return self.id.split("-", 1)[0]


def check(
    id: str, title: str, severity: str, remediation: str, subjects: SubjectsFn | None = None,
    modes: tuple[str, ...] | None = None, model: str | None = None,
) -> pytest.MarkDecorator:
    """Mark a test as check `id`; with `subjects`, the test is run once per subject (argument `subject`).

    `modes` names the modes the check applies to (default: every mode); teams use their own ID prefix.
    `model` (`pod-identity` or `workload-identity`) makes the check skip, with the reason, where that identity
    model is not in use.
    """
    if not _ID.match(id):
        raise ValueError(f"check id {id!r} must look like AREA-000")
    if severity not in SEVERITIES:
        raise ValueError(f"check {id}: severity must be one of {SEVERITIES}")
    unknown = sorted(set(modes or ()) - set(all_modes()))
    if unknown:
        raise ValueError(f"check {id}: unknown mode(s) {', '.join(unknown)}; modes are {', '.join(all_modes())}")
    if model is not None and model not in IDENTITY_MODELS:
        raise ValueError(f"check {id}: unknown identity model {model!r}; models are {', '.join(IDENTITY_MODELS)}")
    return pytest.mark.check(id=id, title=title, severity=severity, remediation=remediation, subjects=subjects,
                             modes=tuple(modes) if modes else None, model=model)


def check_info(marker: pytest.Mark) -> CheckInfo:
    kw = marker.kwargs
    return CheckInfo(id=kw["id"], title=kw["title"], severity=kw["severity"], remediation=kw["remediation"],
                     modes=tuple(kw.get("modes") or all_modes()), model=kw.get("model"))
