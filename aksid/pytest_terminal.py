"""pytest's terminal reporter as a run's terminal (aksid.run.run.Terminal's interface), looked up when a line is
written: the reporter registers after this plugin's pytest_configure, and a run may write before that (the team's
provision command)."""

from __future__ import annotations

from typing import Any


class PytestTerminal:
    """pytest's terminal reporter, looked up when a line is written (it registers after this plugin configures)."""

    def __init__(self, config: Any) -> None:  # a pytest.Config
        self.config = config
        self.live_shown = False  # a line written in place is on screen: the next line must replace it, not follow it

    @property
    def reporter(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    @property
    def isatty(self) -> bool:
        return bool(getattr(self.reporter, "isatty", False))

    def write_line(self, line: str, **style: bool) -> None:
        if self.reporter is None:
            print(line, flush=True)
        elif self.live_shown:  # pytest's write_line would append to the live line: overwrite it, then end the line
            self.reporter.rewrite(line, erase=True, **style)
            self.reporter.write("\n")
            self.live_shown = False
        else:
            self.reporter.write_line(line, **style)

    def rewrite(self, line: str, **kwargs: Any) -> None:
        if self.reporter is not None:
            self.reporter.rewrite(line, **kwargs)
            self.live_shown = bool(line)  # rewrite("") clears it
