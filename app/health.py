"""RunPod endpoint health, read in the background (runpod.md §1.5, §4.3–§4.4; issue #4 item 5).

A lifespan task reads ``GET /health`` every ``HEALTH_POLL_S`` seconds and keeps the latest
answer, so no turn ever waits on it. From it we derive:

* ``cold``: no worker ready, idle or running while jobs are queued — a cold start (or a crash
  loop) is in progress, so turns switch to the filler/fallback earlier instead of burning the
  whole budget;
* the ``pete_runpod_workers{state}`` / ``pete_runpod_jobs{state}`` gauges;
* readiness (``/readyz``): RunPod answered recently.

Optional keep-warm (``KEEP_WARM_INTERVAL_S``) submits a cheap ``warmup`` job so a worker stays up.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from app.budget import Deadline
from app.errors import GatewayError
from app.metrics import Metrics
from app.runpod import RunPodClient
from gpu_worker.contract import build_job_input

log = structlog.get_logger(__name__)


class HealthMonitor:
    def __init__(
        self,
        *,
        runpod: RunPodClient,
        metrics: Metrics,
        interval_s: float,
        keep_warm_interval_s: float = 0,
    ) -> None:
        self._runpod = runpod
        self._metrics = metrics
        self.interval_s = interval_s
        self.keep_warm_interval_s = keep_warm_interval_s
        self.latest: dict[str, Any] | None = None
        self.updated_at: float | None = None  # time.monotonic() of the last good answer
        self.last_error: str | None = None
        self._last_warm = 0.0

    @property
    def cold(self) -> bool:
        """No worker can take a job now, and jobs are waiting: a cold start is under way."""
        if self.latest is None:
            return False
        workers, jobs = self.latest["workers"], self.latest["jobs"]
        serving = workers["ready"] + workers["idle"] + workers["running"]
        return serving == 0 and jobs["inQueue"] > 0

    def age_s(self) -> float | None:
        return None if self.updated_at is None else time.monotonic() - self.updated_at

    async def refresh(self) -> None:
        try:
            data = await self._runpod.health(timeout_s=min(5.0, max(1.0, self.interval_s)))
        except (GatewayError, OSError, TimeoutError) as exc:
            self.last_error = type(exc).__name__
            log.warning("runpod_health_failed", error=str(exc) or type(exc).__name__)
            return
        except Exception as exc:  # an httpx error we did not expect must not kill the loop
            self.last_error = type(exc).__name__
            log.warning("runpod_health_failed", error=type(exc).__name__)
            return
        self.latest, self.updated_at, self.last_error = data, time.monotonic(), None
        for state, count in data["workers"].items():
            self._metrics.workers.labels(state=state).set(count)
        for state, count in data["jobs"].items():
            self._metrics.jobs.labels(state=state).set(count)

    async def keep_warm(self) -> None:
        """Submit one tiny warm-up job (``/run``: nobody waits for it)."""
        body = {
            "input": build_job_input(type="warmup"),
            "policy": {"ttl": 60_000, "executionTimeout": 30_000},
        }
        try:
            data = await self._runpod.submit(body, Deadline.after_ms(3000), queue_only=True)
            log.info("keep_warm_submitted", job_id=data.get("id"))
        except Exception as exc:
            log.warning("keep_warm_failed", error=type(exc).__name__)

    async def run(self) -> None:
        """The lifespan's background loop; cancelled at shutdown."""
        while True:
            await self.refresh()
            if self.keep_warm_interval_s and time.monotonic() - self._last_warm >= (
                self.keep_warm_interval_s
            ):
                self._last_warm = time.monotonic()
                await self.keep_warm()
            await asyncio.sleep(self.interval_s)

    def snapshot(self) -> dict[str, Any]:
        age = self.age_s()
        return {
            "latest": self.latest,
            "age_s": None if age is None else round(age, 3),
            "cold": self.cold,
            "last_error": self.last_error,
        }
