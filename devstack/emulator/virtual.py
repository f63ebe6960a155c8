"""The in-process virtual worker: plays a job's :class:`Behavior` instead of a real SDK worker.

Timeline of one job: ``queue_s`` IN_QUEUE (a cold start, say), then, once the endpoint is not
paused and a slot is free (``virtual_concurrency``), IN_PROGRESS with ``progress`` as the job's
output if set; the ``stream`` pieces are appended one after another (each after its delay); the
job then sleeps out the rest of ``run_s`` and ends with the scripted status. A ``stall`` job
stops after its stream and never finishes: only ``/cancel``, ``policy.executionTimeout`` or
``policy.ttl`` end it.

Every state change goes through the :class:`~devstack.emulator.endpoint.Endpoint`, which cancels
this task when the job is cancelled, times out or expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.emulator.endpoint import Endpoint
    from devstack.emulator.jobs import Job

VIRTUAL_WORKER_ID = "virtual"


async def run_virtual(endpoint: Endpoint, job: Job, slots: asyncio.Semaphore | None) -> None:
    behavior = job.behavior
    if behavior.queue_s > 0:
        await asyncio.sleep(behavior.queue_s)
    await endpoint.queue.wait_unpaused()
    async with slots if slots is not None else contextlib.nullcontext():
        if job.status != "IN_QUEUE":
            return
        endpoint.start(job, VIRTUAL_WORKER_ID)
        started = time.monotonic()
        if behavior.progress is not None:
            endpoint.progress(job, behavior.progress)
        for delay, chunk in behavior.stream:
            await asyncio.sleep(delay)
            endpoint.append_stream(job, chunk)
        if behavior.stall:
            await asyncio.Event().wait()  # until cancelled
        await asyncio.sleep(max(0.0, behavior.run_s - (time.monotonic() - started)))
        if behavior.status == "COMPLETED":
            endpoint.complete(job, "COMPLETED", output=behavior.final_output(job.input))
        else:
            endpoint.complete(job, behavior.status, error=behavior.final_error())
