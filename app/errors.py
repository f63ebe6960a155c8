"""One small error hierarchy for the turn path; routes turn these into replies in one place.

::

    GatewayError
    ├── UpstreamError            RunPod misbehaved: counts toward the breaker (issue #4)
    │   ├── UpstreamUnavailable  connect error, 5xx, 429 beyond the deadline, malformed body
    │   └── JobFailed            terminal FAILED / CANCELLED / TIMED_OUT, or 404 on /status
    ├── BudgetExceeded           the turn's own deadline ran out (never counts toward the breaker)
    ├── Overloaded               admission refused: too many turns in flight (MAX_INFLIGHT_TURNS)
    └── BreakerOpen              the breaker is open: answered at once without touching RunPod

Each carries a ``reason`` label (low cardinality, for metrics and the fallback sentence choice).
"""

from __future__ import annotations


class GatewayError(Exception):
    reason = "error"


class UpstreamError(GatewayError):
    reason = "failed"

    def __init__(self, message: str, *, op: str = "", job_id: str | None = None) -> None:
        super().__init__(message)
        self.op = op
        self.job_id = job_id


class UpstreamUnavailable(UpstreamError):
    reason = "failed"


class JobFailed(UpstreamError):
    reason = "failed"

    def __init__(self, status: str, error: str | None, *, job_id: str | None) -> None:
        super().__init__(f"job {status}: {error or 'no error text'}", op="job", job_id=job_id)
        self.status = status
        self.error = error


class BudgetExceeded(GatewayError):
    reason = "slow"

    def __init__(self, *, job_id: str | None = None, last_status: str | None = None) -> None:
        super().__init__(f"budget exceeded (job {job_id or 'not submitted'}, {last_status})")
        self.job_id = job_id
        self.last_status = last_status


class Overloaded(GatewayError):
    reason = "overloaded"


class BreakerOpen(GatewayError):
    reason = "breaker_open"
