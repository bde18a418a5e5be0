"""The fault matrix as a table: each endpoint family x each transient fault, once and always.

    .venv/bin/python bench/bench_faults.py [--out bench/results/faults.json]

One `healthy` sandbox with fault proxies (aksid/sandbox/fault_matrix.py); for every cell, a run with the
fault armed once (expected: green, with the retries it needed) and a run with it armed for every request
(expected: `error` for exactly the checks that need that evidence, within the 10 s deadline). Prints a
Markdown table (outcome, checks in error, retries, seconds) and writes it as JSON. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from aksid.sandbox.fault_matrix import CELLS, FaultBench

DEADLINE = 10.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/faults.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="aksid-faults-") as tmp:
        bench = FaultBench(Path(tmp) / "sandbox")
        try:
            for cell in CELLS:
                row = {"family": cell.family, "fault": cell.fault}
                for label, times in (("once", 1), ("always", None)):
                    bench.stage(cell, times=times)
                    outcome = bench.run(deadline=DEADLINE)
                    row[label] = {
                        "exit": outcome.code,
                        "error": sorted(outcome.ids_with("error")),
                        "failed": sorted(outcome.ids_with("failed")),
                        "retries": outcome.retries,
                        "seconds": round(outcome.seconds, 1),
                    }
                rows.append(row)
                print(_line(row), flush=True)
        finally:
            bench.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"deadline_seconds": DEADLINE, "rows": rows}, indent=2) + "\n", encoding="utf-8")


def _verdict(cell: dict) -> str:
    if cell["exit"] == 0:
        return "green"
    parts = []
    if cell["error"]:
        parts.append("error " + ", ".join(cell["error"]))
    if cell["failed"]:
        parts.append("failed " + ", ".join(cell["failed"]))
    return "; ".join(parts)


def _line(row: dict) -> str:
    once, always = row["once"], row["always"]
    return (f"| {row['family']} | {row['fault']} | {_verdict(once)}, {once['retries']} retries, {once['seconds']} s | "
            f"{_verdict(always)}, {always['retries']} retries, {always['seconds']} s |")


if __name__ == "__main__":
    print("| endpoint | fault | once | always |\n|---|---|---|---|")
    main()
