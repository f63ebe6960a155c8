"""The worker job API (runpod.md §3.6) driven the way the SDK drives it, by a hand-rolled worker.

Requests copy ``runpod`` 1.12.0 on the wire: raw key in Authorization, ``?gpu=TEST`` kept from the
URL template, ``job_in_progress``/``batch_size``/``isStream`` appended, results posted as JSON text
labelled ``application/x-www-form-urlencoded``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.devstack.conftest import Served, ServeEmulator
from tests.devstack.support import poll_status, terminal

FORM = {"Content-Type": "application/x-www-form-urlencoded", "charset": "utf-8"}


class SdkLikeWorker:
    """Speaks the job API exactly as rp_job.py / rp_http.py / rp_ping.py do."""

    def __init__(self, served: Served, worker_id: str = "wkr1") -> None:
        self.base = served.url
        self.id = worker_id
        self.http = httpx.AsyncClient(headers={"Authorization": "fake"}, timeout=30)

    async def take(self, batch: int = 1, busy: bool = False) -> httpx.Response:
        op = "job-take-batch" if batch > 1 else "job-take"
        url = f"{self.base}/{op}/{self.id}?gpu=TEST"
        url += f"&batch_size={batch}" if batch > 1 else ""
        return await self.http.get(url + f"&job_in_progress={int(busy)}")

    async def done(self, job_id: str, body: dict[str, Any], stream: bool = False) -> httpx.Response:
        url = f"{self.base}/job-done/{self.id}/{job_id}?gpu=TEST&isStream={str(stream).lower()}"
        return await self.http.post(url, content=json.dumps(body), headers=FORM)

    async def stream(self, job_id: str, chunk: Any) -> httpx.Response:
        url = f"{self.base}/job-stream/{self.id}/{job_id}?gpu=TEST&isStream=false"
        return await self.http.post(url, content=json.dumps({"output": chunk}), headers=FORM)

    async def stop_poll(self) -> httpx.Response:
        return await self.http.get(f"{self.base}/job-stop/{self.id}?gpu=TEST")

    async def ping(self, **params: str) -> httpx.Response:
        query = {"job_id": "", "runpod_version": "1.12.0", **params}
        return await self.http.get(f"{self.base}/ping/{self.id}?gpu=TEST", params=query)

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def real(serve_emulator: ServeEmulator) -> Served:
    return await serve_emulator(take_hold_s=1.0, stop_hold_s=1.0)


@pytest.fixture
async def worker(real: Served) -> AsyncIterator[SdkLikeWorker]:
    worker = SdkLikeWorker(real)
    yield worker
    await worker.aclose()


async def test_a_polling_worker_gets_a_new_job_immediately(
    real: Served, worker: SdkLikeWorker
) -> None:
    """A job submitted while a worker long-polls job-take is handed over within milliseconds."""
    take = asyncio.create_task(worker.take())
    await asyncio.sleep(0.2)  # the poll is open and waiting
    submitted_at = time.monotonic()
    job = (await real.client.post("/run", json={"input": {"n": 1}})).json()
    response = await take
    latency = time.monotonic() - submitted_at
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"id": job["id"], "input": {"n": 1}}
    assert latency < 0.1, latency
    status = (await real.client.get(f"/status/{job['id']}")).json()
    assert status["status"] == "IN_PROGRESS" and status["workerId"] == "wkr1"
    assert status["delayTime"] < 100


async def test_an_empty_queue_answers_204_after_the_hold(
    real: Served, worker: SdkLikeWorker
) -> None:
    """With nothing queued job-take holds for take_hold_s, then answers 204 with no body."""
    started = time.monotonic()
    response = await worker.take()
    assert response.status_code == 204 and response.content == b""
    assert 0.9 <= time.monotonic() - started < 1.6


async def test_batch_take_returns_a_list_of_up_to_n_jobs(
    real: Served, worker: SdkLikeWorker
) -> None:
    """job-take-batch answers a JSON list of queued jobs, oldest first, at most batch_size."""
    ids = [
        (await real.client.post("/run", json={"input": {"i": i}})).json()["id"] for i in range(3)
    ]
    first = (await worker.take(batch=2)).json()
    second = (await worker.take(batch=2)).json()
    assert [job["id"] for job in first] == ids[:2]
    assert [job["id"] for job in second] == ids[2:]


async def test_job_done_completes_a_held_runsync(real: Served, worker: SdkLikeWorker) -> None:
    """A form-labelled JSON result on job-done releases the runsync holding for it."""
    runsync = asyncio.create_task(real.client.post("/runsync", json={"input": {"q": "hi"}}))
    job = (await worker.take()).json()
    response = await worker.done(job["id"], {"output": {"text": "hello"}})
    assert response.status_code == 200
    result = (await runsync).json()
    assert result["status"] == "COMPLETED" and result["output"] == {"text": "hello"}
    assert result["id"] == job["id"] and result["workerId"] == "wkr1"


async def test_job_done_with_an_error_fails_the_job(real: Served, worker: SdkLikeWorker) -> None:
    """``{"error": ...}`` on job-done makes the job FAILED with that error string."""
    job = (await real.client.post("/run", json={"input": {}})).json()
    await worker.take()
    await worker.done(job["id"], {"error": "bad input: missing prompt"})
    status = (await real.client.get(f"/status/{job['id']}")).json()
    assert status["status"] == "FAILED" and status["error"] == "bad input: missing prompt"


async def test_progress_updates_show_until_the_result(real: Served, worker: SdkLikeWorker) -> None:
    """``{"status": "IN_PROGRESS", "output": ...}`` is progress; a late one cannot undo the end."""
    job = (await real.client.post("/run", json={"input": {}})).json()
    await worker.take()
    await worker.done(job["id"], {"status": "IN_PROGRESS", "output": {"step": 0}})
    mid = (await real.client.get(f"/status/{job['id']}")).json()
    assert mid["status"] == "IN_PROGRESS" and mid["output"] == {"step": 0}
    await worker.done(job["id"], {"output": {"done": True}})
    await worker.done(job["id"], {"status": "IN_PROGRESS", "output": {"step": 1}})  # racing
    final = (await real.client.get(f"/status/{job['id']}")).json()
    assert final["status"] == "COMPLETED" and final["output"] == {"done": True}
    assert real.emulator.job(job["id"]).late_results == 1  # type: ignore[union-attr]


async def test_streamed_chunks_reach_the_stream_endpoint(
    real: Served, worker: SdkLikeWorker
) -> None:
    """Each job-stream POST is one /stream chunk; the aggregate arrives with isStream=true."""
    job = (await real.client.post("/run", json={"input": {}})).json()
    await worker.take()
    await worker.stream(job["id"], "Hel")
    first = (await real.client.get(f"/stream/{job['id']}")).json()
    await worker.stream(job["id"], "lo")
    await worker.done(job["id"], {"output": ["Hel", "lo"]}, stream=True)
    second = (await real.client.get(f"/stream/{job['id']}")).json()
    assert first["status"] == "IN_PROGRESS" and first["stream"] == [{"output": "Hel"}]
    assert second["status"] == "COMPLETED" and second["stream"] == [{"output": "lo"}]


async def test_cancel_reaches_the_worker_through_job_stop(
    real: Served, worker: SdkLikeWorker
) -> None:
    """A cancelled running job is announced on the worker's job-stop long-poll."""
    job = (await real.client.post("/run", json={"input": {}})).json()
    await worker.take()
    poll = asyncio.create_task(worker.stop_poll())
    await asyncio.sleep(0.1)
    await real.client.post(f"/cancel/{job['id']}")
    response = await poll
    assert response.status_code == 200 and response.json() == {"jobsToStop": [job["id"]]}
    assert (await worker.stop_poll()).status_code == 204  # delivered once


