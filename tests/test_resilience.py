"""Resilience: one hiccup is retried and the run stays green; a lasting fault is `error` for exactly the checks
that need that evidence, with its cause, within the deadline; faults that retrying cannot fix are not retried.

One sandbox (with fault proxies in front of a DNS server and the demo host) serves the whole module; each
test stages its faults at run time (aksid.sandbox.fault_matrix). Deadlines and timeouts are seconds long.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aksid.collect.budget import Budget, GaveUp, RetryAfterTooLong, retrying
from aksid.sandbox.fault_matrix import CELLS, Cell, FaultBench

# What each endpoint family's evidence decides: these checks, and only these, cannot be verified without it.
NEEDS = {
    # pods: bound pods (BIND), NMI on every node (and so what IMDS hands out there: MIG-002), pods a principal can
    # make or enter next to the identity (ACCESS-001)
    "kube LIST": {"NMI-002", "BIND-002", "BIND-003", "BIND-004", "BIND-005", "MIG-002", "ACCESS-001"},
    # role assignments (and so definitions): whose rights (RBAC), the rights a scale set's identity gives (MIG-002),
    # the assignments at the identity's scope (ACCESS-002)
    "ARM read": {"RBAC-001", "RBAC-002", "RBAC-003", "RBAC-005", "MIG-002", "ACCESS-002"},
    "DNS query": {"DNS-001", "DNS-003"},  # one of the zone's name servers
    "TLS (HTTPS)": {"TLS-001", "TLS-002", "TLS-003", "TLS-004"},  # handshake, chain, page
    "HTTP (port 80)": {"TLS-004"},  # the plain-HTTP redirect
}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultBench]:
    bench = FaultBench(tmp_path_factory.mktemp("faults"))
    try:
        yield bench
    finally:
        bench.close()


def _cell_id(cell: Cell) -> str:
    return f"{cell.family}/{cell.fault}"


def test_without_faults_the_run_is_green_and_fully_covered(bench: FaultBench) -> None:
    bench.stage(None)
    outcome = bench.run()
    assert outcome.code == 0, outcome.stdout[-2000:]
    assert outcome.retries == 0
    assert outcome.results["coverage"]["percent"] == 100
    assert "evidence collected: 100% (kinds " in outcome.stdout


@pytest.mark.parametrize("cell", CELLS, ids=_cell_id)
def test_a_fault_once_is_retried_and_the_run_stays_green(bench: FaultBench, cell: Cell) -> None:
    bench.stage(cell, times=1)
    outcome = bench.run()
    assert outcome.code == 0, (outcome.ids_with("failed", "error"), outcome.stdout[-2000:])
    assert outcome.ids_with("failed", "error") == set()
    family = {"kube LIST": "kube", "ARM read": "arm", "DNS query": "dns"}.get(cell.family, "tls")
    retried = [r for r in outcome.results["retries"] if r["family"] == family]
    assert retried and sum(r["count"] for r in retried) >= 1, outcome.results["retries"]
    assert "retry needed" in outcome.stdout or "retries needed" in outcome.stdout  # the summary says so
    assert outcome.results["coverage"]["percent"] == 100


@pytest.mark.parametrize("cell", CELLS, ids=_cell_id)
def test_a_lasting_fault_is_error_for_exactly_the_checks_that_need_that_evidence(bench: FaultBench, cell: Cell) -> None:
    bench.stage(cell, times=None)
    outcome = bench.run(deadline=10)
    assert outcome.code == 1
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert outcome.seconds < 10 + 20  # the deadline, plus starting Python and pytest twice over
    if cell.fault == "SERVFAIL":
        # An authoritative server answering SERVFAIL on every try is evidence, not a gap: resolvers see exactly
        # that (a lame server), so DNS-001/003 fail with it rather than report it as unverifiable.
        assert outcome.ids_with("failed") == NEEDS[cell.family]
        assert outcome.ids_with("error") == set()
        return
    assert outcome.ids_with("error") == NEEDS[cell.family]
    assert outcome.ids_with("failed") == set()
    for check_id in NEEDS[cell.family]:
        for message in outcome.messages_of(check_id, "error"):
            assert "attempts" in message, message  # the cause, and how hard the run tried
    assert outcome.results["coverage"]["percent"] < 100


def test_a_401_is_not_retried_and_says_the_credentials_were_rejected(bench: FaultBench) -> None:
    from aksid.sandbox.fault_control import set_faults

    bench.stage(None)
    set_faults(bench.state_dir, kube=[{"match": "/api/v1/pods", "status": 401}],
               arm=[{"match": "roleAssignments", "status": 401}])
    outcome = bench.run()
    set_faults(bench.state_dir)
    assert outcome.retries == 0
    pods = " ".join(outcome.messages_of("NMI-002"))
    assert "rejected the credentials (401 Unauthorized)" in pods
    assert "credentials" in " ".join(outcome.messages_of("RBAC-001"))
    assert {"NMI-002", "RBAC-001"} <= outcome.ids_with("error")


def test_a_retry_after_beyond_the_cap_gives_up_at_once(bench: FaultBench) -> None:
    from aksid.sandbox.fault_control import set_faults

    bench.stage(None)
    set_faults(bench.state_dir, arm=[{"match": "managedClusters", "status": 429, "headers": {"Retry-After": "120"}}])
    started = time.monotonic()
    outcome = bench.run()
    set_faults(bench.state_dir)
    assert time.monotonic() - started < 60  # it did not sleep the 120 s
    message = " ".join(outcome.messages_of("NMI-004"))
    assert "ARM asked to retry after 120 s" in message, message


def test_a_server_that_never_answers_ends_within_the_deadline_with_the_cause(bench: FaultBench) -> None:
    from aksid.sandbox.fault_control import set_faults

    # Every request to both APIs is accepted and never answered.
    bench.stage(None)
    set_faults(bench.state_dir, kube=[{"match": "^/", "kind": "hang"}], arm=[{"match": "^/", "kind": "hang"}])
    outcome = bench.run(deadline=5)
    set_faults(bench.state_dir)
    assert outcome.seconds < 5 + 20
    assert outcome.code == 1 and "Traceback" not in outcome.stdout + outcome.stderr
    assert "no answer within the read timeout" in " ".join(outcome.messages_of("NMI-001")) or \
        "deadline" in " ".join(outcome.messages_of("NMI-001"))
    assert outcome.ids_with("failed") == set()


def test_a_dns_server_that_is_not_running_is_not_retried(bench: FaultBench, tmp_path: Path) -> None:
    import socket

    import yaml

    bench.stage(None)
    with socket.socket() as closed:  # a port nobody listens on, over UDP or TCP
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    document = yaml.safe_load(bench.profile.read_text(encoding="utf-8"))
    first = sorted(document["dns"]["server_addresses"])[0]
    document["dns"]["server_addresses"][first] = f"127.0.0.1:{port}"
    document["tls"]["https_port"] = port  # nginx stopped: refused, not retried
    profile = tmp_path / "profile.yaml"
    for key in ("kube", "azure"):  # the profile moves out of the state dir: its relative paths become absolute
        for name, value in list(document[key].items()):
            if isinstance(value, str) and (bench.state_dir / value).exists():
                document[key][name] = str(bench.state_dir / value)
    document["tls"]["trust_store"] = str(bench.state_dir / document["tls"]["trust_store"])
    profile.write_text(yaml.safe_dump(document), encoding="utf-8")
    original, bench.profile = bench.profile, profile
    try:
        outcome = bench.run(reports=tmp_path / "reports")
    finally:
        bench.profile = original
    assert "no DNS server is listening there" in " ".join(outcome.messages_of("DNS-001"))
    assert "connection refused" in " ".join(outcome.messages_of("TLS-001"))
    assert not [r for r in outcome.results["retries"] if r["family"] in ("dns", "tls")]


def test_min_coverage_turns_a_partial_run_red_with_one_line(bench: FaultBench) -> None:
    from aksid.sandbox.fault_control import set_faults

    bench.stage(None)
    set_faults(bench.state_dir, kube=[{"match": "/apis/apps/v1/replicasets", "status": 403}])
    outcome = bench.run("--aksid-min-coverage", "100", "--aksid-fail-on", "critical")
    set_faults(bench.state_dir)
    below = [line for line in outcome.stdout.splitlines() if "below --aksid-min-coverage" in line]
    percent = outcome.results["coverage"]["percent"]
    assert 90 < percent < 100
    assert below == [f"aksid: evidence coverage {percent:g}% is below --aksid-min-coverage 100%: the environment was "
                     "not fully verified"]
    assert outcome.code == 1
    assert outcome.results["coverage"]["areas"]["kube"]["missing"] == ["apps/v1/ReplicaSet"]


# --- the budget on its own ------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_retrying_stops_after_its_attempts_and_names_them() -> None:
    budget = Budget(60, attempts=3)
    calls = []

    def flaky() -> str:
        calls.append(1)
        raise ConnectionResetError("reset by peer")

    with pytest.raises(GaveUp) as gave_up:
        retrying(flaky, budget=budget, family="dns", endpoint="127.0.0.1:53", cause_of=lambda e: "reset")
    assert len(calls) == 3 and gave_up.value.attempts == 3
    assert "after 3 attempts" in str(gave_up.value)
    assert budget.summary()["retries"] == [{"family": "dns", "endpoint": "127.0.0.1:53", "cause": "reset", "count": 2}]


def test_retrying_does_not_retry_what_is_not_transient() -> None:
    budget = Budget(60)
    with pytest.raises(ValueError):
        retrying(lambda: (_ for _ in ()).throw(ValueError("bad")), budget=budget, family="x", endpoint="y",
                 cause_of=lambda e: None)
    assert budget.summary()["retries"] == []


def test_the_budget_caps_retry_after_and_the_deadline() -> None:
    clock = _Clock()
    budget = Budget(10, retry_after_max=30, clock=clock)
    budget.check_retry_after("ARM", 5)
    with pytest.raises(RetryAfterTooLong, match="ARM asked to retry after 31 s"):
        budget.check_retry_after("ARM", 31)
    clock.now = 8
    assert budget.timeout(30) == pytest.approx(2)
    assert budget.backoff(10) <= 2


def test_a_malformed_timeout_is_one_sentence_and_exit_4(tmp_path: Path) -> None:
    from tests.harness import clean_env, run_suites

    env = clean_env(AZ_DNS_DOMAIN="example.test", AZ_RESOURCE_GROUP="rg", AZ_AKS_CLUSTER_NAME="c",
                    AZ_SUBSCRIPTION_ID="5b3f7c1e-8a2d-4e6f-9c1b-2d4a6e8f0a13")
    run = run_suites("--aksid-timeout", "abc", reports=tmp_path, env=env)
    assert run.code == 4
    assert "collect_timeout 'abc' from command line (--aksid-timeout) is not a number" in run.stdout + run.stderr
    assert "is not a number of seconds" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
