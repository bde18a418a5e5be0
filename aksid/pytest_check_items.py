"""How a run's check items meet pytest: found by their ID and area, reported by aksid instead of by tracebacks.

Hooks of the run's plugin object (aksid.plugin.RunHooks inherits them), so they act only in a run of aksid's
checks: a team's unrelated tests in a run of their own keep pytest's behaviour and output.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from aksid.check_info import check_info
from aksid.run.run import Run, RunOutcome
from aksid.run.sources import RunError
from aksid.run.terminal import hidden_from_pytest, shows_tracebacks


class CheckItemHooks:
    config: pytest.Config
    run: Run
    outcome: RunOutcome | None
    is_worker: bool

    @pytest.hookimpl(tryfirst=True)  # before pytest's own -k deselection, which reads the keywords added here
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """`-k RBAC-003` and `-k RBAC` match the check's items (their node ids name the test function, not the check);
        --aksid-check/--aksid-skip-check deselect the others before they run."""
        checks = [(item, check_info(marker)) for item in items if (marker := item.get_closest_marker("check"))]
        for item, info in checks:
            item.extra_keyword_matches.update((info.id, info.area))
        try:
            gone = {checks[i][0] for i in self.run.deselected([(i.id, i.area) for _, i in checks], self.is_worker)}
        except RunError as exc:
            raise pytest.UsageError(f"aksid: {exc}") from None
        if gone:
            config.hook.pytest_deselected(items=[item for item in items if item in gone])
            items[:] = [item for item in items if item not in gone]

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # around pytest's own summary sections, which it writes first
    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> Generator[None, Any, Any]:
        if self.is_worker or self.outcome is None:
            return (yield)
        with hidden_from_pytest(terminalreporter.stats, not shows_tracebacks(config.option.tbstyle,
                                                                            config.option.verbose)):
            result = yield
        terminalreporter.write_sep("=", "aksid summary")
        for line, style in self.outcome.summary(self.run.options.reports_dir):
            terminalreporter.write_line(line, **style)
        return result
