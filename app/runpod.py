"""Async RunPod endpoint client: submit, poll, cancel, health — every call bounded by a deadline.

Implements runpod.md §5's reference algorithm for queue-based endpoints (§1.1–§1.6):

* submit with ``POST /runsync?wait=<ms>`` where ``wait`` = remaining budget − margin, clamped to
  RunPod's 1000–300000 ms; when less than that minimum remains, ``POST /run`` instead;
* a runsync that returns early (``IN_QUEUE``/``IN_PROGRESS``, or any non-terminal status such as
  ``RUNNING``) is polled with ``GET /status/{id}`` on a backoff that never sleeps past the
  deadline; completion is decided by ``status`` only (an ``output`` on IN_PROGRESS is progress);
* at the deadline the job is cancelled with ``POST /cancel/{id}`` in the background (its own
  short timeout), so the reply path never waits for it;
* retries only where safe (§1.8, §5): 429 (honouring ``Retry-After``) and connect errors on
  submit (the body never left), anything transient on status reads; never a blind resubmit,
  since RunPod has no idempotency key;
* every job carries ``policy.ttl`` and ``policy.executionTimeout`` derived from the budget, so
  work orphaned by a lost response is bounded on RunPod's side too.

Errors are the hierarchy in :mod:`app.errors`; ``delayTime``/``executionTime`` are recorded.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog

from app.background import Background
from app.budget import Deadline
from app.errors import BudgetExceeded, GatewayError, JobFailed, UpstreamUnavailable
from app.limits import UpstreamLimits
from app.metrics import Metrics
from app.runpod_wire import (
    counts,
    error_text,
    job_policy,
    ms_or_none,
    never_sent,
    retry_after_seconds,
    runsync_wait_ms,
)
from app.upstream import Reply, Upstream

log = structlog.get_logger(__name__)

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
CancelOutcome = Literal["cancelled", "not_found", "failed"]
STATUS_CALL_CAP_S = 5.0  # one /status read; polling continues within the deadline


@dataclass(frozen=True, slots=True)
class JobResult:
    id: str
    status: str
    output: Any = None
    error: str | None = None
    delay_ms: int | None = None
    execution_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Tuning:
    wait_margin_ms: int = 250
    poll_initial_ms: int = 100
    poll_max_ms: int = 1000
    cancel_timeout_ms: int = 2000


class RunPodClient:
    def __init__(
        self,
        *,
        http: Upstream,
        endpoint_url: str,
        api_key: str,
        metrics: Metrics,
        background: Background,
        tuning: Tuning | None = None,
        limits: UpstreamLimits | None = None,
    ) -> None:
        self._limits = limits or UpstreamLimits({}, {})
        self._http = http
        self._base = endpoint_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._metrics = metrics
        self._background = background
        self._tuning = tuning or Tuning()

    # ------------------------------------------------------------------ whole job

    async def run_job(
        self,
        job_input: dict[str, Any],
        deadline: Deadline,
        *,
        on_overrun: Callable[[str], None] | None = None,
    ) -> JobResult:
        """Submit one job and wait for its result within ``deadline``.

        Raises BudgetExceeded, JobFailed or UpstreamUnavailable. A job still running when the
        turn gives up (deadline, or the calling task cancelled) goes to ``on_overrun(job_id)``,
        by default a background ``/cancel``.
        """
        body = {"input": job_input, "policy": job_policy(deadline.remaining_ms())}
        job_id: str | None = None
        status: str | None = None
        try:
            data = await self.submit(body, deadline)
            job_id, status = data["id"], data["status"]
            log.debug("runpod_job_submitted", job_id=job_id, status=status)
            backoff = self._tuning.poll_initial_ms / 1000
            while True:
                if status == "COMPLETED":
                    return self._completed(data)
                if status in TERMINAL:
                    raise JobFailed(status, error_text(data.get("error")), job_id=job_id)
                if deadline.expired:
                    raise BudgetExceeded(job_id=job_id, last_status=status)
                await deadline.sleep(backoff)
                backoff = min(backoff * 2, self._tuning.poll_max_ms / 1000)
                if deadline.expired:
                    raise BudgetExceeded(job_id=job_id, last_status=status)
                polled = await self.status(job_id, deadline)
                if polled is not None:
                    data, status = polled, polled["status"]
        except BaseException as exc:  # also CancelledError: the job must not leak
            if job_id is not None and status not in TERMINAL and not isinstance(exc, JobFailed):
                (on_overrun or self.cancel_in_background)(job_id)
            if isinstance(exc, BudgetExceeded | asyncio.CancelledError | JobFailed):
                raise
            if isinstance(exc, httpx.TimeoutException | TimeoutError) and deadline.expired:
                raise BudgetExceeded(job_id=job_id, last_status=status) from None
            raise

    def _completed(self, data: dict[str, Any]) -> JobResult:
        delay, execution = ms_or_none(data.get("delayTime")), ms_or_none(data.get("executionTime"))
        if delay is not None:
            self._metrics.job_queue.observe(delay / 1000)
        if execution is not None:
            self._metrics.job_execution.observe(execution / 1000)
        return JobResult(
            id=str(data["id"]),
            status="COMPLETED",
            output=data.get("output"),
            delay_ms=delay,
            execution_ms=execution,
        )

    # ------------------------------------------------------------------ operations

    async def submit(
        self, body: dict[str, Any], deadline: Deadline, *, queue_only: bool = False
    ) -> dict[str, Any]:
        """``/runsync`` (or ``/run`` under 1 s left, or when ``queue_only``: nobody waits for the
        result, e.g. warm-ups); retries 429 and connect errors only."""
        attempt = 0
        while True:
            wait = (
                None
                if queue_only
                else runsync_wait_ms(deadline.remaining_ms(), self._tuning.wait_margin_ms)
            )
            # A full /runsync cap (or a budget under its 1 s minimum) submits with /run instead.
            if wait and self._limits.try_acquire("runsync"):
                op, path = "runsync", f"/runsync?wait={wait}"
            else:
                op, path = "run", "/run"
                await self._limits.acquire("run", deadline)
            try:
                response = await self._request(
                    op, "POST", path, deadline, json_body=body, pre_acquired=True
                )
            except httpx.HTTPError as exc:
                if not never_sent(exc):
                    # The body may have reached RunPod, which has no idempotency key: a
                    # resubmit could run (and bill) the job twice (runpod.md §5). Give up.
                    if deadline.expired:
                        raise BudgetExceeded(last_status=f"{op} unanswered") from None
                    raise UpstreamUnavailable(
                        f"{op}: {type(exc).__name__}; not resubmitted", op=op
                    ) from None
                # Nothing reached RunPod: safe to try again while the budget allows.
                attempt += 1
                if not await self._backoff(attempt, None, deadline):
                    raise UpstreamUnavailable(f"{op}: cannot connect ({exc})", op=op) from None
                continue
            if response.status_code == 429:
                attempt += 1
                if not await self._backoff(attempt, response.headers.get("retry-after"), deadline):
                    raise UpstreamUnavailable(f"{op}: rate limited (429)", op=op)
                continue
            data = self._job_body(op, response)
            if data is None:
                raise UpstreamUnavailable(f"{op}: HTTP {response.status_code}", op=op)
            return data

    async def status(self, job_id: str, deadline: Deadline) -> dict[str, Any] | None:
        """One ``GET /status/{id}``; None for a transient failure (the poll loop goes on)."""
        try:
            response = await self._request(
                "status", "GET", f"/status/{job_id}", deadline, cap=STATUS_CALL_CAP_S
            )
        except (httpx.TransportError, TimeoutError):
            return None
        if response.status_code == 404:
            raise JobFailed("NOT_FOUND", "job expired or unknown (404)", job_id=job_id)
        if response.status_code in (401, 403, 400):
            raise UpstreamUnavailable(f"status: HTTP {response.status_code}", op="status")
        return self._job_body("status", response)

    async def cancel(self, job_id: str) -> CancelOutcome:
        """Best-effort ``POST /cancel/{id}`` with its own short timeout: ``cancelled``,
        ``not_found`` (RunPod's 404: unknown or expired id) or ``failed`` (anything else)."""
        deadline = Deadline.after_ms(self._tuning.cancel_timeout_ms)
        try:
            response = await self._request("cancel", "POST", f"/cancel/{job_id}", deadline)
        except (httpx.HTTPError, TimeoutError, GatewayError) as exc:
            log.warning("runpod_cancel_failed", job_id=job_id, error=type(exc).__name__)
            return "failed"
        code = response.status_code
        outcome: CancelOutcome = (
            "cancelled" if code < 400 else "not_found" if code == 404 else "failed"
        )
        log.info("runpod_job_cancelled", job_id=job_id, outcome=outcome, code=code)
        return outcome

    async def stream_job(
        self, job_input: dict[str, Any], deadline: Deadline, *, poll_ms: int = 100
    ) -> AsyncIterator[Any]:
        """Submit with ``/run`` and yield each ``/stream`` piece's output as it arrives.

        runpod.md §1.4: ``GET /stream/{id}`` is JSON polling that returns the pieces not yet
        returned; stop at a terminal status, or as soon as the worker's own end marker
        (a piece with ``"done": true``) arrives — the final status flip can be slow. If the
        consumer stops early (its own deadline, the caller hung up), the job is cancelled.
        """
        body = {"input": job_input, "policy": job_policy(deadline.remaining_ms())}
        await self._limits.acquire("run", deadline)
        try:
            response = await self._request(
                "run", "POST", "/run", deadline, json_body=body, pre_acquired=True
            )
        except httpx.HTTPError as exc:
            if deadline.expired:
                raise BudgetExceeded(last_status="run unanswered") from None
            raise UpstreamUnavailable(f"run: {type(exc).__name__}", op="run") from None
        data = self._job_body("run", response)
        if data is None:
            raise UpstreamUnavailable(f"run: HTTP {response.status_code}", op="run")
        job_id, status, finished = data["id"], data["status"], False
        try:
            yield {"_job_id": job_id}
            while True:
                try:
                    response = await self._request(
                        "stream", "GET", f"/stream/{job_id}", deadline, cap=STATUS_CALL_CAP_S
                    )
                except (httpx.TransportError, TimeoutError):
                    response = None  # transient: poll again
                if response is not None:
                    if response.status_code == 404:
                        finished = True
                        raise JobFailed("NOT_FOUND", "job expired or unknown (404)", job_id=job_id)
                    polled = self._job_body("stream", response)
                    if polled is not None:
                        status = polled["status"]
                        for element in polled.get("stream") or []:
                            output = element.get("output") if isinstance(element, dict) else element
                            yield output
                            if isinstance(output, dict) and output.get("done") is True:
                                finished = True
                                return
                        if status in TERMINAL:
                            finished = True
                            if status != "COMPLETED":
                                raise JobFailed(
                                    status, error_text(polled.get("error")), job_id=job_id
                                )
                            return
                if deadline.expired:
                    raise BudgetExceeded(job_id=job_id, last_status=status)
                await deadline.sleep(poll_ms / 1000)
        finally:
            if not finished:
                self.cancel_in_background(job_id)

    async def purge_queue(self) -> dict[str, Any]:
        """``POST /purge-queue``: removes queued jobs only (runpod.md §1.5)."""
        response = await self._request("purge", "POST", "/purge-queue", Deadline.after_ms(5000))
        data = _ok_json("purge", response)
        return data if isinstance(data, dict) else {"result": data}

    def cancel_in_background(self, job_id: str) -> None:
        self._background.spawn(self.cancel(job_id), name=f"cancel-{job_id}")

    async def health(self, timeout_s: float = 3.0) -> dict[str, Any]:
        """``GET /health`` parsed tolerantly (runpod.md §1.5): missing counts are 0."""
        deadline = Deadline.after_ms(timeout_s * 1000)
        response = await self._request("health", "GET", "/health", deadline)
        data = _ok_json("health", response)
        jobs = data.get("jobs") if isinstance(data, dict) else None
        workers = data.get("workers") if isinstance(data, dict) else None
        return {
            "jobs": counts(jobs, ("completed", "failed", "inProgress", "inQueue", "retried")),
            "workers": counts(
                workers, ("idle", "running", "initializing", "ready", "throttled", "unhealthy")
            ),
        }

    # ------------------------------------------------------------------ plumbing

    async def _request(
        self,
        op: str,
        method: str,
        path: str,
        deadline: Deadline,
        *,
        json_body: Any = None,
        cap: float | None = None,
        pre_acquired: bool = False,
    ) -> Reply:
        if not pre_acquired:
            await self._limits.acquire(op, deadline)
        try:
            timeout = deadline.timeout(cap)
            if timeout <= 0:
                raise BudgetExceeded()
            try:
                response = await self._http.request(
                    method,
                    self._base + path,
                    json_body=json_body,
                    headers=self._headers,
                    timeout_s=timeout,
                )
            except httpx.TimeoutException:
                self._metrics.runpod_requests.labels(op=op, code="timeout").inc()
                raise
            except httpx.TransportError:
                self._metrics.runpod_requests.labels(op=op, code="error").inc()
                raise
        finally:
            self._limits.release(op)
        self._metrics.runpod_requests.labels(op=op, code=str(response.status_code)).inc()
        return response

    def _job_body(self, op: str, response: Reply) -> dict[str, Any] | None:
        """The job object of a 2xx (or a FAILED job sent as 400), None for other codes."""
        if response.status_code >= 500 or response.status_code in (401, 403, 404, 429):
            return None
        try:
            data = response.json()
        except ValueError:
            log.warning(
                "runpod_malformed_body", op=op, code=response.status_code, body=response.text[:200]
            )
            raise UpstreamUnavailable(f"{op}: malformed body", op=op) from None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            if response.status_code >= 400:
                return None
            raise UpstreamUnavailable(f"{op}: body without a job id", op=op)
        if not isinstance(data.get("status"), str):
            raise UpstreamUnavailable(f"{op}: body without a status", op=op)
        return data

    async def _backoff(self, attempt: int, retry_after: str | None, deadline: Deadline) -> bool:
        """Sleep before a safe retry; False when the budget cannot afford another try."""
        delay = retry_after_seconds(retry_after)
        if delay is None:
            delay = min(1.0, 0.05 * 2**attempt) * (0.5 + random.random())
        if delay >= deadline.remaining() - 0.05:
            return False
        await deadline.sleep(delay)
        return True


def _ok_json(op: str, response: Reply) -> Any:
    """The JSON body of a 200 answer to a control call, else UpstreamUnavailable."""
    if response.status_code != 200:
        raise UpstreamUnavailable(f"{op}: HTTP {response.status_code}", op=op)
    try:
        return response.json()
    except ValueError:
        raise UpstreamUnavailable(f"{op}: malformed body", op=op) from None
