"""The emulator's client API (runpod.md §1) over loopback HTTP, jobs run by virtual workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from devstack.emulator import Behavior, default_output
from tests.devstack.conftest import API_KEY, ServeEmulator
from tests.devstack.support import eventually, poll_status, terminal

HELLO = {"v": 1, "type": "chat", "messages": [{"role": "user", "content": "hello"}]}


def always(behavior: Behavior) -> Callable[[Mapping[str, Any]], Behavior]:
    return lambda job_input: behavior


async def test_run_queues_then_completes_with_timings(serve_emulator: ServeEmulator) -> None:
    """/run answers IN_QUEUE at once; /status later shows the output, timings and worker."""
    served = await serve_emulator(virtual_worker=always(Behavior(run_s=0.2)))
    response = await served.client.post("/run", json={"input": HELLO})
    assert response.status_code == 200
    submitted = response.json()
    assert set(submitted) == {"id", "status"} and submitted["status"] == "IN_QUEUE"
    assert not submitted["id"].startswith("sync-")
    job = await poll_status(served.client, submitted["id"], terminal, 5)
    assert job["status"] == "COMPLETED"
    assert (
        job["output"]
        == default_output(HELLO)
        == {
            "text": "You said: hello",
            "model": "emulator",
            "finish_reason": "stop",
        }
    )
    assert 150 <= job["executionTime"] <= 1500
    assert 0 <= job["delayTime"] < 500
    assert job["workerId"] == "virtual"


async def test_runsync_returns_the_finished_job(serve_emulator: ServeEmulator) -> None:
    """A job that ends within ``wait`` comes back whole from /runsync, with a sync- id."""
    served = await serve_emulator(virtual_worker=always(Behavior(run_s=0.05)))
    response = await served.client.post("/runsync", params={"wait": 5000}, json={"input": HELLO})
    job = response.json()
    assert response.status_code == 200
    assert job["id"].startswith("sync-") and job["status"] == "COMPLETED"
    assert job["output"]["text"] == "You said: hello"
    assert {"delayTime", "executionTime", "workerId"} <= set(job)


async def test_runsync_returns_early_then_status_polling_finds_the_result(
    serve_emulator: ServeEmulator,
) -> None:
    """A wait below 1000 ms is clamped up; past it runsync answers only id and IN_PROGRESS."""
    served = await serve_emulator(virtual_worker=always(Behavior(run_s=1.6)))
    started = time.monotonic()
    response = await served.client.post("/runsync", params={"wait": 200}, json={"input": HELLO})
    elapsed = time.monotonic() - started
    early = response.json()
    assert response.status_code == 200
    assert set(early) == {"id", "status"} and early["status"] == "IN_PROGRESS"
    assert 0.9 <= elapsed < 1.5, elapsed
    job = await poll_status(served.client, early["id"], terminal, 5)
    assert job["status"] == "COMPLETED" and job["id"] == early["id"]


async def test_runsync_rejects_a_non_integer_wait(serve_emulator: ServeEmulator) -> None:
    """``wait=soon`` is a 400 and creates no job."""
    served = await serve_emulator(virtual_worker=always(Behavior()))
    response = await served.client.post("/runsync?wait=soon", json={"input": HELLO})
    assert response.status_code == 400 and "wait" in response.json()["error"]
    assert served.emulator.jobs() == []


@pytest.mark.parametrize(
    ("behavior", "status", "error"),
    [
        (Behavior(status="FAILED", error="boom"), "FAILED", "boom"),
        (Behavior(status="FAILED"), "FAILED", "emulated failure"),
        (Behavior(status="TIMED_OUT"), "TIMED_OUT", "emulated timeout"),
    ],
    ids=["failed-scripted-error", "failed-default-error", "timed-out"],
)
async def test_unsuccessful_jobs_report_status_and_error(
    serve_emulator: ServeEmulator, behavior: Behavior, status: str, error: str
) -> None:
    """FAILED and TIMED_OUT jobs come back from runsync as HTTP 200 with an error string."""
    served = await serve_emulator(virtual_worker=always(behavior))
    response = await served.client.post("/runsync", json={"input": HELLO})
    job = response.json()
    assert response.status_code == 200
    assert job["status"] == status and job["error"] == error and "output" not in job


async def test_failed_runsync_status_code_is_configurable(serve_emulator: ServeEmulator) -> None:
    """``runsync_failed_status=400`` plays the public-endpoint variant of a FAILED runsync."""
    served = await serve_emulator(
        virtual_worker=always(Behavior(status="FAILED", error="bad")), runsync_failed_status=400
    )
    response = await served.client.post("/runsync", json={"input": HELLO})
    assert response.status_code == 400 and response.json()["status"] == "FAILED"


async def test_execution_timeout_times_the_job_out(serve_emulator: ServeEmulator) -> None:
    """A job running past policy.executionTimeout becomes TIMED_OUT and its run is stopped."""
    served = await serve_emulator(virtual_worker=always(Behavior(run_s=5)))
    body = {"input": HELLO, "policy": {"executionTimeout": 300}}
    response = await served.client.post("/runsync", params={"wait": 3000}, json=body)
    job = response.json()
    assert job["status"] == "TIMED_OUT" and "executionTimeout" in job["error"]
    assert 250 <= job["executionTime"] <= 1000
    assert served.emulator.endpoint("local")._virtual_tasks == {}


async def test_cancel_stops_queued_and_running_jobs(serve_emulator: ServeEmulator) -> None:
    """/cancel ends a queued job and a stalled running one; a finished job keeps its status."""
    served = await serve_emulator(virtual_worker=lambda i: Behavior(**i["behavior"]))
    client = served.client
    queued = (await client.post("/run", json={"input": {"behavior": {"queue_s": 30}}})).json()
    running = (await client.post("/run", json={"input": {"behavior": {"stall": True}}})).json()
    done = (await client.post("/runsync", json={"input": {"behavior": {}}})).json()
    await poll_status(client, running["id"], lambda j: j["status"] == "IN_PROGRESS", 5)

    for job in (queued, running):
        response = await client.post(f"/cancel/{job['id']}")
        assert response.json() == {"id": job["id"], "status": "CANCELLED"}
        assert (await client.get(f"/status/{job['id']}")).json()["status"] == "CANCELLED"
    response = await client.post(f"/cancel/{done['id']}")
    assert response.json() == {"id": done["id"], "status": "COMPLETED"}
    assert served.emulator.job(running["id"]).cancelled  # type: ignore[union-attr]
    assert served.emulator.endpoint("local")._virtual_tasks == {}


async def test_retry_requeues_a_failed_job_under_the_same_id(
    serve_emulator: ServeEmulator,
) -> None:
    """/retry re-runs a FAILED job without its old error; other states answer 400."""
    calls: list[Mapping[str, Any]] = []

    def flaky(job_input: Mapping[str, Any]) -> Behavior:
        calls.append(job_input)
        return Behavior(status="FAILED", error="first try") if len(calls) == 1 else Behavior()

    served = await serve_emulator(virtual_worker=flaky)
    failed = (await served.client.post("/runsync", json={"input": HELLO})).json()
    assert failed["status"] == "FAILED"

    response = await served.client.post(f"/retry/{failed['id']}")
    assert response.json() == {"id": failed["id"], "status": "IN_QUEUE"}
    job = await poll_status(served.client, failed["id"], terminal, 5)
    assert job["status"] == "COMPLETED" and "error" not in job
    assert (await served.client.get("/health")).json()["jobs"]["retried"] == 1

    again = await served.client.post(f"/retry/{failed['id']}")
    assert again.status_code == 400 and "COMPLETED" in again.json()["error"]


async def test_purge_queue_removes_only_queued_jobs(serve_emulator: ServeEmulator) -> None:
    """/purge-queue cancels every queued job and leaves the running one alone."""
    served = await serve_emulator(virtual_worker=lambda i: Behavior(**i["behavior"]))
    client = served.client
    queued = [
        (await client.post("/run", json={"input": {"behavior": {"queue_s": 30}}})).json()["id"]
        for _ in range(3)
    ]
    running = (await client.post("/run", json={"input": {"behavior": {"stall": True}}})).json()
    await poll_status(client, running["id"], lambda j: j["status"] == "IN_PROGRESS", 5)

    response = await client.post("/purge-queue")
    assert response.json() == {"removed": 3, "status": "completed"}
    for job_id in queued:
        assert (await client.get(f"/status/{job_id}")).json()["status"] == "CANCELLED"
    assert (await client.get(f"/status/{running['id']}")).json()["status"] == "IN_PROGRESS"


async def test_ttl_deletes_the_job_even_mid_run(serve_emulator: ServeEmulator) -> None:
    """Past policy.ttl the job is gone: /status answers 404 and the run is stopped."""
    served = await serve_emulator(virtual_worker=always(Behavior(stall=True)))
    body = {"input": HELLO, "policy": {"ttl": 300}}
    job = (await served.client.post("/run", json=body)).json()
    assert (await served.client.get(f"/status/{job['id']}")).status_code == 200
    await asyncio.sleep(0.5)
    response = await served.client.get(f"/status/{job['id']}")
    assert response.status_code == 404 and "error" in response.json()
    assert served.emulator.endpoint("local")._virtual_tasks == {}


async def test_status_ttl_parameter_expires_a_result_sooner(serve_emulator: ServeEmulator) -> None:
    """``/status/{id}?ttl=ms`` makes the result expire that long from now."""
    served = await serve_emulator(virtual_worker=always(Behavior()))
    job = (await served.client.post("/runsync", json={"input": HELLO})).json()
    response = await served.client.get(f"/status/{job['id']}", params={"ttl": 200})
    assert response.json()["status"] == "COMPLETED"
    await asyncio.sleep(0.4)
    assert (await served.client.get(f"/status/{job['id']}")).status_code == 404


async def test_runsync_results_expire_after_their_retention(serve_emulator: ServeEmulator) -> None:
    """Finished runsync jobs are deleted after ``runsync_retention_s``; /run jobs are kept."""
    served = await serve_emulator(virtual_worker=always(Behavior()), runsync_retention_s=0.2)
    sync_job = (await served.client.post("/runsync", json={"input": HELLO})).json()
    run_job = (await served.client.post("/run", json={"input": HELLO})).json()
    await poll_status(served.client, run_job["id"], terminal, 5)
    await asyncio.sleep(0.4)
    assert (await served.client.get(f"/status/{sync_job['id']}")).status_code == 404
    assert (await served.client.get(f"/status/{run_job['id']}")).status_code == 200


async def test_stream_returns_only_chunks_not_returned_before(
    serve_emulator: ServeEmulator,
) -> None:
    """Successive /stream calls return disjoint chunk lists that add up to the whole stream."""
    pieces = [(0.15, {"text": "a"}), (0.15, {"text": "b"}), (0.15, {"text": "c"})]
    served = await serve_emulator(virtual_worker=always(Behavior(stream=pieces, run_s=0.6)))
    job = (await served.client.post("/run", json={"input": HELLO})).json()
    seen: list[Any] = []
    non_empty_calls = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        body = (await served.client.get(f"/stream/{job['id']}")).json()
        assert body["id"] == job["id"]
        chunks = [item["output"] for item in body["stream"]]
        non_empty_calls += bool(chunks)
        seen.extend(chunks)
        if terminal(body):
            break
        await asyncio.sleep(0.05)
    assert body["status"] == "COMPLETED"
    assert seen == [{"text": "a"}, {"text": "b"}, {"text": "c"}]
    assert non_empty_calls >= 2
    final = (await served.client.get(f"/status/{job['id']}")).json()
    assert final["output"] == seen  # aggregated like return_aggregate_stream=True


async def test_stream_hold_answers_as_soon_as_a_chunk_arrives(
    serve_emulator: ServeEmulator,
) -> None:
    """With stream_hold_ms, an empty /stream waits for the next chunk instead of answering []."""
    served = await serve_emulator(
        virtual_worker=always(Behavior(stream=[(0.3, "x")], run_s=1)), stream_hold_ms=3000
    )
    job = (await served.client.post("/run", json={"input": HELLO})).json()
    started = time.monotonic()
    body = (await served.client.get(f"/stream/{job['id']}")).json()
    assert body["stream"] == [{"output": "x"}]
    assert 0.2 <= time.monotonic() - started < 1.0


async def test_progress_output_shows_while_in_progress(serve_emulator: ServeEmulator) -> None:
    """A job may carry an output while still IN_PROGRESS; only status says it is done."""
    served = await serve_emulator(virtual_worker=always(Behavior(progress={"step": 1}, run_s=0.6)))
    job = (await served.client.post("/run", json={"input": HELLO})).json()
    mid = await poll_status(served.client, job["id"], lambda j: j["status"] == "IN_PROGRESS", 5)
    assert mid["output"] == {"step": 1}
    final = await poll_status(served.client, job["id"], terminal, 5)
    assert final["output"]["text"] == "You said: hello"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/local/status/nope"),
        ("GET", "/v2/local/stream/nope"),
        ("POST", "/v2/local/cancel/nope"),
        ("POST", "/v2/local/retry/nope"),
        ("GET", "/v2/elsewhere/health"),
        ("POST", "/v2/elsewhere/run"),
        ("GET", "/v2/local/no-such-op"),
    ],
    ids=["status", "stream", "cancel", "retry", "endpoint-health", "endpoint-run", "route"],
)
async def test_unknown_jobs_endpoints_and_routes_are_json_404(
    serve_emulator: ServeEmulator, method: str, path: str
) -> None:
    """Unknown job ids, endpoint ids and routes answer 404 with a JSON error body."""
    served = await serve_emulator(virtual_worker=always(Behavior()))
    response = await served.client.request(
        method, served.root + path, json={"input": {}} if method == "POST" else None
    )
    assert response.status_code == 404 and "error" in response.json()


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer wrong", 401), (f"Bearer {API_KEY}", 200), (API_KEY, 200)],
    ids=["missing", "wrong", "bearer", "bare-key"],
)
async def test_auth_takes_bearer_or_bare_key(
    serve_emulator: ServeEmulator, authorization: str | None, status: int
) -> None:
    """The key is accepted with or without ``Bearer``; a wrong or missing key is a JSON 401."""
    served = await serve_emulator(virtual_worker=always(Behavior()))
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=served.url, headers=headers) as client:
        response = await client.post("/run", json={"input": HELLO})
    assert response.status_code == status
    assert ("error" in response.json()) == (status == 401)


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[1, 2]",
        b'{"prompt": "no input key"}',
        b'{"input": "a string"}',
        b'{"input": {}, "policy": {"ttl": -5}}',
    ],
    ids=["not-json", "array", "input-missing", "input-not-object", "bad-policy"],
)
async def test_bad_submit_bodies_are_json_400(
    serve_emulator: ServeEmulator, content: bytes
) -> None:
    """A body that is not a JSON object with an ``input`` object is a 400 and creates no job."""
    served = await serve_emulator(virtual_worker=always(Behavior()))
    response = await served.client.post("/run", content=content)
    assert response.status_code == 400 and response.json()["error"]
    assert served.emulator.jobs() == []


async def test_health_counts_jobs_by_state(serve_emulator: ServeEmulator) -> None:
    """/health counts completed, failed, running, queued and retried jobs, and the worker."""
    served = await serve_emulator(virtual_worker=lambda i: Behavior(**i["behavior"]))
    client = served.client
    for behavior in ({}, {"status": "FAILED"}, {"status": "TIMED_OUT"}):
        await client.post("/runsync", json={"input": {"behavior": behavior}})
    running = (await client.post("/run", json={"input": {"behavior": {"stall": True}}})).json()
    await client.post("/run", json={"input": {"behavior": {"queue_s": 30}}})
    await poll_status(client, running["id"], lambda j: j["status"] == "IN_PROGRESS", 5)

    health = (await client.get("/health")).json()
    assert health["jobs"] == {
        "completed": 1,
        "failed": 2,
        "inProgress": 1,
        "inQueue": 1,
        "retried": 0,
    }
    assert health["workers"]["running"] == 1 and health["workers"]["ready"] == 1


async def test_virtual_concurrency_queues_jobs_beyond_the_limit(
    serve_emulator: ServeEmulator,
) -> None:
    """With one virtual slot the second job waits for the first: its delayTime shows it."""
    served = await serve_emulator(virtual_worker=always(Behavior(run_s=0.3)), virtual_concurrency=1)
    first, second = await asyncio.gather(
        *(served.client.post("/runsync", json={"input": HELLO}) for _ in range(2))
    )
    delays = sorted(r.json()["delayTime"] for r in (first, second))
    assert delays[0] < 150 and delays[1] >= 250


async def test_cold_start_shows_as_queue_delay(serve_emulator: ServeEmulator) -> None:
    """``queue_s`` keeps the job IN_QUEUE first and lands in delayTime."""
    served = await serve_emulator(virtual_worker=always(Behavior(queue_s=0.4)))
    job = (await served.client.post("/run", json={"input": HELLO})).json()
    assert (await served.client.get(f"/status/{job['id']}")).json()["status"] == "IN_QUEUE"
    final = await poll_status(served.client, job["id"], terminal, 5)
    assert 350 <= final["delayTime"] < 1000
    await eventually(lambda: not served.emulator.endpoint("local")._virtual_tasks, 2, "task end")
