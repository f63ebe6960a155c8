"""One emulated endpoint: its jobs, queue and workers, and every state change a job goes through.

States and transitions follow runpod.md §1.6: ``IN_QUEUE`` → ``IN_PROGRESS`` (a worker took it)
→ ``COMPLETED`` | ``FAILED`` | ``TIMED_OUT``, and ``CANCELLED`` from either non-terminal state.

* Pickup is immediate: a job that becomes takeable goes straight to an open job-take long-poll
  (runpod.md §3.6), FIFO over jobs and over waiting workers (takequeue.py).
* ``policy.ttl`` counts from submission; when it runs out the job is deleted (``/status`` 404),
  even mid-run, and its worker is told to stop (§0.5, §1.7). Finished jobs are also deleted
  after the retention time (30 min for ``/run``, 1 min for ``/runsync``).
* ``policy.executionTimeout`` counts from pickup; when it runs out the job is ``TIMED_OUT`` and its
  worker is told to stop (the real status is UNCONFIRMED: FAILED or TIMED_OUT, §5).
* ``/cancel`` stops the worker through its job-stop long-poll (§2.9); ``/retry`` re-queues a
  FAILED/TIMED_OUT job under the same id without its old output; ``/purge-queue`` cancels the
  queued jobs (the emulator keeps them as CANCELLED rather than deleting them).

Timers are ``loop.call_later`` callbacks that re-check the job when they fire, so a timer made
stale by a retry, a new ttl or an earlier end simply does nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from devstack.emulator.behavior import Behavior
from devstack.emulator.config import EmulatorConfig, policy_ms
from devstack.emulator.jobs import Job, SubmitKind, new_job_id
from devstack.emulator.takequeue import TakeQueue
from devstack.emulator.virtual import VIRTUAL_WORKER_ID, run_virtual
from devstack.emulator.workers import Workers

_SLACK_S = 0.001  # call_later may fire a hair early relative to time.monotonic()


class Endpoint:
    def __init__(self, endpoint_id: str, settings: Callable[[], EmulatorConfig]) -> None:
        self.id = endpoint_id
        self._settings = settings
        self.jobs: dict[str, Job] = {}
        self.workers = Workers()
        self.retried = 0
        self.queue = TakeQueue(lambda: settings().paused)
        self._timers: dict[str, list[asyncio.TimerHandle]] = {}
        self._virtual_tasks: dict[str, asyncio.Task[None]] = {}
        self._virtual_slots: asyncio.Semaphore | None = None
        self._virtual_slots_size = 0

    # ------------------------------------------------------------------ client side

    def submit(
        self,
        *,
        kind: SubmitKind,
        job_input: dict[str, Any],
        policy: Mapping[str, Any],
        webhook: str | None,
        behavior: Behavior,
        source: str,
    ) -> Job:
        now = time.monotonic()
        ttl_ms, exec_ms = policy_ms(policy, self._settings())
        job = Job(
            id=new_job_id(kind),
            endpoint_id=self.id,
            kind=kind,
            input=job_input,
            behavior=behavior,
            behavior_source=source,
            policy=dict(policy),
            webhook=webhook,
            ttl_s=ttl_ms / 1000,
            execution_timeout_s=exec_ms / 1000,
            submitted_at=now,
            queued_at=now,
            expires_at=now + ttl_ms / 1000,
            status_errors_left=behavior.status_errors,
        )
        job.history.append((now, "IN_QUEUE"))
        self.jobs[job.id] = job
        self._at(job, job.expires_at, self._expire)
        self._enqueue(job, now)
        return job

    def cancel(self, job: Job) -> None:
        if job.terminal:
            return
        job.cancelled = True
        self._stop_work(job)
        self._finish(job, "CANCELLED")

    def retry(self, job: Job, behavior: Behavior, source: str) -> None:
        """Re-queue a FAILED/TIMED_OUT job under the same id, without its previous result."""
        now = time.monotonic()
        job.attempt += 1
        job.behavior, job.behavior_source = behavior, source
        job.output, job.has_output, job.error = None, False, None
        job.stream, job.stream_cursor = [], 0
        job.started_at = job.finished_at = None
        job.worker_id = None
        job.queued_at = now
        job.expires_at = job.submitted_at + job.ttl_s  # retention no longer applies
        job.set_status("IN_QUEUE", now)
        self.retried += 1
        self._at(job, job.expires_at, self._expire)
        self._enqueue(job, now)

    def purge(self) -> int:
        queued = [job for job in self.jobs.values() if job.status == "IN_QUEUE"]
        for job in queued:
            self.cancel(job)
        return len(queued)

    def set_ttl(self, job: Job, ttl_ms: int) -> None:
        """``GET /status/{id}?ttl=ms``: the job (or its result) expires ``ttl_ms`` from now."""
        job.expires_at = time.monotonic() + ttl_ms / 1000
        self._at(job, job.expires_at, self._expire)

    async def wait_terminal(self, job: Job, hold_s: float, gone: asyncio.Future[None]) -> None:
        """Hold until the job is terminal or deleted, ``hold_s`` passes or the client leaves."""
        deadline = time.monotonic() + hold_s
        while not job.terminal and job.id in self.jobs and not gone.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.wait(
                {job.changed.future(), gone}, timeout=remaining, return_when="FIRST_COMPLETED"
            )

    async def wait_change(self, job: Job, hold_s: float, gone: asyncio.Future[None]) -> None:
        if hold_s > 0 and not job.terminal:
            await asyncio.wait(
                {job.changed.future(), gone}, timeout=hold_s, return_when="FIRST_COMPLETED"
            )

    def health(self) -> dict[str, Any]:
        """``GET /health`` (runpod.md §1.5); worker counts are described in workers.py."""
        cfg = self._settings()
        jobs = {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0}
        key = {"COMPLETED": "completed", "FAILED": "failed", "TIMED_OUT": "failed"}
        key |= {"IN_PROGRESS": "inProgress", "IN_QUEUE": "inQueue"}
        for job in self.jobs.values():
            if job.status in key:
                jobs[key[job.status]] += 1
        workers = self.workers.counts(time.monotonic(), cfg.worker_stale_s)
        if cfg.virtual_worker is not None:
            # the in-process worker shows as one always-ready worker
            busy = any(
                j.worker_id == VIRTUAL_WORKER_ID and not j.terminal for j in self.jobs.values()
            )
            workers["running" if busy else "idle"] += 1
            workers["ready"] += 1
        return {"jobs": {**jobs, "retried": self.retried}, "workers": workers}

    # ------------------------------------------------------------------ worker side

    async def take(
        self,
        worker_id: str,
        batch_size: int,
        hold_s: float,
        gone: asyncio.Future[None],
        query: Mapping[str, str] | None = None,
    ) -> list[Job]:
        """A job-take long-poll: jobs handed to this worker (empty after ``hold_s``)."""
        worker = self.workers.seen(worker_id, time.monotonic())
        worker.polled = True
        worker.last_take = {**(query or {}), "batch_size": str(batch_size)}
        worker.open_takes += 1
        try:
            return await self.queue.take(
                batch_size,
                hold_s,
                gone,
                lambda job_id, attempt: self._claim(job_id, attempt, worker_id),
            )
        finally:
            worker.open_takes -= 1
            worker.last_seen = time.monotonic()

    def done(self, worker_id: str, job_id: str, body: Mapping[str, Any]) -> int:
        """A job-done POST (result, error or progress update); returns the HTTP status."""
        now = time.monotonic()
        worker = self.workers.seen(worker_id, now)
        job = self.jobs.get(job_id)
        if job is None:
            return 404  # deleted by ttl: the real API answers 404 too (runpod-python#56)
        if job.status != "IN_PROGRESS":
            job.late_results += 1  # e.g. a progress update racing the result (#250)
            return 200
        if body.get("status") == "IN_PROGRESS":
            if "output" in body:
                job.set_output(body["output"])
                job.changed.fire()
            return 200
        if body.get("stopPod"):
            worker.stop_pod = True
        if "output" in body:
            job.set_output(body["output"])
        else:
            job.output, job.has_output = None, False
        error = body.get("error")
        if error:
            job.error = error
        self._finish(job, "FAILED" if error else "COMPLETED")
        return 200

    def stream(self, worker_id: str, job_id: str, body: Mapping[str, Any]) -> int:
        self.workers.seen(worker_id, time.monotonic())
        job = self.jobs.get(job_id)
        if job is None:
            return 404
        if job.status != "IN_PROGRESS":
            job.late_results += 1
            return 200
        self.append_stream(job, body.get("output"))
        return 200

    async def stop_signals(
        self, worker_id: str, hold_s: float, gone: asyncio.Future[None]
    ) -> list[str]:
        """A job-stop long-poll: ids this worker must stop (empty after ``hold_s``)."""
        worker = self.workers.seen(worker_id, time.monotonic())
        worker.open_stop_polls += 1
        try:
            if not worker.pending_stops and hold_s > 0 and not self.queue.closed:
                await asyncio.wait(
                    {worker.stop_pulse.future(), gone},
                    timeout=hold_s,
                    return_when="FIRST_COMPLETED",
                )
        finally:
            worker.open_stop_polls -= 1
            worker.last_seen = time.monotonic()
        if gone.done():
            return []
        stops, worker.pending_stops = worker.pending_stops, []
        return stops

    def ping(self, worker_id: str, params: Mapping[str, str]) -> None:
        worker = self.workers.seen(worker_id, time.monotonic())
        worker.pings += 1
        worker.unhealthy = params.get("status") == "unhealthy"
        worker.last_ping = dict(params)

    # ------------------------------------------------------------------ used by the virtual worker

    def start(self, job: Job, worker_id: str) -> None:
        now = time.monotonic()
        job.started_at = now
        job.worker_id = worker_id
        job.set_status("IN_PROGRESS", now)
        worker = self.workers.get(worker_id)
        if worker is not None:
            worker.jobs.add(job.id)
            worker.jobs_taken += 1
        self._at(job, now + job.execution_timeout_s, self._execution_timeout)

    def append_stream(self, job: Job, chunk: Any) -> None:
        job.stream.append(chunk)
        job.changed.fire()

    def progress(self, job: Job, output: Any) -> None:
        job.set_output(output)
        job.changed.fire()

    def complete(self, job: Job, status: str, *, output: Any = None, error: Any = None) -> None:
        if status == "COMPLETED":
            job.set_output(output)
        else:
            job.error = error
        self._finish(job, status)

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Forget every job and worker; open long-polls stay valid and see the new state."""
        for job_id in list(self.jobs):
            self._delete(job_id)
        self.queue.clear()
        self.workers.clear()
        self.retried = 0

    def close(self) -> None:
        """Shutting down: release every long-poll now, so the server need not wait them out."""
        for worker in self.workers:
            worker.stop_pulse.fire()
        self.queue.close()
        self.reset()

    # ------------------------------------------------------------------ internals

    def _enqueue(self, job: Job, now: float) -> None:
        cfg = self._settings()
        job.virtual = cfg.virtual_worker is not None
        if job.virtual:
            slots = self._slots(cfg.virtual_concurrency)
            task = asyncio.get_running_loop().create_task(run_virtual(self, job, slots))
            self._virtual_tasks[job.id] = task
            task.add_done_callback(lambda t, job_id=job.id: self._forget_task(job_id, t))
        elif job.behavior.queue_s > 0:
            # the cold-start delay applies to real workers too: not takeable before it passed
            self._at(job, now + job.behavior.queue_s, self._make_takeable)
        else:
            self._make_takeable(job.id, job.attempt)

    def _slots(self, size: int) -> asyncio.Semaphore | None:
        if size <= 0:
            return None
        if self._virtual_slots is None or self._virtual_slots_size != size:
            self._virtual_slots, self._virtual_slots_size = asyncio.Semaphore(size), size
        return self._virtual_slots

    def _forget_task(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._virtual_tasks.get(job_id) is task:
            del self._virtual_tasks[job_id]

    def _make_takeable(self, job_id: str, attempt: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.attempt == attempt and job.status == "IN_QUEUE":
            self.queue.push(job_id, attempt)

    def _claim(self, job_id: str, attempt: int, worker_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.attempt != attempt or job.status != "IN_QUEUE":
            return None  # cancelled, purged, expired or retried since it was pushed
        self.start(job, worker_id)
        return job

    def _finish(self, job: Job, status: str) -> None:
        now = time.monotonic()
        self.workers.release(job.worker_id, job.id)
        job.set_status(status, now)
        cfg = self._settings()
        retention = cfg.runsync_retention_s if job.kind == "runsync" else cfg.run_retention_s
        if now + retention < job.expires_at:
            job.expires_at = now + retention
            self._at(job, job.expires_at, self._expire)

    def _stop_work(self, job: Job) -> None:
        """Tell whoever runs the job to stop: the virtual task, or the real worker via job-stop."""
        task = self._virtual_tasks.pop(job.id, None)
        if task is not None:
            task.cancel()
        elif job.status == "IN_PROGRESS" and job.worker_id is not None:
            self.workers.request_stop(job.worker_id, job.id)

    def _expire(self, job_id: str, attempt: int) -> None:
        del attempt  # expiry is decided by expires_at, whatever the attempt
        job = self.jobs.get(job_id)
        if job is None or time.monotonic() < job.expires_at - _SLACK_S:
            return
        if not job.terminal:
            self._stop_work(job)
        self._delete(job_id)

    def _execution_timeout(self, job_id: str, attempt: int) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.attempt != attempt or job.status != "IN_PROGRESS":
            return
        assert job.started_at is not None
        if time.monotonic() < job.started_at + job.execution_timeout_s - _SLACK_S:
            return
        self._stop_work(job)
        job.error = (
            f"job exceeded its executionTimeout of {round(job.execution_timeout_s * 1000)} ms"
        )
        self._finish(job, "TIMED_OUT")

    def _delete(self, job_id: str) -> None:
        job = self.jobs.pop(job_id, None)
        for handle in self._timers.pop(job_id, []):
            handle.cancel()
        task = self._virtual_tasks.pop(job_id, None)
        if task is not None:
            task.cancel()
        if job is not None:
            self.workers.release(job.worker_id, job_id)
            job.changed.fire()  # waiters notice the job is gone

    def _at(self, job: Job, when: float, callback: Callable[[str, int], None]) -> None:
        loop = asyncio.get_running_loop()
        handle = loop.call_later(max(0.0, when - time.monotonic()), callback, job.id, job.attempt)
        pending = [h for h in self._timers.get(job.id, ()) if h.when() > loop.time()]
        self._timers[job.id] = [*pending, handle]