async def test_execution_timeout_stops_the_worker_too(real: Served, worker: SdkLikeWorker) -> None:
    """Past policy.executionTimeout the job is TIMED_OUT and its worker is told to stop it."""
    body = {"input": {}, "policy": {"executionTimeout": 200}}
    job = (await real.client.post("/run", json=body)).json()
    await worker.take()
    stops = (await worker.stop_poll()).json()
    assert stops == {"jobsToStop": [job["id"]]}
    assert (await real.client.get(f"/status/{job['id']}")).json()["status"] == "TIMED_OUT"
    assert (await worker.done(job["id"], {"output": "too late"})).status_code == 200


async def test_a_result_for_an_expired_job_is_404(real: Served, worker: SdkLikeWorker) -> None:
    """Once ttl deleted the job, job-done answers 404 (runpod-python#56)."""
    job = (await real.client.post("/run", json={"input": {}, "policy": {"ttl": 200}})).json()
    await worker.take()
    await asyncio.sleep(0.35)
    assert (await worker.done(job["id"], {"output": 1})).status_code == 404


async def test_queue_delay_applies_to_real_workers(real: Served, worker: SdkLikeWorker) -> None:
    """A scripted cold start keeps the job from being taken until it has passed."""
    behavior = {"X-Emulator-Behavior": json.dumps({"queue_s": 0.5})}
    submitted_at = time.monotonic()
    job = (await real.client.post("/run", json={"input": {}}, headers=behavior)).json()
    taken = (await worker.take()).json()
    assert taken["id"] == job["id"]
    assert 0.45 <= time.monotonic() - submitted_at < 1.0


