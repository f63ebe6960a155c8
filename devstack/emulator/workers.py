"""The workers an endpoint has seen on its job API, their stop signals and the ``/health`` counts.

A worker is *alive* while it holds a job-take or job-stop long-poll open, or was heard from
(take, stop poll, done, stream, ping) within ``stale_s`` seconds. The SDK keeps a job-stop poll
open almost all the time (runpod.md §2.9), so a live SDK worker never looks stale and a killed
one disappears within ``stale_s``. Health counts (runpod.md §1.5; the wire meaning of each
count is not documented, these are the emulator's choices):

* ``initializing``: alive, heard only through pings (not polling for jobs yet);
* ``running``: alive and holding at least one job; ``idle``: alive, polling, holding none;
* ``ready``: alive and long-polling job-take right now (a job would be picked up at once);
* ``unhealthy``: its last ping said ``status=unhealthy`` (the SDK's fitness-failure report);
* ``throttled``: always 0 (the emulator never throttles workers).

Stop signals (``/cancel``, TTL expiry, execution timeout) queue per worker until its job-stop
long-poll collects them as ``{"jobsToStop": [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from devstack.emulator.jobs import Pulse

HEALTH_WORKER_KEYS = ("idle", "running", "initializing", "ready", "throttled", "unhealthy")


@dataclass(slots=True, kw_only=True)
class Worker:
    id: str
    first_seen: float
    last_seen: float
    open_takes: int = 0
    open_stop_polls: int = 0
    polled: bool = False
    unhealthy: bool = False
    jobs: set[str] = field(default_factory=set)
    pending_stops: list[str] = field(default_factory=list)
    stop_pulse: Pulse = field(default_factory=Pulse)
    requests: int = 0
    pings: int = 0
    jobs_taken: int = 0
    stop_pod: bool = False
    last_ping: dict[str, str] = field(default_factory=dict)
    last_take: dict[str, str] = field(
        default_factory=dict
    )  # its query (batch_size, job_in_progress)

    def alive(self, now: float, stale_s: float) -> bool:
        return self.open_takes > 0 or self.open_stop_polls > 0 or now - self.last_seen <= stale_s

    def inspect(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "seen_s_ago": round(now - self.last_seen, 3),
            "open_takes": self.open_takes,
            "open_stop_polls": self.open_stop_polls,
            "jobs": sorted(self.jobs),
            "jobs_taken": self.jobs_taken,
            "pending_stops": list(self.pending_stops),
            "requests": self.requests,
            "pings": self.pings,
            "unhealthy": self.unhealthy,
            "stop_pod": self.stop_pod,
            "last_ping": self.last_ping,
            "last_take": self.last_take,
        }


class Workers:
    """Registry of one endpoint's workers, keyed by the id in the job-API URLs."""

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def __iter__(self) -> Iterator[Worker]:
        return iter(self._workers.values())

    def get(self, worker_id: str) -> Worker | None:
        return self._workers.get(worker_id)

    def seen(self, worker_id: str, now: float) -> Worker:
        worker = self._workers.get(worker_id)
        if worker is None:
            worker = self._workers[worker_id] = Worker(id=worker_id, first_seen=now, last_seen=now)
        worker.last_seen = now
        worker.requests += 1
        return worker

    def request_stop(self, worker_id: str, job_id: str) -> None:
        worker = self._workers.get(worker_id)
        if worker is None:
            return
        worker.jobs.discard(job_id)
        if job_id not in worker.pending_stops:
            worker.pending_stops.append(job_id)
        worker.stop_pulse.fire()

    def release(self, worker_id: str | None, job_id: str) -> None:
        worker = self._workers.get(worker_id) if worker_id else None
        if worker is not None:
            worker.jobs.discard(job_id)

    def counts(self, now: float, stale_s: float) -> dict[str, int]:
        out = dict.fromkeys(HEALTH_WORKER_KEYS, 0)
        for worker in self._workers.values():
            if not worker.alive(now, stale_s):
                continue
            if worker.unhealthy:
                out["unhealthy"] += 1
                continue
            if not worker.polled:
                out["initializing"] += 1
                continue
            out["running" if worker.jobs else "idle"] += 1
            if worker.open_takes > 0:
                out["ready"] += 1
        return out

    def clear(self) -> None:
        self._workers.clear()
