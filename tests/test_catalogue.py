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
