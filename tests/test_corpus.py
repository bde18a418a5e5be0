"""Static mode on real files (tests/corpus/): every case gives the verdicts its row of cases.yaml states.

The files are as their projects publish them (tests/corpus/SOURCES.md: repository, commit, licence); the table
says, per check, the right verdict and what it rests on. A file a tutorial asks to fill in gets its values in the
table (env, arm_parameters), never in the file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from .corpus.runner import CORPUS, load_cases, run_case, wrong_verdicts

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_corpus_case_gives_its_verdicts(case, tmp_path: Path) -> None:
    verdicts = run_case(case, tmp_path)
    assert not wrong_verdicts(case, verdicts), "\n".join(wrong_verdicts(case, verdicts)) + "\n" + verdicts.output[-3000:]
    assert "INTERNALERROR" not in verdicts.output and "Traceback" not in verdicts.output


def test_every_row_says_why_and_on_what_it_rests() -> None:
    for case in CASES:
        assert case.why, f"{case.name}: no `why`"
        for check_id, row in case.expect.items():
            assert row.get("outcome") in ("passed", "failed", "error", "skipped"), (case.name, check_id)
            assert row.get("why") and row.get("basis"), f"{case.name} {check_id}: a verdict needs `why` and `basis`"
            if row["outcome"] == "error":
                assert row.get("nothing_better"), f"{case.name} {check_id}: an error must say why nothing better is possible"


def test_the_corpus_is_real_files_with_their_sources() -> None:
    """At least 25 files from at least 8 repositories; each file listed in SOURCES.md with its commit and licence,
    and its sha256 there matches the file (nobody edited it to pass)."""
    sources = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    rows = {m.group(1): m for m in re.finditer(
        r"^\| `([^`]+)` \| ([\w.-]+/[\w.-]+) \| `([0-9a-f]{40})` \| `([^`]+)` \| ([\w.-]+) \| `([0-9a-f]{64})` \|",
        sources, re.M)}
    files = sorted(str(p.relative_to(CORPUS)) for folder in ("terraform", "arm", "manifests")
                   for p in (CORPUS / folder).glob("*") if p.is_file())
    assert len(files) >= 25 and len({rows[f].group(2) for f in files if f in rows}) >= 8, (len(files), len(rows))
    for name in files:
        assert name in rows, f"{name} is not in SOURCES.md"
        assert hashlib.sha256((CORPUS / name).read_bytes()).hexdigest() == rows[name].group(6), f"{name} was changed"
    used = {f for case in CASES for f in case.files}
    assert set(files) <= used, f"files no case reads: {sorted(set(files) - used)}"


def test_a_third_of_the_cases_was_set_aside() -> None:
    aside = [c for c in CASES if c.set_aside]
    assert len(aside) * 3 >= len(CASES) - 2, (len(aside), len(CASES))
