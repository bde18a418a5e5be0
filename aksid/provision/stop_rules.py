"""When a provision wait cannot succeed any more: the controller has said so in its log, an Event or a status.

Each rule reads one shape a real controller writes and returns the cause (a sentence for the finding) or None:

- Azure's authorization failure: ARM answers 403 with `{"error": {"code": "AuthorizationFailed", "message": "The
  client '...' with object id '...' does not have authorization to perform action '...' over scope '...' ..."}}`;
  the Go SDK prints it as `RESPONSE 403: 403 Forbidden` / `ERROR CODE: AuthorizationFailed` then the body
  (azcore ResponseError.Error()); cert-manager's azureDNS solver keeps `ERROR CODE: ...` and drops the body. The
  right does not appear by itself: the wait is over (a grant made during the run may take minutes to reach ARM,
  longer than a run waits). A missing zone or resource group (ResourceNotFound, ResourceGroupNotFound) is as final.
- external-dns' log (provider/azure/azure.go): level=error "Failed to update|delete <type> record named '<name>' ...
  for DNS zone '<zone>': <error>" in logrus' text (`time="..." level=error msg="..."`) or JSON format.
- cert-manager (pkg/apis/acme/v1): a Challenge or Order whose `state` is `invalid` or `errored` is final (the ACME
  server refused it; the Order is re-created only after the CertificateRequest's back-off); a Challenge still
  `pending` whose `reason` holds one of the Azure failures above will fail the same way at every retry.
- an Issuer/ClusterIssuer that does not exist, or whose Ready condition is False (its reason, e.g.
  ErrRegisterACMEAccount), issues nothing; a Certificate whose Issuing condition is False with reason Failed "has
  failed to complete and will be retried" only after a back-off of an hour (cert-manager's issuing controller).
- Events: a Warning on a Challenge, Order or CertificateRequest (PresentError, Failed) naming one of the Azure
  failures, for clusters whose status fields are not readable.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

FINAL_AZURE_CODES = ("AuthorizationFailed", "LinkedAuthorizationFailed", "ResourceNotFound", "ResourceGroupNotFound")
FINAL_ACME_STATES = ("invalid", "errored")
_CODE = re.compile(r'ERROR CODE: (\w+)|"code":\s*"(\w+)"')
_STATUS = re.compile(r"RESPONSE (\d{3})")
_MESSAGE = re.compile(r'"message":\s*"((?:[^"\\]|\\.)*)"')
_LOGRUS = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_FAILED_WRITE = re.compile(r"Failed to (?:update|create|delete) (\w+) record named '([^']*)'")


def azure_failure(text: str) -> str | None:
    """The final Azure error a controller's text carries: "403 AuthorizationFailed: The client ... credentials."."""
    codes = [a or b for a, b in _CODE.findall(text or "")]
    code = next((c for c in codes if c in FINAL_AZURE_CODES), None)
    if code is None:
        return None
    status = _STATUS.search(text)
    message = _MESSAGE.search(text)
    detail = json.loads(f'"{message.group(1)}"') if message else _request_line(text)
    return " ".join(part for part in (status.group(1) if status else "", code) if part) + (f": {detail}" if detail else "")


def _request_line(text: str) -> str:
    """The refused request ("PUT https://management.azure.com/.../TXT/_acme-challenge.x") when there is no body."""
    match = re.search(r"\b(GET|PUT|PATCH|DELETE|POST) (https://\S+)", text)
    return f"{match.group(1)} {match.group(2)} was refused" if match else ""


def external_dns_log_cause(log: str, record: str, since: dt.datetime | None = None) -> str | None:
    """The first error external-dns logged (at or after `since`) about writing `record` (the host's name in the
    zone, e.g. `aksid-canary`, or its ownership records `a-aksid-canary`) that Azure will refuse again: a sync
    writes the A record first, the error a reader looks for."""
    since = since.replace(microsecond=0) if since else None  # logrus stamps whole seconds
    for line in (log or "").splitlines():
        fields = _log_fields(line)
        if fields.get("level") not in ("error", "fatal") or (since and _before(fields.get("time"), since)):
            continue
        message = fields.get("msg", "")
        write = _FAILED_WRITE.search(message)
        if write is None or record.lower() not in write.group(2).lower():
            continue
        failure = azure_failure(message)
        if failure:
            return f"external-dns could not write the {write.group(1)} record '{write.group(2)}': {failure}"
    return None


def _log_fields(line: str) -> dict[str, str]:
    line = line.strip()
    if line.startswith("{"):  # --log-format=json
        try:
            return {k: str(v) for k, v in json.loads(line).items()}
        except ValueError:
            return {}
    fields = {}
    for key, value in _LOGRUS.findall(line):
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value.strip('"')
        fields[key] = value
    return fields


def _before(stamp: str | None, since: dt.datetime) -> bool:
    try:
        moment = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return False  # no time to judge by: the line counts
    return moment.astimezone(dt.UTC) < since.astimezone(dt.UTC)


def challenge_cause(challenge: Mapping[str, Any]) -> str | None:
    status, name = challenge.get("status") or {}, (challenge.get("metadata") or {}).get("name")
    state, reason = str(status.get("state") or ""), str(status.get("reason") or "")
    if state in FINAL_ACME_STATES:
        return f"cert-manager's Challenge {name} is {state}: {_one_line(reason) or 'no reason given'}"
    failure = azure_failure(reason)
    if failure:
        return f"cert-manager cannot present the DNS-01 Challenge {name}: {failure}"
    return None


def order_cause(order: Mapping[str, Any]) -> str | None:
    status, name = order.get("status") or {}, (order.get("metadata") or {}).get("name")
    state = str(status.get("state") or "")
    if state in FINAL_ACME_STATES:
        return f"cert-manager's Order {name} is {state}: {_one_line(str(status.get('reason') or '')) or 'no reason given'}"
    return None


def issuer_cause(kind: str, name: str, issuer: Mapping[str, Any] | None) -> str | None:
    if issuer is None:
        return f'the {kind} "{name}" the Certificate names does not exist'
    ready = _condition(issuer, "Ready")
    if ready and ready.get("status") == "False":
        return f"the {kind} {name} is not Ready: {ready.get('reason', '')}: {_one_line(str(ready.get('message', '')))}"
    return None


def certificate_cause(certificate: Mapping[str, Any]) -> str | None:
    issuing = _condition(certificate, "Issuing")
    if issuing and issuing.get("status") == "False" and issuing.get("reason") == "Failed":
        name = (certificate.get("metadata") or {}).get("name")
        return f"cert-manager gave up issuing Certificate {name} (retried after a back-off): {issuing.get('message', '')}"
    return None


def event_cause(events: Iterable[Mapping[str, Any]],
                kinds: tuple[str, ...] = ("Challenge", "Order", "CertificateRequest")) -> str | None:
    for event in events:
        involved = event.get("involvedObject") or {}
        if event.get("type") != "Warning" or involved.get("kind") not in kinds:
            continue
        failure = azure_failure(str(event.get("message") or ""))
        if failure:
            return f"cert-manager's {involved.get('kind')} {involved.get('name')} reported {event.get('reason')}: {failure}"
    return None


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _one_line(text: str) -> str:
    return " ".join(text.split())
