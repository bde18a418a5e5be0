"""The catalogue comes from the check markers: IDs unique, README in step with the code."""

from __future__ import annotations

import re
from collections import Counter

from aksid.catalogue import as_markdown, load_catalogue

from .harness import REPO

BEGIN, END = "<!-- catalogue:begin (aksid checks --format markdown) -->", "<!-- catalogue:end -->"


def test_check_ids_are_unique_and_well_formed() -> None:
    entries = load_catalogue()
    duplicates = [check_id for check_id, count in Counter(e.id for e in entries).items() if count > 1]
    assert not duplicates, f"check IDs used twice: {duplicates}"
    assert all(re.fullmatch(r"[A-Z]+-\d{3}", e.id) for e in entries)
    assert all(e.remediation and e.title for e in entries)


def test_readme_catalogue_matches_the_markers() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme and END in readme, "README lost its catalogue markers"
    documented = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == as_markdown(load_catalogue()).strip(), (
        "README catalogue drifted from the code: regenerate it with `aksid checks --format markdown`")


# -- what the checks declare, and what the reports derive from it ----------------------------------

def test_every_bundled_check_declares_what_it_reads() -> None:
    """A check that reads nothing cannot fail; every read is a unit of the snapshot, every link an arrow."""
    from aksid.units import ARROWS, CANARY_ARROWS, UNITS

    entries = load_catalogue()
    assert [e.id for e in entries if not e.reads] == []
    assert {unit for e in entries for unit in e.reads} <= set(UNITS)
    assert {name for e in entries for name in e.link} <= set(ARROWS + CANARY_ARROWS)
    assert all(set(e.groups) <= set(e.reads) for e in entries)


def test_each_unit_is_grouped_by_at_most_one_bundled_check() -> None:
    from collections import Counter

    twice = [unit for unit, count in Counter(u for e in load_catalogue() for u in e.groups).items() if count > 1]
    assert twice == [], f"units two checks claim in groups=: {twice}"


def test_every_arrow_of_the_chain_is_judged_and_a_check_may_judge_two() -> None:
    from aksid.reporting.chain import canary_link_checks, link_checks

    arrows = link_checks()
    assert all(arrows) and all(canary_link_checks())
    assert "RBAC-001" in arrows[2] and "RBAC-001" in arrows[3]  # identity → role, and role → zone


def test_a_new_check_needs_only_its_marker_to_be_drawn_grouped_and_named(tmp_path) -> None:  # noqa: ANN001
    """A check with `link` is on its arrow of the derived chain map; one without is not drawn; what it reads alone
    decides where the diff shows a unit's changes and which checks a missing unit leaves unjudged."""
    from aksid.catalogue import grouped_under, link_checks, readers
    from aksid.units import ARROWS, UNITS

    # a unit no bundled check reads (found, not named: a new bundled check may start reading any of them)
    unread = sorted(set(UNITS) - {unit for entry in load_catalogue() for unit in entry.reads})
    assert unread, "every unit is read by a bundled check: this test needs one that is not"
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "test_team.py").write_text(
        "from aksid.checks import check\n\n"
        f"@check('TEAM-001', 'drawn', 'low', remediation='r', reads=({unread[0]!r},), link='record -> ingress IP')\n"
        "def test_drawn(snapshot):\n    pass\n\n"
        "@check('TEAM-002', 'not drawn', 'low', remediation='r', reads=('kube:DaemonSet', 'kube:Pod'))\n"
        "def test_not_drawn(snapshot):\n    pass\n", encoding="utf-8")
    entries = load_catalogue([folder])
    derived = dict(zip(ARROWS, link_checks(ARROWS, entries), strict=True))
    assert derived["record → ingress IP"] == ("DNS-002", "TEAM-001")
    assert not any("TEAM-002" in ids for ids in derived.values())
    assert link_checks(ARROWS, [e for e in entries if not e.id.startswith("TEAM")]) == link_checks(ARROWS)
    # the only reader of a unit is the check its changes are shown under; of several, the one that groups it
    assert grouped_under(unread[0], entries) == "TEAM-001" and grouped_under(unread[0]) == "other"
    assert grouped_under("kube:Pod", entries) == "other" and grouped_under("kube:DaemonSet", entries) == "NMI-002"
    assert readers(unread[0], entries) == ("TEAM-001",)


def test_an_unknown_read_link_or_group_names_the_check() -> None:
    import pytest

    from aksid.checks import check

    for kwargs, words in ((dict(reads=("kube:Pods",)), "unknown read(s) kube:Pods"),
                          (dict(reads=("kube:Pod",), link="pod → identity"), "unknown link(s) pod → identity"),
                          (dict(reads=("kube:Pod",), groups=("kube:Node",)), "groups kube:Node, which it does not read")):
        with pytest.raises(ValueError, match=r"check TEAM-009: ") as raised:
            check("TEAM-009", "t", "low", remediation="r", **kwargs)
        assert words in str(raised.value)
    marker = check("TEAM-009", "t", "low", remediation="r", reads="kube:Pod", link=("pod -> binding",))
    assert marker.kwargs["reads"] == ("kube:Pod",) and marker.kwargs["link"] == ("pod → binding",)


def test_the_allowed_path_bears_on_what_it_follows() -> None:
    """`aksid diff`'s bears_on, derived from the reads: a change shown under ISS-001 (an Issuer's solver) or WI-004 (a
    ServiceAccount) bears on the allowed path too; nothing bears on a check that shares no evidence with it."""
    from aksid.diff_facts import also_bears_on

    also = also_bears_on()
    assert {"BIND-005", "WI-006"} <= set(also["ISS-001"]) and "WI-006" in also["WI-004"]
    assert "BIND-005" in also["BIND-002"] and "WI-006" in also["WI-003"]
    assert not {"BIND-005", "WI-006"} & set(also.get("TLS-004", ()))


def test_coverage_names_the_checks_a_missing_unit_leaves_unjudged() -> None:
    from aksid.coverage import coverage, describe

    document = {"kube": {"v1/Pod": {"status": "ok"}, "apps/v1/ReplicaSet": {"status": "error"}},
                "azure": {"roleAssignments": {"status": "error"}},
                "dns": {"parent": {"status": "ok", "value": {"servers": {"a.test.": {"status": "ok"}}}},
                        "servers": {"status": "ok", "value": {"ns1.": {"status": "error"}}}},
                "tls": {"handshake": {"status": "skipped"}}}
    report = coverage(document)
    assert report["areas"]["kube"]["missing"] == ["apps/v1/ReplicaSet"]
    assert report["areas"]["kube"]["affects"] == ["BIND-004", "BIND-005", "WI-006"]
    # MIG-001 compares a new identity's role assignments with the pod identity's; MIG-002 names the scale sets' rights
    assert report["areas"]["azure"]["affects"] == ["RBAC-001", "RBAC-002", "RBAC-003", "RBAC-005", "MIG-001", "MIG-002"]
    assert report["areas"]["dns"]["missing"] == ["servers ns1."] and report["areas"]["dns"]["affects"] == [
        "DNS-001", "DNS-003"]
    assert report["areas"]["tls"] == {"collected": 0, "total": 0, "missing": []}  # complete: nothing affected
    assert describe(report) == "evidence collected: 40% (kinds 1/2, ARM reads 0/1, DNS servers 1/2, TLS probes 0/0)"
