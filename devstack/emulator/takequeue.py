"""Who gets which job when: the FIFO of takeable jobs and the job-take long-polls waiting for them.

A job is pushed once it may be taken (after its scripted queue delay). Each push wakes one
waiting poll; the poll then claims up to its ``batch_size`` jobs when it runs. Claiming on
wake-up rather than at push time lets jobs queued in the same loop iteration leave in one batch
at no cost in latency. That matters with the real SDK: ``JobScaler.current_occupancy`` counts a
taken batch twice (local queue + in progress) until its run loop starts it, then sleeps 1 s, so
a burst taken in several small batches can leave a free slot idle for a second (rp_scale.py).

While the endpoint is paused (a run-time switch) nothing is handed out; un-pausing releases the
backlog to the open polls at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from devstack.emulator.jobs import Job, Pulse

Claim = Callable[[str, int], Job | None]  # (job id, attempt) -> the started job, or None if stale


class TakeQueue:
    def __init__(self, paused: Callable[[], bool]) -> None:
        self._paused = paused
        self._takeable: deque[tuple[str, int]] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._resumed = Pulse()
        self.closed = False

    def push(self, job_id: str, attempt: int) -> None:
        self._takeable.append((job_id, attempt))
        self._wake()

    async def take(
        self, batch_size: int, hold_s: float, gone: asyncio.Future[None], claim: Claim
    ) -> list[Job]:
        """Up to ``batch_size`` claimed jobs within ``hold_s`` (none if the client left)."""
        deadline = time.monotonic() + hold_s
        loop = asyncio.get_running_loop()
        while not gone.done() and not self.closed:
            jobs = self._claim(batch_size, claim)
            remaining = deadline - time.monotonic()
            if jobs or remaining <= 0:
                return jobs
            wake: asyncio.Future[None] = loop.create_future()
            self._waiters.append(wake)
            try:
                await asyncio.wait({wake, gone}, timeout=remaining, return_when="FIRST_COMPLETED")
            finally:
                if not wake.done():
                    wake.cancel()
                    self._waiters.remove(wake)
        return []

    def resume_if_unpaused(self) -> None:
        if not self._paused():
            self._resumed.fire()
            self._wake()

    async def wait_unpaused(self) -> None:
        while self._paused():
            await self._resumed.future()

    def clear(self) -> None:
        self._takeable.clear()

    def close(self) -> None:
        """Answer every open and future poll at once with no job (shutdown)."""
        self.closed = True
        self.clear()
        for wake in self._waiters:
            if not wake.done():
                wake.cancel()
        self._waiters.clear()

    def _wake(self) -> None:
        if self._paused():
            return
        to_wake = len(self._takeable)
        while to_wake > 0 and self._waiters:
            wake = self._waiters.popleft()
            if not wake.done():
                wake.set_result(None)
                to_wake -= 1

    def _claim(self, batch_size: int, claim: Claim) -> list[Job]:
        if self._paused():
            return []
        jobs: list[Job] = []
        while self._takeable and len(jobs) < batch_size:
            job = claim(*self._takeable.popleft())
            if job is not None:
                jobs.append(job)
        return jobs
