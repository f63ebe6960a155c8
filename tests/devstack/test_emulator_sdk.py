"""The real ``runpod`` SDK worker loop (production mode) against the emulator (runpod.md §3.6).

One SDK worker subprocess (tests/devstack/sdk_echo_handler.py: async generator, concurrency 4,
aggregate stream) serves every test in this module; it runs in its own process group, killed
as a whole at the end because the SDK leaves a heartbeat child behind.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from devstack.emulator import Emulator, EmulatorConfig, create_emulator
from devstack.processes import start_group, stop_group, worker_env
from devstack.serve import serve
from tests.devstack.conftest import API_KEY
from tests.devstack.support import eventually, poll_status, terminal

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[2]
HANDLER = Path(__file__).with_name("sdk_echo_handler.py")
WORKER_START_LIMIT_S = 30  # imports + fitness checks take ~3 s on a quiet machine


class SdkStack:
    def __init__(self, root: str, emulator: Emulator, client: httpx.AsyncClient, events: Path):
        self.root = root
        self.emulator = emulator
        self.client = client
        self.events = events

    async def wait_for_full_take(self) -> None:
        """Until the worker long-polls for 4 jobs again (a poll opened while a job ran asks
        for fewer, and the SDK would take a burst in two goes)."""

        def polling_for_four() -> bool:
            worker = self.emulator.endpoint("local").workers.get("wkr1")
            return bool(
                worker
                and worker.open_takes
                and not worker.jobs
                and worker.last_take.get("batch_size") == "4"
            )

        await eventually(polling_for_four, 10, "a batch_size=4 job-take")

    def events_seen(self) -> list[str]:
        return self.events.read_text().splitlines() if self.events.exists() else []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sdk(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SdkStack]:
    tmp = tmp_path_factory.mktemp("sdk")
    events, log = tmp / "events.txt", tmp / "worker.log"
    config = EmulatorConfig(api_key=API_KEY, take_hold_s=1.0, stop_hold_s=1.0)
    app = create_emulator(config)
    async with serve(app) as root:
        env = {
            **os.environ,
            **worker_env(root, "local", "wkr1"),
            "ECHO_EVENTS_FILE": str(events),
        }
        with log.open("wb") as out:
            proc = start_group(
                [sys.executable, "-u", str(HANDLER)], env, cwd=REPO, stdout=out, stderr=out
            )
        try:
            async with httpx.AsyncClient(
                base_url=f"{root}/v2/local",
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=30,
            ) as client:
                await _wait_for_worker(client, proc, log)
                yield SdkStack(root, app.state.emulator, client, events)
        finally:
            app.state.emulator.close()  # answer the worker's long-polls so it can exit at once
            await asyncio.to_thread(stop_group, proc, 3.0)


async def _wait_for_worker(client: httpx.AsyncClient, proc: Any, log: Path) -> None:
    deadline = time.monotonic() + WORKER_START_LIMIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"SDK worker exited ({proc.returncode}):\n{_text(log)}")
        workers = (await client.get("/health")).json()["workers"]
        if workers["ready"] or workers["idle"]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"SDK worker never polled for jobs:\n{_text(log)}")


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


async def test_runsync_returns_the_sdk_workers_aggregated_output(sdk: SdkStack) -> None:
    """A runsync is picked up at once by the idle SDK worker and returns its aggregate stream."""
    body = {"input": {"text": "hi", "pieces": ["a", "b"]}}
    response = await sdk.client.post("/runsync", params={"wait": 10_000}, json=body)
    job = response.json()
    assert response.status_code == 200, job
    assert job["status"] == "COMPLETED"
    assert job["output"] == ["a", "b", {"echo": "hi"}]
    assert job["workerId"] == "wkr1"
    assert job["delayTime"] < 500  # the worker was long-polling: no 1 s poll gap


async def test_stream_delivers_each_yield_as_it_happens(sdk: SdkStack) -> None:
    """/stream returns each yielded piece once, across several polls, then COMPLETED."""
    body = {"input": {"text": "s", "pieces": ["x", "y", "z"], "delay_s": 0.3}}
    job = (await sdk.client.post("/run", json=body)).json()
    seen: list[Any] = []
    batches = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = (await sdk.client.get(f"/stream/{job['id']}")).json()
        chunks = [item["output"] for item in state["stream"]]
        batches += bool(chunks)
        seen.extend(chunks)
        if terminal(state):
            break
        await asyncio.sleep(0.1)
    assert state["status"] == "COMPLETED"
    assert seen == ["x", "y", "z", {"echo": "s"}]
    assert batches >= 3


async def test_cancel_reaches_the_running_handler(sdk: SdkStack) -> None:
    """/cancel of a running job cancels just that handler task inside the SDK worker."""
    job = (await sdk.client.post("/run", json={"input": {"sleep_s": 30}})).json()
    await poll_status(sdk.client, job["id"], lambda j: j["status"] == "IN_PROGRESS", 10)
    await eventually(lambda: f"started {job['id']}" in sdk.events_seen(), 5, "handler start")
    response = await sdk.client.post(f"/cancel/{job['id']}")
    assert response.json()["status"] == "CANCELLED"
    await eventually(lambda: f"cancelled {job['id']}" in sdk.events_seen(), 6, "CancelledError")
    assert (await sdk.client.get(f"/status/{job['id']}")).json()["status"] == "CANCELLED"


async def test_four_queued_jobs_run_side_by_side_in_about_a_second(sdk: SdkStack) -> None:
    """With concurrency_modifier 4, four queued 1 s jobs go out in one batch and end in ~1 s."""
    await sdk.wait_for_full_take()
    await sdk.client.post(f"{sdk.root}/_emulator/config", json={"paused": True})
    runsyncs = [
        asyncio.create_task(
            sdk.client.post("/runsync", json={"input": {"text": str(i), "sleep_s": 1.0}})
        )
        for i in range(4)
    ]
    await eventually(
        lambda: sum(j.status == "IN_QUEUE" for j in sdk.emulator.jobs()) == 4, 5, "4 queued jobs"
    )
    released = time.monotonic()
    await sdk.client.post(f"{sdk.root}/_emulator/config", json={"paused": False})
    jobs = [(await r).json() for r in runsyncs]
    wall = time.monotonic() - released
    assert [j["status"] for j in jobs] == ["COMPLETED"] * 4, jobs
    assert sorted(j["output"][-1]["echo"] for j in jobs) == ["0", "1", "2", "3"]
    assert all(950 <= j["executionTime"] < 1600 for j in jobs), jobs
    assert wall < 1.8, wall


async def test_a_burst_still_overlaps_despite_the_sdks_take_gap(sdk: SdkStack) -> None:
    """Four jobs sent at once overlap; the SDK may leave one ~1 s in queue (it counts a
    taken batch twice until its run loop starts it, then sleeps 1 s: rp_scale.py)."""
    await sdk.wait_for_full_take()
    started = time.monotonic()
    responses = await asyncio.gather(
        *(
            sdk.client.post("/runsync", json={"input": {"text": str(i), "sleep_s": 1.0}})
            for i in range(4)
        )
    )
    wall = time.monotonic() - started
    jobs = [r.json() for r in responses]
    assert [j["status"] for j in jobs] == ["COMPLETED"] * 4, jobs
    assert sum(j["delayTime"] < 500 for j in jobs) >= 2, jobs
    assert wall < 2.6, wall
