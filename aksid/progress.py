"""What collection is doing, as it goes: live on a terminal (like pip or kubectl), one line per phase in CI."""

from __future__ import annotations

import threading
import time
from typing import Any


class Progress:
    """Called with lines like `kube: listing pods ...`; the word before the colon is the phase.

    With -v every line is printed; on a terminal the current line is rewritten in place with the elapsed
    time; without a terminal (CI logs) each phase's last line is printed once when collection is done
    (phases overlap: the ARM, DNS and TLS collectors run beside the kube LISTs).
    """

    def __init__(self, reporter: Any, verbose: bool, prefix: str = "") -> None:
        self.reporter = reporter
        self.prefix = prefix  # a fleet member's name
        self.verbose = verbose
        self.began = time.monotonic()
        self.phases: dict[str, str] = {}  # phase -> its latest line, in the order the phases began
        self.live = bool(reporter is not None and getattr(reporter, "isatty", False))
        self.lock = threading.Lock()  # the ARM, DNS and TLS collectors report from a thread of their own

    def __call__(self, line: str) -> None:
        if self.reporter is None:
            return
        with self.lock:
            stamped = f"aksid: {self.prefix}{line} [{time.monotonic() - self.began:.1f} s]"
            if self.verbose:
                self.reporter.write_line(stamped)
            elif self.live:
                self.reporter.rewrite(stamped, erase=True)
            self.phases[line.split(":", 1)[0]] = stamped

    def done(self) -> None:
        """End of collection: the live line gives way to the summary lines that follow."""
        if self.reporter is None or self.verbose:
            return
        with self.lock:
            if self.live:
                self.reporter.rewrite("", erase=True)
                return
            for line in self.phases.values():
                self.reporter.write_line(line)
