"""The emulator's inspection and control routes (``/_emulator/*``) and its RunPod-style limits."""

from __future__ import annotations

import asyncio
from typing import Any

from devstack.emulator import Behavior, OpLimit
from tests.devstack.conftest import ServeEmulator

HELLO = {"v": 1, "type": "chat", "messages": [{"role": "user", "content": "hello"}]}


async def test_jobs_listing_shows_input_status_worker_and_cancellation(
    serve_emulator: ServeEmulator,
) -> None:
    """/_emulator/jobs lists every job with its input, status, timestamps and cancel flag."""
    served = await serve_emulator(virtual_worker=lambda i: Behavior(**i.get("b", {})))
    done = (await served.client.post("/runsync", json={"input": HELLO})).json()
    stalled = (await served.client.post("/run", json={"input": {"b": {"queue_s": 30}}})).json()
    await served.client.post(f"/cancel/{stalled['id']}")

    jobs = (await served.client.get(f"{served.root}/_emulator/jobs")).json()["jobs"]
    by_id = {job["id"]: job for job in jobs}
    assert by_id[done["id"]]["input"] == HELLO
    assert by_id[done["id"]]["status"] == "COMPLETED"
    assert by_id[done["id"]]["worker_id"] == "virtual"
    assert by_id[done["id"]]["kind"] == "runsync"
    assert by_id[done["id"]]["submitted_at"] <= by_id[done["id"]]["finished_at"]
    assert by_id[stalled["id"]]["cancelled"] is True
    assert by_id[stalled["id"]]["started_at"] is None
    assert [s for _, s in by_id[stalled["id"]]["history"]] == ["IN_QUEUE", "CANCELLED"]

    filtered = (await served.client.get(f"{served.root}/_emulator/jobs?status=CANCELLED")).json()
    assert [job["id"] for job in filtered["jobs"]] == [stalled["id"]]


async def test_stats_count_requests_and_the_peak_of_concurrent_ones(
    serve_emulator: ServeEmulator,
) -> None:
    """/_emulator/stats reports how many runsyncs were open at RunPod at the same time."""
    served = await serve_emulator(virtual_worker=lambda i: Behavior(run_s=0.3))
    await asyncio.gather(*(served.client.post("/runsync", json={"input": HELLO}) for _ in range(5)))
    await served.client.get("/status/nope")
    stats = (await served.client.get(f"{served.root}/_emulator/stats")).json()
    assert stats["requests"]["runsync"] == 5
    assert stats["peak_in_flight"]["runsync"] == 5
    assert stats["in_flight"] == {}
    assert stats["responses"]["status"] == {"404": 1}
    assert stats["jobs"] == {"COMPLETED": 5}


async def test_fault_mix_can_be_switched_at_run_time(serve_emulator: ServeEmulator) -> None:
    """POST /_emulator/config swaps the fault mix in and out while the emulator runs."""
    served = await serve_emulator(virtual_worker=lambda i: Behavior())
    config_url = f"{served.root}/_emulator/config"
    response = await served.client.post(config_url, json={"faults": {"failure_rate": 1.0}})
    assert response.status_code == 200 and response.json()["faults"]["failure_rate"] == 1.0
    failed = (await served.client.post("/runsync", json={"input": HELLO})).json()
    await served.client.post(config_url, json={"faults": None})
    completed = (await served.client.post("/runsync", json={"input": HELLO})).json()
    assert (failed["status"], completed["status"]) == ("FAILED", "COMPLETED")

    bad = await served.client.post(config_url, json={"faults": {"failure_rate": 3}})
    assert bad.status_code == 400
    assert (await served.client.get(config_url)).json()["faults"] is None


async def test_reset_forgets_jobs_and_counts(serve_emulator: ServeEmulator) -> None:
    """POST /_emulator/reset empties the job table and the request counters."""
    served = await serve_emulator(virtual_worker=lambda i: Behavior())
    job = (await served.client.post("/runsync", json={"input": HELLO})).json()
    await served.client.post(f"{served.root}/_emulator/reset")
    assert (await served.client.get(f"/status/{job['id']}")).status_code == 404
    stats = (await served.client.get(f"{served.root}/_emulator/stats")).json()
    assert stats["requests"] == {"status": 1}


async def test_paused_endpoint_builds_a_backlog_released_at_once(
    serve_emulator: ServeEmulator,
) -> None:
    """While paused nothing is picked up; un-pausing starts the whole backlog together."""
    served = await serve_emulator(virtual_worker=lambda i: Behavior(run_s=0.1), paused=True)
    ids = [(await served.client.post("/run", json={"input": HELLO})).json()["id"] for _ in range(3)]
    await asyncio.sleep(0.2)
    assert {served.emulator.job(i).status for i in ids} == {"IN_QUEUE"}  # type: ignore[union-attr]
    await served.client.post(f"{served.root}/_emulator/config", json={"paused": False})
    await asyncio.sleep(0.3)
    assert {served.emulator.job(i).status for i in ids} == {"COMPLETED"}  # type: ignore[union-attr]


async def test_concurrency_limit_answers_429(serve_emulator: ServeEmulator) -> None:
    """Past an operation's concurrent limit RunPod answers 429; the others still go through."""
    served = await serve_emulator(
        virtual_worker=lambda i: Behavior(run_s=0.4),
        limits={"runsync": OpLimit(concurrent=2, retry_after_s=1)},
    )
    responses = await asyncio.gather(
        *(served.client.post("/runsync", json={"input": HELLO}) for _ in range(3))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 429]
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.headers["retry-after"] == "1" and "error" in limited.json()


async def test_rate_limit_answers_429_within_the_window(serve_emulator: ServeEmulator) -> None:
    """``rate`` requests per ``per_s`` seconds pass; the next one in the window is a 429."""
    served = await serve_emulator(
        virtual_worker=lambda i: Behavior(), limits={"health": OpLimit(rate=3, per_s=10)}
    )
    codes = [(await served.client.get("/health")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


async def test_runpod_limit_table_is_available_from_json(serve_emulator: ServeEmulator) -> None:
    """``"limits": "runpod"`` loads the documented per-operation limits (runpod.md §1.8)."""
    served = await serve_emulator()
    response = await served.client.post(
        f"{served.root}/_emulator/config", json={"limits": "runpod"}
    )
    limits: dict[str, Any] = response.json()["limits"]
    assert limits["run"] == {"rate": 1000, "per_s": 10.0, "concurrent": 200, "retry_after_s": None}
    assert limits["cancel"]["concurrent"] == 20
