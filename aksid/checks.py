"""The `check` marker: what makes a pytest test an aksid conformance check.

What a check is (CheckInfo, severities, NotApplicable) lives in aksid/check_info.py, which a run reads without
pytest; this module is the marker that puts it on a test."""

from __future__ import annotations

import re

import pytest

from aksid.check_info import IDENTITY_MODELS, SEVERITIES, CheckInfo, NotApplicable, SubjectsFn, check_info
from aksid.modes import all_modes
from aksid.units import ARROWS, CANARY_ARROWS, UNITS, arrow

__all__ = ["SEVERITIES", "CheckInfo", "NotApplicable", "check", "check_info"]  # what checks and the plugin import

_ID = re.compile(r"^[A-Z]+-\d{3}$")


def check(
    id: str, title: str, severity: str, remediation: str, subjects: SubjectsFn | None = None,
    modes: tuple[str, ...] | None = None, model: str | None = None, reads: tuple[str, ...] | str = (),
    link: tuple[str, ...] | str = (), groups: tuple[str, ...] | str = (),
) -> pytest.MarkDecorator:
    """Mark a test as check `id`; with `subjects`, the test is run once per subject (argument `subject`).

    `modes` names the modes the check applies to (default: every mode); teams use their own ID prefix.
    `model` (`pod-identity` or `workload-identity`) makes the check skip, with the reason, where that identity
    model is not in use.
    `reads` names the units of evidence the check reads (aksid.units: `kube:DaemonSet`, `azure:roleAssignments`,
    `dns:servers`, `tls:handshake`, `provision:probes`): the coverage names the checks a missing unit leaves
    unjudged, and `aksid diff` groups a change under a check that reads it. `link` names the arrow(s) of the chain
    picture the check judges (`pod → binding`, or `pod -> binding`; the canary's `canary: name servers →
    certificate`): report.html colours them by its outcome; a check without one is not drawn. `groups` names, of its
    reads, those whose changes the diff shows under this check when several checks read them.
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
    reads, groups = _names(reads), _names(groups)
    unknown = [unit for unit in reads if unit not in UNITS]
    if unknown:
        raise ValueError(f"check {id}: unknown read(s) {', '.join(unknown)}; a read is a unit of the snapshot "
                         f"(aksid.units), e.g. kube:DaemonSet, azure:roleAssignments, dns:servers, tls:handshake")
    link = tuple(arrow(name) for name in _names(link))
    unknown = [name for name in link if name not in ARROWS + CANARY_ARROWS]
    if unknown:
        raise ValueError(f"check {id}: unknown link(s) {', '.join(unknown)}; the chain's arrows are "
                         f"{', '.join(ARROWS)} (the canary's: {', '.join(CANARY_ARROWS)})")
    unread = [unit for unit in groups if unit not in reads]
    if unread:
        raise ValueError(f"check {id}: groups {', '.join(unread)}, which it does not read")
    return pytest.mark.check(id=id, title=title, severity=severity, remediation=remediation, subjects=subjects,
                             modes=tuple(modes) if modes else None, model=model, reads=reads, link=link, groups=groups)


def _names(value: tuple[str, ...] | str) -> tuple[str, ...]:
    """One name or several, each once, in the order given."""
    return tuple(dict.fromkeys((value,) if isinstance(value, str) else value or ()))
