"""Rerun the four golden runs with an installation of aksid and rewrite tests/golden/results-<run>.json.

    python tests/golden/regenerate.py --python /tmp/bv/bin/python             # rewrite the goldens
    python tests/golden/regenerate.py --python /tmp/bv/bin/python --stable    # run each twice, compare, write nothing

Each run is the command tests/test_same_results.py runs through the self-tests' fixtures (tests/conftest.py's
base_reports, tests/test_static.py's static()), here with `--python`'s interpreter, from a scratch folder (not
a checkout, so `-m aksid` imports that interpreter's installation), in the harness's clean environment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from normalise import canonical, differences, normalise  # noqa: E402

RUNS = ("attach-healthy", "attach-healthy-wi", "provision-healthy", "static-tutorial")
RENDER = ("import sys; from pathlib import Path; from aksid.sandbox.render import render; "
          "from aksid.sandbox.scenario import load_scenario; render(load_scenario(sys.argv[1]), Path(sys.argv[2]))")


def clean_env() -> dict[str, str]:
    """tests/harness.py's clean_env: no target, credential or pytest setting of the caller's."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("KUBECONFIG", "AZ_", "ACME_", "AKSID_", "AZURE_", "PYTEST_"))}


def commands(run: str, python: str, scratch: Path) -> tuple[list[list[str]], Path]:
    """The command lines of one run and the reports folder it writes."""
    aksid = [python, "-m", "aksid"]
    reports = scratch / "reports"
    if run.startswith(("attach-", "provision-")):
        mode, scenario = run.split("-", 1)
        demo = [*aksid, "demo", "--scenario", scenario, "--reports-dir", str(reports)]
        return [demo + (["--mode", "provision"] if mode == "provision" else [])], reports
    if run == "static-tutorial":  # tests/test_static.py: rendered("healthy", tmp_path), then static(repo)
        repo = scratch / "healthy"
        reports = repo / "reports"
        render = [python, "-c", RENDER, "healthy", str(repo)]
        static = [*aksid, "run", "--aksid-mode", "static", "--aksid-env-file", str(repo / "env.sh"), "--aksid-manifests",
                  str(repo / "manifests"), "--aksid-source-root", str(repo), "--aksid-reports-dir", str(reports), "-q",
                  "--aksid-plan", str(repo / "plan.json")]
        return [render, static], reports
    raise SystemExit(f"unknown run {run!r}; one of {', '.join(RUNS)}")


def produce(run: str, python: str) -> dict:
    """One run, normalised."""
    with tempfile.TemporaryDirectory(prefix=f"aksid-golden-{run}-") as folder:
        scratch = Path(folder)
        lines, reports = commands(run, python, scratch)
        for line in lines:
            done = subprocess.run(line, cwd=scratch, env=clean_env(), capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise SystemExit(f"{run}: {' '.join(line)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
        return normalise(json.loads((reports / "results.json").read_text(encoding="utf-8")))


def main(argv: list[str] | None = None, say: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose aksid makes the runs")
    parser.add_argument("--out", type=Path, default=HERE, help="where results-<run>.json go (default: beside this script)")
    parser.add_argument("--run", action="append", choices=RUNS, help="only these runs (repeatable; default: all four)")
    parser.add_argument("--stable", action="store_true", help="run each twice and compare the normalised results; write nothing")
    args = parser.parse_args(argv)
    where = subprocess.run([args.python, "-c", "import aksid; print(aksid.__file__)"], cwd=tempfile.gettempdir(),
                           capture_output=True, text=True, check=True).stdout.strip()
    say(f"aksid from {where}")
    failed = 0
    for run in args.run or RUNS:
        first = produce(run, args.python)
        if args.stable:
            found = differences(first, produce(run, args.python))
            failed += bool(found)
            say(f"{run}: " + ("two runs normalise to the same JSON" if not found else "DIFFER\n  " + "\n  ".join(found)))
            continue
        path = args.out / f"results-{run}.json"
        path.write_text(canonical(first), encoding="utf-8")
        say(f"{run}: wrote {path} ({len(first['checks'])} checks)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
