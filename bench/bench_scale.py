"""Scale: audit a large cluster at the speed of reading it.

    .venv/bin/python bench/bench_scale.py [--sizes 2000,20000] [--repeat 3] [--out bench/results/scale.json]

For each size, the cluster (healthy + generated nodes with NMI pods + namespaces of app pods, see
aksid/sandbox/large_cluster.py) is served by a minimal server of pre-encoded LIST pages (never the bottleneck; it counts
requests); ARM, DNS and TLS come from the healthy sandbox. Measured, each as wall time (median of
--repeat runs), CPU seconds (user + system, of the process and the children it waited for), peak RSS (the process;
for -n 2 the controller and, beside it, the largest worker) and requests served:
  floor   one paginated LIST per kind the collector reads (limit=250) + json.loads, nothing else
  floor, gc paused   the same with the cyclic garbage collector off (as aksid builds its evidence): what reading and
          parsing alone cost; ratios stay relative to the first floor, the issue's
  naive   the `kubernetes` client's models, pods only (list_pod_for_all_namespaces, paginated)
  aksid   `aksid run` (collect, snapshot, checks, reports), serial and with -n 2
Then one more run of each aksid path with bench/checks_cpu.py: the CPU seconds of the checks phase, per process (what
xdist's per-test messages cost beside the checks themselves).
One `aksid run -n 2` per size runs first, unmeasured, as on an installed system: bytecode caches written (the bench
drops PYTHONDONTWRITEBYTECODE from the runs' environment) and the server's pages encoded. Prints a table with the ratios
to the floor and writes it as JSON. Everything runs on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from aksid.collect.kube import KINDS, PAGE_SIZE
from aksid.interrupts import terminate_as_interrupt
from aksid.sandbox.large_cluster import PageServer, generate_pods
from aksid.sandbox.runtime import down, up
from aksid.sandbox.scenario import load_prepared

FLOOR = """
import gc, http.client, json, sys
if {gc_paused}: gc.disable()  # the second floor: millions of long-lived objects, no full collection re-scanning them
from urllib.parse import urlsplit
host = urlsplit(sys.argv[1]); paths = sys.argv[2:]
conn = http.client.HTTPConnection(host.hostname, host.port)
items = []  # kept, as any collector must keep what it listed
for path in paths:
    token = None
    while True:
        conn.request("GET", f"{path}?limit=%d" % {limit} + (f"&continue={token}" if token else ""),
                     headers={"Authorization": "Bearer bench", "Accept": "application/json"})
        response = conn.getresponse(); body = response.read()
        if response.status != 200: break
        page = json.loads(body); items.extend(page["items"]); token = page["metadata"].get("continue")
        if not token: break
print(len(items))
"""

NAIVE = """
import sys
from kubernetes import client, config
api = client.CoreV1Api(config.new_client_from_config(sys.argv[1]))
token, items = None, []
while True:
    page = api.list_pod_for_all_namespaces(limit=%d, _continue=token)
    items += page.items; token = page.metadata._continue
    if not token: break
print(len(items))
"""


def run(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall time and peak RSS (MB) of a command and of its descendants (sampled from /proc)."""
    peaks: dict[int, int] = {}
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stop = threading.Event()

    def sample() -> None:
        own_command = None
        while not stop.wait(0.02):
            for pid in [process.pid, *_descendants(process.pid)]:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    command = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if pid == process.pid:
                    own_command = command
                elif command == own_command or not Path(command.split(b"\0")[0].decode(errors="replace")).name.startswith(
                        "python"):
                    # forked, not yet exec'd (`uname -p` behind platform.processor()): the parent's pages; or that
                    # command itself, or its zombie: not a worker either
                    continue
                hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
                peaks[pid] = max(peaks.get(pid, 0), hwm)

    sampler = threading.Thread(target=sample, daemon=True)
    began = time.monotonic()
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - began
    stop.set()
    sampler.join()
    stderr = process.stderr.read().decode() if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    workers = [kb for pid, kb in peaks.items() if pid != process.pid]
    # VmHWM of the process itself, sampled: the kernel's ru_maxrss would count the bench's own pages the child
    # shared between fork and exec (the bench holds the whole cluster)
    own = peaks.get(process.pid) or usage.ru_maxrss
    return {"wall": wall, "rss_mb": own / 1024, "workers_rss_mb": max(workers) / 1024 if workers else None,
            "cpu": usage.ru_utime + usage.ru_stime, "exit": code, "stderr": stderr[-500:]}


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
        frontier += [int(c) for c in children]
    return found


def measure(name: str, argv: list[str], server: PageServer, repeat: int, env: dict[str, str] | None = None) -> dict:
    runs = []
    for _ in range(repeat):
        before = server.requests
        result = run(argv, env)
        result["requests"] = server.requests - before
        runs.append(result)
        if result["exit"] not in (0, 1):
            print(f"  {name}: exit {result['exit']}: {result['stderr']}", file=sys.stderr)
    return {"name": name, "wall": statistics.median(r["wall"] for r in runs),
            "rss_mb": statistics.median(r["rss_mb"] for r in runs),
            "workers_rss_mb": max((r["workers_rss_mb"] or 0) for r in runs) or None,
            "cpu": statistics.median(r["cpu"] for r in runs),
            "requests": runs[-1]["requests"], "exit": runs[-1]["exit"], "walls": [round(r["wall"], 2) for r in runs]}


