"""Small async helpers shared by the devstack tests (polling with a bound, timing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx


async def poll_status(
    client: httpx.AsyncClient, job_id: str, until: Callable[[dict[str, Any]], bool], limit_s: float
) -> dict[str, Any]:
    """GET /status/{id} every 20 ms until ``until(job)`` holds; fails after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while True:
        response = await client.get(f"/status/{job_id}")
        job = response.json()
        if response.status_code == 200 and until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} never matched; last: {response.status_code} {job}")
        await asyncio.sleep(0.02)


def terminal(job: dict[str, Any]) -> bool:
    return job.get("status") in {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


async def eventually(check: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.02)
