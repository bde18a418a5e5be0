"""The libraries' own retry policies, bound to one collection's Budget.

Both retry what kubectl and the Azure CLI retry (429 with its Retry-After, 500, 502, 503, 504, a reset
connection, a read timeout) on reads only, with exponential backoff and jitter, and both give up when
the budget's deadline passes or a server asks to wait longer than the cap. A 401 is never retried.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import urllib3
from azure.core.pipeline.policies import RetryPolicy
from urllib3.exceptions import MaxRetryError

from aksid.collect.budget import Budget, DeadlinePassed

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _cause(response: Any, error: BaseException | None) -> str:
    if error is not None:
        text = f"{type(error).__name__} {error}".lower()
        return "timeout" if "timeout" in text or "timed out" in text else "reset"
    return str(getattr(response, "status", None) or getattr(response, "status_code", "?"))


class KubeRetry(urllib3.Retry):
    """urllib3's Retry for the Kubernetes client (Configuration.retries), drawing on the budget."""

    def __init__(self, *args: Any, budget: Budget | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget

    @classmethod
    def for_budget(cls, budget: Budget) -> KubeRetry:
        retries = budget.attempts - 1
        return cls(total=retries, connect=retries, read=retries, status=retries, other=0, redirect=0,
                   allowed_methods=frozenset({"GET", "HEAD"}), status_forcelist=RETRY_STATUSES,
                   respect_retry_after_header=True, raise_on_status=False, budget=budget)

    def new(self, **kw: Any) -> KubeRetry:
        kw.setdefault("budget", self.budget)
        return super().new(**kw)

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> KubeRetry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)  # raises when exhausted
        if self.budget is not None and response is not None and self.respect_retry_after_header:
            retry_after = self.get_retry_after(response)
            if retry_after is not None:  # before counting a retry that will not happen
                self.budget.check_retry_after("the Kubernetes API", retry_after)
        if self.budget is not None:
            if self.budget.expired():
                raise MaxRetryError(_pool, url or "", DeadlinePassed(  # type: ignore[arg-type]
                    f"the collection deadline ({self.budget.seconds:g} s) passed"))
            self.budget.record("kube", urlsplit(url or "").path, _cause(response, error))
        return retry

    def get_backoff_time(self) -> float:
        if self.budget is None:
            return super().get_backoff_time()
        return self.budget.backoff(max(0, len(self.history) - 1))

    def sleep_for_retry(self, response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is None:
            return False
        if self.budget is not None:
            self.budget.check_retry_after("the Kubernetes API", retry_after)  # raises past the cap or the deadline
        time.sleep(retry_after)
        return True


class ArmRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy for the ARM clients (`retry_policy=`), drawing on the budget."""

    def __init__(self, budget: Budget, **kwargs: Any) -> None:
        super().__init__(retry_total=budget.attempts - 1, retry_connect=budget.attempts - 1,
                         retry_read=budget.attempts - 1, retry_status=budget.attempts - 1, **kwargs)
        self.budget = budget

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings["timeout"] = max(0.01, min(settings["timeout"], self.budget.remaining()))  # the whole operation
        return settings

    def _configure_timeout(self, request: Any, absolute_timeout: float, is_response_error: bool) -> None:
        super()._configure_timeout(request, absolute_timeout, is_response_error)
        # azure-core caps the connect timeout by what is left; the read timeout too, or one attempt could outlast it
        options = request.context.options
        options["read_timeout"] = max(0.01, min(self.budget.request_timeout, absolute_timeout))

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return self.budget.backoff(max(0, len(settings["history"]) - 1))

    def _sleep_for_retry(self, response: Any, transport: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if not retry_after:
            return False
        self.budget.check_retry_after("ARM", retry_after)  # raises past the cap or the deadline
        transport.sleep(retry_after)
        return True

    def increment(self, settings: dict[str, Any], response: Any = None, error: Any = None) -> bool:
        retry = super().increment(settings, response=response, error=error)
        if retry and error is None and response is not None:
            retry_after = self.get_retry_after(response)
            if retry_after:  # before counting a retry that will not happen
                self.budget.check_retry_after("ARM", retry_after)
        if retry:
            request = getattr(response, "http_request", None)
            url = getattr(request, "url", "") or ""
            http_response = getattr(response, "http_response", None)
            self.budget.record("arm", urlsplit(url).path, _cause(http_response, error))
        return retry