async def test_health_reports_workers_by_state(serve_emulator: ServeEmulator) -> None:
    """Ping-only workers initialize; pollers are ready/idle; holders run; unhealthy is its own."""
    real = await serve_emulator(take_hold_s=0.4)
    names = ("w-ping", "w-poll", "w-hold", "w-sick")
    pinger, poller, holder, sick = (SdkLikeWorker(real, name) for name in names)
    try:
        await pinger.ping()
        await sick.take()  # polled once (204), then reports a failed fitness check
        await sick.ping(status="unhealthy", check="gpu", reason="no cuda")
        await real.client.post("/run", json={"input": {}})
        assert (await holder.take()).status_code == 200
        polling = asyncio.create_task(poller.take())
        await asyncio.sleep(0.2)
        workers = (await real.client.get("/health")).json()["workers"]
        assert workers == {
            "idle": 1,
            "running": 1,
            "initializing": 1,
            "ready": 1,
            "throttled": 0,
            "unhealthy": 1,
        }
        assert (await polling).status_code == 204
    finally:
        for w in (pinger, poller, holder, sick):
            await w.aclose()


async def test_workers_fall_out_of_health_when_silent(serve_emulator: ServeEmulator) -> None:
    """A worker not heard from for worker_stale_s no longer counts."""
    served = await serve_emulator(take_hold_s=0.1, worker_stale_s=0.3)
    worker = SdkLikeWorker(served)
    try:
        await worker.take()
        assert (await served.client.get("/health")).json()["workers"]["idle"] == 1
        await asyncio.sleep(0.4)
        assert (await served.client.get("/health")).json()["workers"]["idle"] == 0
    finally:
        await worker.aclose()


async def test_worker_key_is_enforced_when_configured(serve_emulator: ServeEmulator) -> None:
    """With worker_api_key set, a worker sending another raw key gets 401."""
    served = await serve_emulator(worker_api_key="secret", take_hold_s=0)
    worker = SdkLikeWorker(served)
    try:
        assert (await worker.take()).status_code == 401
        worker.http.headers["Authorization"] = "secret"
        assert (await worker.take()).status_code == 204
    finally:
        await worker.aclose()


async def test_a_poller_that_hangs_up_gets_no_job(real: Served, worker: SdkLikeWorker) -> None:
    """A job is never handed to a job-take poll whose client already went away."""
    with pytest.raises(httpx.ReadTimeout):
        await worker.http.get(f"{worker.base}/job-take/gone?gpu=TEST", timeout=0.2)
    await asyncio.sleep(0.1)
    job = (await real.client.post("/run", json={"input": {}})).json()
    taken = (await worker.take()).json()
    assert taken["id"] == job["id"]
    job = await poll_status(real.client, job["id"], lambda j: j["status"] == "IN_PROGRESS", 2)
    assert job["workerId"] == "wkr1" and not terminal(job)
