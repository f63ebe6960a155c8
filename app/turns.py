"""Turns: the one path every model-backed reply takes to RunPod (issue #4).

``Turns`` puts the policies in one place so tool calls, the custom LLM, knowledge-base lookups
and chat all behave alike:

* admission — at most ``MAX_INFLIGHT_TURNS`` in flight; beyond that a turn is refused at once
  (``Overloaded``) so memory and the event loop stay healthy under any load;
* the circuit breaker — while open, ``BreakerOpen`` at once, without touching RunPod; upstream
  failures count, the caller's own deadline never does;
* cold-start awareness — while RunPod's ``/health`` shows no serving worker and a queue, the
  turn's deadline shrinks to ``COLD_START_BUDGET_MS`` so the caller hears the fallback sooner,
  and the job is left running (not cancelled) so it still warms a worker;
* the worker's input shape — ``RUNPOD_JOB_FORMAT`` (pete|openai|ollama|prompt) rewrites the v1
  input for workers we did not build (gpu_worker/formats.py);
* late results — a job left running past its turn is watched in the background; its result is
  logged and counted, and delivered to VAPI's Live Call Control when enabled.

Routes turn the raised ``GatewayError`` into their own fallback shape (vapi.md §2.2, §6).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import structlog

from app.background import Background
from app.breaker import CircuitBreaker
from app.budget import Deadline
from app.errors import BreakerOpen, BudgetExceeded, GatewayError, Overloaded, UpstreamError
from app.health import HealthMonitor
from app.metrics import Metrics
from app.runpod import JobResult, RunPodClient
from gpu_worker.formats import to_worker_input

log = structlog.get_logger(__name__)

LateHandler = Callable[[JobResult], Awaitable[None]]
LATE_WATCH_S = 120.0


class Turns:
    def __init__(
        self,
        *,
        runpod: RunPodClient,
        breaker: CircuitBreaker,
        health: HealthMonitor,
        metrics: Metrics,
        background: Background,
        max_inflight: int,
        cold_start_budget_ms: int,
        job_format: str = "pete",
        model: str | None = None,
        stream_poll_ms: int = 100,
    ) -> None:
        self.runpod = runpod
        self.breaker = breaker
        self.health = health
        self.metrics = metrics
        self.background = background
        self.max_inflight = max_inflight
        self.cold_start_budget_ms = cold_start_budget_ms
        self.job_format = job_format
        self.model = model
        self.stream_poll_ms = stream_poll_ms
        self.inflight = 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Count a turn in flight, or refuse it when the gateway is full."""
        if self.inflight >= self.max_inflight:
            raise Overloaded("too many turns in flight")
        self.inflight += 1
        self.metrics.inflight.inc()
        try:
            yield
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()

    def effective_deadline(self, deadline: Deadline) -> tuple[Deadline, bool]:
        """The deadline to use now, and whether a cold start shortened it."""
        if not self.health.cold:
            return deadline, False
        cold = Deadline.after_ms(self.cold_start_budget_ms)
        return (cold, True) if cold.at < deadline.at else (deadline, True)

    async def run(
        self, job_input: dict[str, Any], deadline: Deadline, *, on_late: LateHandler | None = None
    ) -> JobResult:
        """One job, whole result, under the breaker and the (possibly cold-shortened) deadline."""
        if not self.breaker.allow():
            raise BreakerOpen("circuit breaker open")
        deadline, cold = self.effective_deadline(deadline)
        keep = cold or on_late is not None
        try:
            result = await self.runpod.run_job(
                self.for_worker(job_input),
                deadline,
                on_overrun=(lambda job_id: self.watch_late(job_id, on_late)) if keep else None,
            )
        except UpstreamError:
            self.breaker.record_failure()
            raise
        except BaseException:
            self.breaker.release_probe()
            raise
        self.breaker.record_success()
        return result

    async def stream(self, job_input: dict[str, Any], deadline: Deadline) -> AsyncIterator[Any]:
        """Stream one job's pieces under the breaker; the consumer owns the timing policy."""
        if not self.breaker.allow():
            raise BreakerOpen("circuit breaker open")
        ok = False
        try:
            async for piece in self.runpod.stream_job(
                self.for_worker(job_input), deadline, poll_ms=self.stream_poll_ms
            ):
                yield piece
            ok = True
        except UpstreamError:
            self.breaker.record_failure()
            raise
        finally:
            if ok:
                self.breaker.record_success()
            else:
                self.breaker.release_probe()

    def for_worker(self, job_input: dict[str, Any]) -> dict[str, Any]:
        """The v1 input in the deployed worker's own shape (``RUNPOD_JOB_FORMAT``)."""
        return to_worker_input(job_input, self.job_format, model=self.model)

    def watch_late(self, job_id: str, on_late: LateHandler | None) -> None:
        self.background.spawn(self._watch(job_id, on_late), name=f"late-{job_id}")

    async def _watch(self, job_id: str, on_late: LateHandler | None) -> None:
        deadline = Deadline.after_ms(LATE_WATCH_S * 1000)
        while not deadline.expired:
            try:
                data = await self.runpod.status(job_id, deadline)
            except GatewayError:
                return
            if data is not None and data["status"] == "COMPLETED":
                self.metrics.late_results.inc()
                log.info("late_result", job_id=job_id)
                if on_late is not None:
                    await on_late(
                        JobResult(id=job_id, status="COMPLETED", output=data.get("output"))
                    )
                return
            if data is not None and data["status"] in ("FAILED", "CANCELLED", "TIMED_OUT"):
                return
            await deadline.sleep(1.0)
        self.runpod.cancel_in_background(job_id)


def fallback_reason(exc: BaseException) -> str:
    """The fallback label for an error on the turn path (slow|failed|overloaded|breaker_open)."""
    if isinstance(exc, GatewayError):
        return exc.reason
    if isinstance(exc, TimeoutError | BudgetExceeded):
        return "slow"
    return "failed"
