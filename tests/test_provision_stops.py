"""Provision knows when to stop: each stop rule on the shape the real controller writes, the sandbox's controllers
writing those shapes, the waits' progress (a line per state change in CI, one live line on a terminal), and the red
demo ending in seconds with the authorization failure as the finding."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from aksid.provision import stop_rules
from aksid.provision.waits import CannotSucceed, Timeline, Transient
from aksid.sandbox.controllers.azure_errors import authorization_failed, logrus_line, normalized_error, response_error
from aksid.sandbox.controllers.cert_manager_challenges import txt_write_denied

from .harness import aksid

ZONE_ID = "/subscriptions/s/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/example.test"
IDENTITY = {"properties": {"clientId": "client-1", "principalId": "object-1"}}
DENIED_A = response_error("PUT", f"{ZONE_ID}/A/aksid-canary", "403 Forbidden", authorization_failed(
    IDENTITY, "Microsoft.Network/dnsZones/A/write", f"{ZONE_ID}/A/aksid-canary"))
NOW = dt.datetime(2026, 12, 1, 10, 0, 5, tzinfo=dt.UTC)


# -- Azure's error, as the Go SDK and cert-manager print it ---------------------------------------------------------

def test_the_sdk_error_of_a_403_gives_code_and_arm_message() -> None:
    assert DENIED_A.splitlines()[2:4] == ["RESPONSE 403: 403 Forbidden", "ERROR CODE: AuthorizationFailed"]
    cause = stop_rules.azure_failure(DENIED_A)
    assert cause is not None and cause.startswith("403 AuthorizationFailed: The client 'client-1' with object id")
    assert "'Microsoft.Network/dnsZones/A/write'" in cause


def test_cert_managers_normalized_error_has_no_body_and_names_the_refused_request() -> None:
    text = normalized_error("PUT", f"{ZONE_ID}/TXT/_acme-challenge.x", "403 Forbidden", "AuthorizationFailed")
    assert text.endswith("see logs for more information") and "{" not in text
    assert stop_rules.azure_failure(text) == (f"403 AuthorizationFailed: PUT https://management.azure.com{ZONE_ID}"
                                              "/TXT/_acme-challenge.x was refused")


def test_a_transient_azure_error_is_no_reason_to_stop() -> None:
    throttled = response_error("PUT", f"{ZONE_ID}/A/x", "429 Too Many Requests",
                               {"error": {"code": "TooManyRequests", "message": "slow down"}})
    assert stop_rules.azure_failure(throttled) is None


# -- external-dns' log ------------------------------------------------------------------------------------------------

def _line(moment: dt.datetime, level: str, message: str) -> str:
    return logrus_line(moment.strftime("%Y-%m-%dT%H:%M:%SZ"), level, message)


def test_external_dns_error_about_the_record_stops_the_wait() -> None:
    log = (_line(NOW, "info", "Updating A record named 'aksid-canary' to '10.0.0.1' for Azure DNS zone 'example.test'.")
           + _line(NOW, "error", "Failed to update A record named 'aksid-canary' to '10.0.0.1' for DNS zone "
                                 f"'example.test': {DENIED_A}"))
    assert len(log.splitlines()) == 2  # logrus quotes the multi-line SDK error: one error, one line
    cause = stop_rules.external_dns_log_cause(log, "aksid-canary", since=NOW - dt.timedelta(seconds=1))
    assert cause is not None and cause.startswith("external-dns could not write the A record 'aksid-canary': 403 "
                                                  "AuthorizationFailed: The client 'client-1'")


def test_external_dns_errors_before_the_run_or_about_other_records_do_not_count() -> None:
    message = f"Failed to update A record named 'other' to '10.0.0.1' for DNS zone 'example.test': {DENIED_A}"
    assert stop_rules.external_dns_log_cause(_line(NOW, "error", message), "aksid-canary") is None
    old = _line(NOW - dt.timedelta(minutes=5), "error", message.replace("'other'", "'aksid-canary'"))
    assert stop_rules.external_dns_log_cause(old, "aksid-canary", since=NOW) is None
    info = _line(NOW, "info", message.replace("'other'", "'aksid-canary'"))
    assert stop_rules.external_dns_log_cause(info, "aksid-canary") is None


def test_external_dns_json_log_format_is_read_too() -> None:
    line = json.dumps({"level": "error", "time": "2026-12-01T10:00:06Z", "msg": "Failed to update TXT record named "
                       f"'a-aksid-canary' to '\"heritage=external-dns\"' for DNS zone 'example.test': {DENIED_A}"})
    cause = stop_rules.external_dns_log_cause(line, "aksid-canary", since=NOW)
    assert cause is not None and "TXT record 'a-aksid-canary'" in cause


# -- cert-manager's objects -------------------------------------------------------------------------------------------

def _challenge(state: str, reason: str) -> dict:
    return {"metadata": {"name": "c-1"}, "status": {"state": state, "reason": reason, "processing": True}}


@pytest.mark.parametrize("state", ["errored", "invalid"])
def test_a_challenge_in_a_final_state_stops_the_wait(state: str) -> None:
    cause = stop_rules.challenge_cause(_challenge(state, "Error accepting authorization: acme: authorization error "
                                                         "for x: 403 urn:ietf:params:acme:error:unauthorized"))
    assert cause is not None and f"Challenge c-1 is {state}: Error accepting authorization" in cause


def test_a_pending_challenge_whose_present_was_refused_stops_the_wait() -> None:
    reason = txt_write_denied(IDENTITY, {"id": ZONE_ID, "name": "example.test"}, "aksid-canary.example.test")
    cause = stop_rules.challenge_cause(_challenge("pending", reason))
    assert cause is not None and "cannot present the DNS-01 Challenge c-1: 403 AuthorizationFailed" in cause
    assert "/TXT/_acme-challenge.aksid-canary was refused" in cause


def test_a_challenge_waiting_for_propagation_goes_on() -> None:
    reason = "Waiting for DNS-01 challenge propagation: DNS record for \"x\" not yet propagated"
    assert stop_rules.challenge_cause(_challenge("pending", reason)) is None


def test_an_order_in_a_final_state_stops_the_wait_and_a_pending_one_does_not() -> None:
    assert stop_rules.order_cause({"metadata": {"name": "o"}, "status": {"state": "pending"}}) is None
    cause = stop_rules.order_cause({"metadata": {"name": "o"}, "status": {"state": "invalid", "reason": "refused"}})
    assert cause == "cert-manager's Order o is invalid: refused"


def test_an_issuer_missing_or_not_ready_stops_the_wait() -> None:
    assert "ClusterIssuer \"le\" the Certificate names does not exist" in stop_rules.issuer_cause("ClusterIssuer", "le", None)
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ErrRegisterACMEAccount",
                                            "message": "Failed to register ACME account: 403"}]}}
    assert stop_rules.issuer_cause("ClusterIssuer", "le", not_ready) == (
        "the ClusterIssuer le is not Ready: ErrRegisterACMEAccount: Failed to register ACME account: 403")
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ACMEAccountRegistered"}]}}
    assert stop_rules.issuer_cause("ClusterIssuer", "le", ready) is None


def test_a_certificate_whose_issuance_failed_stops_the_wait_one_still_issuing_does_not() -> None:
    def certificate(status: str, reason: str) -> dict:
        return {"metadata": {"name": "tls"}, "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "DoesNotExist"},
            {"type": "Issuing", "status": status, "reason": reason, "message": "The certificate request has failed"}]}}

    assert stop_rules.certificate_cause(certificate("True", "DoesNotExist")) is None
    cause = stop_rules.certificate_cause(certificate("False", "Failed"))
    assert cause is not None and "gave up issuing Certificate tls" in cause


def test_a_warning_event_naming_the_authorization_failure_stops_the_wait() -> None:
    reason = normalized_error("PUT", f"{ZONE_ID}/TXT/_acme-challenge.x", "403 Forbidden", "AuthorizationFailed")
    events = [{"type": "Normal", "reason": "Started", "involvedObject": {"kind": "Challenge", "name": "c"}},
              {"type": "Warning", "reason": "PresentError", "message": f"Error presenting challenge: {reason}",
               "involvedObject": {"kind": "Challenge", "name": "c"}}]
    cause = stop_rules.event_cause(events)
    assert cause is not None and cause.startswith("cert-manager's Challenge c reported PresentError: 403 Authorization")
    assert stop_rules.event_cause(events[:1]) is None


# -- the waits --------------------------------------------------------------------------------------------------------

def test_a_wait_that_cannot_succeed_ends_at_once_with_its_cause() -> None:
    lines: list[str] = []
    timeline = Timeline(deadline=time.monotonic() + 30, progress=lines.append)
    began = time.monotonic()
    results = timeline.wait_all({"record": lambda _f: (CannotSucceed("403 AuthorizationFailed"), "denied"),
                                 "servers": lambda f: ((CannotSucceed("needs record"), "x") if "record" in f
                                                       else (None, "waiting"))}, interval=0.05)
    assert time.monotonic() - began < 2
    assert results["record"]["status"] == "timeout" and results["record"]["stopped"] is True
    assert results["record"]["reason"].startswith("record cannot succeed: 403 AuthorizationFailed")
    assert [s["outcome"] for s in timeline.steps] == ["cannot succeed (403 AuthorizationFailed)",
                                                      "cannot succeed (needs record)"]


def test_in_ci_a_wait_prints_a_line_per_new_state_not_per_poll() -> None:
    lines: list[str] = []
    polls = iter(["phase Pending"] * 5 + ["phase Running"] * 5 + ["phase Pending"] * 3)

    def attempt(_found: object) -> tuple[object, str]:
        state = next(polls, None)
        return (None, state) if state else ("done", "ok")

    Timeline(deadline=time.monotonic() + 30, progress=lines.append).wait_all({"probe": attempt}, interval=0.01)
    # the first state is where the wait starts (not a change); Running is new; Pending again is not
    assert lines[:-1] == ["waiting for probe: phase Running (0 s)"] and lines[-1].startswith("probe: done after")


def test_in_ci_a_long_wait_says_every_minute_what_it_still_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from aksid.provision import waits

    monkeypatch.setattr(waits, "REMINDER_SECONDS", 0.1)
    lines: list[str] = []
    Timeline(deadline=time.monotonic() + 0.35, progress=lines.append).wait_all(
        {"record": lambda _f: (None, "not in Azure DNS (ResourceNotFoundError)")}, interval=0.02)
    reminders = [line for line in lines if line.startswith("waiting for record: not in Azure DNS")]
    assert 2 <= len(reminders) <= 4, lines


def test_on_a_terminal_the_state_is_one_live_line_and_only_outcomes_are_printed() -> None:
    lines: list[str] = []
    live: list[str] = []
    polls = iter(range(6))
    Timeline(deadline=time.monotonic() + 30, progress=lines.append, live=live.append).wait_all(
        {"probe": lambda _f: ((None, f"phase Running {next(polls)}") if len(live) < 5 else ("v", "ok"))}, interval=0.01)
    assert len(lines) == 1 and lines[0].startswith("probe: done after")
    assert len(live) >= 5 and live[0].startswith("aksid: waiting 0 s for 1 step(s): probe: phase Running")
    assert live[-1] == ""  # cleared before the outcome line is printed


def test_last_seen_is_the_last_answer_not_a_failed_poll() -> None:
    polls = iter(["not in Azure DNS (ResourceNotFoundError)"] + ["not in Azure DNS (ServiceResponseTimeoutError)"] * 50)

    def attempt(_found: object) -> tuple[object, str]:
        seen = next(polls)
        return None, (Transient(seen) if "Timeout" in seen else seen)

    result = Timeline(deadline=time.monotonic() + 0.3, progress=lambda _l: None).wait_all({"record": attempt},
                                                                                          interval=0.02)["record"]
    assert result["last"] == "not in Azure DNS (ResourceNotFoundError)"
    assert result["reason"].endswith("last seen: not in Azure DNS (ResourceNotFoundError)")


# -- the red demo -----------------------------------------------------------------------------------------------------

def test_red_provision_demo_stops_on_the_authorization_failure(tmp_path: Path) -> None:
    began = time.monotonic()
    run = aksid("demo", "--mode", "provision", "--scenario", "rbac-zone-role-missing", "--reports-dir", str(tmp_path),
                reports=tmp_path)
    seconds = time.monotonic() - began
    assert run.code == 0, run.stdout + run.stderr
    assert seconds < 60, f"{seconds:.0f} s"
    messages = {c["id"]: c["message"] for c in run.results["checks"] if c["outcome"] == "failed"}
    assert "external-dns could not write the A record 'aksid-canary': 403 AuthorizationFailed" in messages["CANARY-001"]
    assert "'Microsoft.Network/dnsZones/A/write'" in messages["CANARY-001"]
    assert "cannot present the DNS-01 Challenge" in messages["CANARY-002"]
    progress = [line for line in run.stdout.splitlines()
                if line.startswith("aksid: ") and ("waiting" in line or ": done after" in line or "cannot succeed" in line
                                                   or "NOT done" in line)]
    assert 0 < len(progress) < 30, "\n".join(progress)
    assert all(len(line) <= 170 for line in progress), max(progress, key=len)
