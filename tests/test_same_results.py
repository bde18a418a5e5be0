"""The same results as before: four runs of the current code, normalised (tests/golden/normalise.py), equal the
goldens (tests/golden/README.md: written by b349c5b, before aksid/plugin.py became aksid/run/, and rewritten once
for the checks #25 and #26 added, every difference then an addition, listed in ADDED-since-b349c5b.txt).

The runs come from the fixtures the other self-tests share (conftest.py's base_reports, test_static.py's
rendered tutorial), so the attach runs cost nothing when another test of the worker asked for them already.
A change that legitimately alters results: rerun tests/golden/regenerate.py (tests/golden/README.md).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .golden.normalise import canonical, differences, normalise
from .test_static import rendered, static

GOLDEN = Path(__file__).resolve().parent / "golden"
RUNS = ("attach-healthy", "attach-healthy-wi", "provision-healthy", "static-tutorial")


@pytest.fixture(scope="module")
def static_tutorial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/test_static.py's run on the rendered tutorial (healthy): its reports folder."""
    run = static(rendered("healthy", tmp_path_factory.mktemp("same-results-static")))
    assert run.code == 0, run.stdout + run.stderr
    return run.reports


@pytest.fixture
def reports_of(base_reports: Any, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    def reports(run: str) -> Path:
        if run == "static-tutorial":
            return request.getfixturevalue("static_tutorial")
        mode, scenario = run.split("-", 1)
        return base_reports(scenario, mode)

    return reports


def golden(run: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"results-{run}.json").read_text(encoding="utf-8"))


def assert_same_results(run: str, results: dict[str, Any]) -> None:
    found = differences(golden(run), normalise(results))
    assert not found, (f"{run}: the results differ from tests/golden/results-{run}.json; first: "
                       f"{found[0]}\n  " + "\n  ".join(found))


@pytest.mark.parametrize("run", RUNS)
def test_the_current_code_gives_the_golden_results(run: str, reports_of: Callable[[str], Path]) -> None:
    results = json.loads((reports_of(run) / "results.json").read_text(encoding="utf-8"))
    assert_same_results(run, results)


def test_a_changed_outcome_is_reported_by_its_check_and_subject(base_reports: Any, tmp_path: Path) -> None:
    """A copy of a real run's reports with one outcome turned: the comparison names that check first."""
    shutil.copy(base_reports("healthy") / "results.json", tmp_path / "results.json")
    document = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    check = next(c for c in document["checks"] if c["id"] == "NMI-002" and c["outcome"] == "passed")
    check["outcome"], check["message"] = "failed", "turned on purpose"
    (tmp_path / "results.json").write_text(json.dumps(document), encoding="utf-8")

    perturbed = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    name = f"NMI-002 [{check['subject']}]"
    # nothing else was touched, so nothing else is reported
    assert differences(golden("attach-healthy"), normalise(perturbed)) == [
        f'check {name}: outcome: golden "passed", now "failed"',
        f'check {name}: message: golden "", now "turned on purpose"']
    with pytest.raises(AssertionError) as caught:
        assert_same_results("attach-healthy", perturbed)
    assert f'first: check {name}: outcome: golden "passed", now "failed"' in str(caught.value), caught.value


def test_a_missing_check_a_moved_check_and_a_changed_summary_are_reported() -> None:
    document = golden("attach-healthy")
    first, second = document["checks"][0], document["checks"][1]
    moved = {**document, "checks": [second, first, *document["checks"][2:]]}
    assert differences(document, moved) == [
        f"order of the checks: position 0 was {first['id']} [{first['subject']}], is now {second['id']} [{second['subject']}]"]
    dropped = {**document, "checks": document["checks"][1:], "summary": {**document["summary"], "passed": 0}}
    assert differences(document, dropped) == [
        f"check {first['id']} [{first['subject']}]: in the golden, missing now (outcome was \"passed\")",
        f"summary.passed: golden {document['summary']['passed']}, now 0"]


@pytest.mark.parametrize("run", RUNS)
def test_the_goldens_are_normalised(run: str) -> None:
    """Normalising a golden again changes nothing, and its file is the canonical text (regenerate.py's)."""
    text = (GOLDEN / f"results-{run}.json").read_text(encoding="utf-8")
    assert canonical(normalise(json.loads(text))) == text