def bench_size(pods: int, sandbox: Any, repeat: int, tmp: Path) -> list[dict]:
    # the sandbox's objects as it prepared them (the certificate really issued), so the checks stay green
    prepared = load_prepared(sandbox.state_dir / "scenario.json").kube_objects
    objects = generate_pods(pods, base=prepared)
    server = PageServer(objects)
    url = server.start()
    kubeconfig = tmp / f"kubeconfig-{pods}"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "bench",
                                          "clusters": [{"name": "bench", "cluster": {"server": url}}],
                                          "users": [{"name": "bench", "user": {"token": "bench"}}],
                                          "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}]}))
    profile = yaml.safe_load(sandbox.profile.read_text())
    profile["kube"] = {"kubeconfig": str(kubeconfig)}
    for section in ("azure",):
        for key in ("ca_bundle", "token_file"):
            profile[section][key] = str(sandbox.state_dir / profile[section][key])
    profile["tls"]["trust_store"] = str(sandbox.state_dir / profile["tls"]["trust_store"])
    profile_path = tmp / f"profile-{pods}.yaml"
    profile_path.write_text(yaml.safe_dump(profile))
    # as installed: bytecode caches written and used (a shell with PYTHONDONTWRITEBYTECODE would make every process,
    # xdist's workers included, compile aksid and rewrite its asserts again on each run)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KUBECONFIG", "AZ_", "ACME_", "AKSID_", "AZURE_", "PYTHONDONTWRITEBYTECODE"))}
    paths = [spec.path for spec in KINDS if not spec.sensitive]
    aksid = [sys.executable, "-m", "aksid", "run", "--aksid-profile", str(profile_path), "-q", "-p", "no:cacheprovider",
             "--aksid-reports-dir", str(tmp / f"reports-{pods}")]
    aksid_runs = {"aksid run": aksid, "aksid run -n 2": [*aksid, "-n", "2"]}
    floor = FLOOR.replace("{limit}", str(PAGE_SIZE))
    run(aksid_runs["aksid run -n 2"], env)  # warm-up, not measured: bytecode caches, the server's pages encoded once
    rows = [
        measure("floor", [sys.executable, "-c", floor.replace("{gc_paused}", "False"), url, *paths], server, repeat),
        measure("floor, gc paused", [sys.executable, "-c", floor.replace("{gc_paused}", "True"), url, *paths], server,
                repeat),
        measure("naive", [sys.executable, "-c", NAIVE % PAGE_SIZE, str(kubeconfig)], server, repeat),
        *(measure(name, argv, server, repeat, env) for name, argv in aksid_runs.items()),
    ]
    checks = {name: checks_cpu(argv, env, tmp / f"checks-cpu-{pods}-{index}.jsonl")
              for index, (name, argv) in enumerate(aksid_runs.items())}
    server.stop()
    pod_count = sum(1 for o in objects if o["kind"] == "Pod")
    for row in rows:
        row["pods"] = pod_count
        row["ratio"] = row["wall"] / rows[0]["wall"]
        row["rss_ratio"] = row["rss_mb"] / rows[0]["rss_mb"]
        row["checks_cpu"] = checks.get(row["name"])
    return rows


def checks_cpu(argv: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """One more run with bench/checks_cpu.py: the checks phase's CPU seconds, per process."""
    env = {**env, "AKSID_BENCH_CHECKS_CPU": str(log),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")]))}
    subprocess.run([*argv, "-p", "checks_cpu"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    return {"controller": next((p["cpu"] for p in lines if p["role"] == "controller"), None),
            "workers": [p["cpu"] for p in lines if p["role"] == "worker"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale.json")
    args = parser.parse_args()
    table = []
    with tempfile.TemporaryDirectory(prefix="aksid-scale-") as tmp_name:
        tmp = Path(tmp_name)
        sandbox = up("healthy", tmp / "sandbox")
        try:
            for size in (int(s) for s in args.sizes.split(",")):
                table += bench_size(size, sandbox, args.repeat, tmp)
        finally:
            down(sandbox.state_dir)
    print(f"{'pods':>6}  {'path':<17} {'wall s':>7} {'x floor':>7} {'CPU s':>6} {'RSS MB':>7} {'x floor':>7} "
          f"{'workers MB':>10} {'requests':>8}")
    for row in table:
        workers = f"{row['workers_rss_mb']:.0f}" if row["workers_rss_mb"] else "-"
        print(f"{row['pods']:>6}  {row['name']:<17} {row['wall']:>7.2f} {row['ratio']:>7.2f} {row['cpu']:>6.2f} "
              f"{row['rss_mb']:>7.0f} {row['rss_ratio']:>7.2f} {workers:>10} {row['requests']:>8}")
    print("\nchecks phase (first test to the end of the session, one more run each), CPU s:")
    for row in table:
        if row["checks_cpu"]:
            spent = row["checks_cpu"]
            workers = " + ".join(f"{cpu:.2f}" for cpu in spent["workers"])
            total = (spent["controller"] or 0) + sum(spent["workers"])
            print(f"{row['pods']:>6}  {row['name']:<17} {'controller' if workers else 'process'} "
                  f"{spent['controller'] or 0:.2f}"
                  + (f", workers {workers}, in all {total:.2f}" if workers else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    with terminate_as_interrupt():  # SIGTERM takes Ctrl-C's path, so `finally` stops the sandbox on both
        sys.exit(main())
