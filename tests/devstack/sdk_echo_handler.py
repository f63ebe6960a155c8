"""A tiny real-SDK worker for the emulator tests (run as ``python -u sdk_echo_handler.py``).

Async generator, ``concurrency_modifier`` 4, ``return_aggregate_stream`` True (runpod.md §2.4,
§2.5). Input: ``{"text": str, "pieces": [chunk, ...], "delay_s": float, "sleep_s": float}``:
yields each piece after ``delay_s``, sleeps ``sleep_s``, then yields ``{"echo": text}``.
When a job is stopped (``CancelledError``, §2.9) it appends ``cancelled <job id>`` to the file
named by ``ECHO_EVENTS_FILE`` and re-raises, as a handler should.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import runpod


def record(event: str) -> None:
    path = os.environ.get("ECHO_EVENTS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(event + "\n")


async def handler(job: dict[str, Any]) -> AsyncIterator[Any]:
    job_input = job["input"]
    record(f"started {job['id']}")
    try:
        for piece in job_input.get("pieces", []):
            await asyncio.sleep(float(job_input.get("delay_s", 0)))
            yield piece
        await asyncio.sleep(float(job_input.get("sleep_s", 0)))
        yield {"echo": job_input.get("text", "")}
    except asyncio.CancelledError:
        record(f"cancelled {job['id']}")
        raise


if __name__ == "__main__":
    runpod.serverless.start(
        {"handler": handler, "concurrency_modifier": lambda _: 4, "return_aggregate_stream": True}
    )
