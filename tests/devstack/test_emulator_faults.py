"""HTTP faults on the emulator's client API (runpod.md §1.8, §5): what a gateway must survive."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from devstack.emulator import Behavior
from tests.devstack.conftest import ServeEmulator

HELLO = {"v": 1, "type": "chat", "messages": [{"role": "user", "content": "hello"}]}


def header(**behavior: Any) -> dict[str, str]:
    return {"X-Emulator-Behavior": json.dumps(behavior)}


def always_complete(job_input: Any) -> Behavior:
    return Behavior()


async def test_submit_429_carries_retry_after_and_creates_no_job(
    serve_emulator: ServeEmulator,
) -> None:
    """An emulated 429 on submit has a Retry-After header and leaves nothing queued."""
    served = await serve_emulator(virtual_worker=always_complete)
    response = await served.client.post(
        "/runsync", json={"input": HELLO}, headers=header(submit_status=429, retry_after=2)
    )
    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    assert served.emulator.jobs() == []


async def test_submit_fault_can_hit_only_the_first_submits(serve_emulator: ServeEmulator) -> None:
    """``submit_errors: 1`` answers 503 once, then accepts the identical resubmit."""
    served = await serve_emulator(virtual_worker=always_complete)
    fault = header(submit_status=503, submit_errors=1)
    first = await served.client.post("/run", json={"input": HELLO}, headers=fault)
    second = await served.client.post("/run", json={"input": HELLO}, headers=fault)
    assert (first.status_code, second.status_code) == (503, 200)
    assert len(served.emulator.jobs()) == 1


async def test_dropped_connection_still_queues_the_job(serve_emulator: ServeEmulator) -> None:
    """``drop_connection`` closes the socket with no answer, yet the job exists (no idempotency)."""
    served = await serve_emulator(virtual_worker=always_complete)
    with pytest.raises(httpx.RemoteProtocolError):
        await served.client.post(
            "/run", json={"input": HELLO}, headers=header(drop_connection=True)
        )
    assert len(served.emulator.jobs()) == 1
    # the server is fine afterwards
    assert (await served.client.get("/health")).status_code == 200


async def test_malformed_answer_is_200_but_not_json(serve_emulator: ServeEmulator) -> None:
    """``malformed`` answers 200 with an HTML body; the job was created all the same."""
    served = await serve_emulator(virtual_worker=always_complete)
    response = await served.client.post(
        "/run", json={"input": HELLO}, headers=header(malformed=True)
    )
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(served.emulator.jobs()) == 1


async def test_first_status_reads_can_fail(serve_emulator: ServeEmulator) -> None:
    """``status_errors: 2`` makes the first two /status reads answer 503, then the job."""
    served = await serve_emulator(virtual_worker=always_complete)
    job = (
        await served.client.post("/runsync", json={"input": HELLO}, headers=header(status_errors=2))
    ).json()
    codes = [(await served.client.get(f"/status/{job['id']}")).status_code for _ in range(3)]
    assert codes == [503, 503, 200]


async def test_bad_behavior_header_is_a_400(serve_emulator: ServeEmulator) -> None:
    """An unknown key in X-Emulator-Behavior is a 400 naming it (a test-harness mistake)."""
    served = await serve_emulator(virtual_worker=always_complete)
    response = await served.client.post("/run", json={"input": HELLO}, headers=header(speed=3))
    assert response.status_code == 400 and "speed" in response.json()["error"]
