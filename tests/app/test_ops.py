"""Liveness and readiness: /healthz, /health and /readyz (issue #6 item 5)."""

from __future__ import annotations

import asyncio
import time

import httpx
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from devstack.serve import serve
from tests.app.conftest import stack
from tests.app.gateway_process import free_port


async def wait_ready(client: httpx.AsyncClient, within_s: float = 3.0) -> httpx.Response:
    end = time.monotonic() + within_s
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > end:
            return response
        await asyncio.sleep(0.02)


async def test_healthz_and_its_alias_answer_without_touching_runpod() -> None:
    """/healthz and /health say ok and make no RunPod request."""
    async with stack(HEALTH_POLL_S="60") as s:
        await wait_ready(s.client)  # the monitor's first /health read is behind us
        before = s.emulator.traffic.snapshot()["requests"]
        for path in ("/healthz", "/health"):
            r = await s.client.get(path)
            assert (r.status_code, r.json()) == (200, {"status": "ok"})
        assert s.emulator.traffic.snapshot()["requests"] == before


async def test_readyz_is_ready_once_runpod_health_answered() -> None:
    """/readyz is 200 with the reading's age once RunPod /health has answered."""
    async with stack(HEALTH_POLL_S="0.1") as s:
        r = await wait_ready(s.client)
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ready" and body["breaker"] == "closed"
        assert 0 <= body["runpod"]["age_s"] <= body["runpod"]["max_age_s"] == 30.0


async def test_readyz_is_503_with_a_reason_while_runpod_never_answered() -> None:
    """With RunPod unreachable, /readyz is 503 and says RunPod has not answered."""
    dead = f"http://127.0.0.1:{free_port()}/v2/nowhere"
    settings = Settings.from_env({"RUNPOD_ENDPOINT_URL": dead, "HEALTH_POLL_S": "0.1"})
    app = create_app(settings, registry=CollectorRegistry())
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        await asyncio.sleep(0.2)
        r = await client.get("/readyz")
        healthz = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready"
    assert r.json()["reason"] == "RunPod /health has not answered yet"
    assert r.json()["runpod"]["last_error"] in ("ConnectError", "ConnectTimeout")
    assert healthz.status_code == 200  # alive, just not ready


async def test_readyz_turns_503_when_the_last_reading_is_too_old() -> None:
    """A RunPod reading older than READY_MAX_AGE_S makes the gateway unready."""
    async with stack(HEALTH_POLL_S="60", READY_MAX_AGE_S="1") as s:
        assert (await wait_ready(s.client)).status_code == 200
        await asyncio.sleep(1.1)
        r = await s.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["reason"].startswith("RunPod /health last answered")
