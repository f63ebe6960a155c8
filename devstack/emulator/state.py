"""The live emulator: endpoints, traffic accounting, behaviour resolution and run-time config.

One :class:`Emulator` lives at ``app.state.emulator``; tests and benches read its jobs, workers and
stats directly or through ``/_emulator/*``. Which :class:`Behavior` a submitted job gets:

1. the ``X-Emulator-Behavior`` header of the submit (a JSON object), if present;
2. else a draw from the configured :class:`FaultMix`, if any;
3. else ``virtual_worker(job_input)``, if set;
4. else ``Behavior()`` (complete at once; with real workers the worker decides the outcome).

Jobs run in-process when ``virtual_worker`` is set, and wait for real workers otherwise.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from devstack.emulator.behavior import Behavior
from devstack.emulator.config import EmulatorConfig, config_changes
from devstack.emulator.endpoint import Endpoint
from devstack.emulator.faults import Sampler
from devstack.emulator.jobs import Job
from devstack.emulator.traffic import Limiter, Traffic


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.endpoints = {eid: Endpoint(eid, self._current_config) for eid in config.endpoint_ids}
        self.traffic = Traffic()
        self.limiter = Limiter()
        self._sampler: Sampler | None = config.faults.sampler() if config.faults else None
        self._submit_faults: dict[str, int] = {}
        self._clock = (time.monotonic(), time.time())

    def _current_config(self) -> EmulatorConfig:
        return self.config

    # ------------------------------------------------------------------ lookups

    def endpoint(self, endpoint_id: str) -> Endpoint:
        """The endpoint (KeyError for an unknown id)."""
        return self.endpoints[endpoint_id]

    def job(self, job_id: str) -> Job | None:
        for endpoint in self.endpoints.values():
            if (job := endpoint.jobs.get(job_id)) is not None:
                return job
        return None

    def jobs(self) -> list[Job]:
        return [job for endpoint in self.endpoints.values() for job in endpoint.jobs.values()]

    # ------------------------------------------------------------------ behaviours

    def resolve_behavior(
        self, job_input: Mapping[str, Any], header: str | None
    ) -> tuple[Behavior, str]:
        """The job's behaviour and where it came from; ValueError for a bad header."""
        if header:
            try:
                data = json.loads(header)
            except ValueError:
                raise ValueError("X-Emulator-Behavior is not valid JSON") from None
            return Behavior.from_dict(data), "header"
        if self._sampler is not None:
            return self._sampler(job_input), "faults"
        if self.config.virtual_worker is not None:
            return self.config.virtual_worker(job_input), "virtual"
        return Behavior(), "default"

    def submit_fault_applies(self, behavior: Behavior, job_input: Mapping[str, Any]) -> bool:
        """Whether this submit answers ``behavior.submit_status`` (first K identical submits)."""
        if behavior.submit_status is None:
            return False
        if behavior.submit_errors is None:
            return True
        key = hashlib.sha256(
            json.dumps([job_input, behavior.to_dict()], sort_keys=True, default=str).encode()
        ).hexdigest()
        seen = self._submit_faults.get(key, 0)
        self._submit_faults[key] = seen + 1
        return seen < behavior.submit_errors

    # ------------------------------------------------------------------ run-time control

    def reconfigure(self, data: Mapping[str, Any]) -> None:
        """Apply JSON settings (``POST /_emulator/config``); ValueError leaves the config as is."""
        changes = config_changes(data)
        if "endpoint_ids" in changes or "api_key" in changes:
            raise ValueError("endpoint_ids and api_key cannot change at run time")
        config = self.config.replace(**changes)
        if "faults" in changes:
            self._sampler = config.faults.sampler() if config.faults else None
        self.config = config
        for endpoint in self.endpoints.values():
            endpoint.queue.resume_if_unpaused()

    def reset(self) -> None:
        """Forget jobs, workers, counts and fault counters (config and open long-polls stay)."""
        for endpoint in self.endpoints.values():
            endpoint.reset()
        self.traffic.reset()
        self.limiter.reset()
        self._submit_faults.clear()
        if self.config.faults is not None:
            self._sampler = self.config.faults.sampler()

    def close(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.close()

    # ------------------------------------------------------------------ inspection

    def inspect_jobs(self) -> list[dict[str, Any]]:
        now, wall = time.monotonic(), time.time()
        jobs = sorted(self.jobs(), key=lambda j: j.submitted_at)
        return [job.inspect(now, wall) for job in jobs]

    def inspect_workers(self) -> dict[str, list[dict[str, Any]]]:
        now = time.monotonic()
        return {
            eid: [worker.inspect(now) for worker in endpoint.workers]
            for eid, endpoint in self.endpoints.items()
        }

    def stats(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for job in self.jobs():
            statuses[job.status] = statuses.get(job.status, 0) + 1
        return {
            **self.traffic.snapshot(),
            "jobs": statuses,
            "uptime_s": round(time.monotonic() - self._clock[0], 3),
        }
