"""Static mode on the real-file corpus: how many cases give their table's verdicts, for this aksid or another.

    .venv/bin/python bench/corpus_verdicts.py [--set-aside] [--python OTHER/bin/python] [--out FILE]

`--python` runs another installation of aksid (e.g. a checkout of an earlier commit in a venv of its own,
`pip install -e`) against the same table, so a change is measured before and after on the same cases.
`--set-aside` keeps to the third of the cases set aside before the code was changed (tests/corpus/cases.yaml).
Prints each case right or wrong (with what differs) and the count; no network, files only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.corpus.runner import load_cases, run_case, wrong_verdicts  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set-aside", action="store_true", help="only the cases set aside before the change")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the aksid to measure")
    parser.add_argument("--out", type=Path, help="write the per-case result as JSON")
    args = parser.parse_args()
    cases = [c for c in load_cases() if c.set_aside or not args.set_aside]
    rows = []
    with tempfile.TemporaryDirectory(prefix="aksid-corpus-") as tmp:
        for case in cases:
            verdicts = run_case(case, Path(tmp) / case.name, python=args.python)
            wrong = wrong_verdicts(case, verdicts)
            crashed = "INTERNALERROR" in verdicts.output or "Traceback" in verdicts.output
            rows.append({"case": case.name, "right": not wrong and not crashed, "exit": verdicts.code,
                         "wrong": wrong + (["a traceback"] if crashed else [])})
            mark = "right" if rows[-1]["right"] else "WRONG"
            print(f"{mark:5} {case.name}" + "".join(f"\n      {w}" for w in rows[-1]["wrong"]))
    right = sum(r["right"] for r in rows)
    print(f"\n{right} of {len(rows)} cases right ({'set-aside third' if args.set_aside else 'whole corpus'}, "
          f"{args.python})")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
