"""Graceful drain (issue #6 item 9): on SIGTERM ``python -m app`` stops accepting, lets the turns
in flight finish (bounded by SHUTDOWN_GRACE_S), then exits 0."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.emulator import Behavior, EmulatorConfig, create_emulator
from devstack.serve import serve
from tests.app.conftest import tool_calls_message
from tests.app.gateway_process import gateway_process

KEY = "rp-drain-key"


class SlowWorker:
    """Every job takes ``run_s``; counts the jobs it was handed."""

    def __init__(self, run_s: float) -> None:
        self.run_s = run_s
        self.jobs = 0

    def __call__(self, job_input: Mapping[str, Any]) -> Behavior:
        self.jobs += 1
        return Behavior(run_s=self.run_s)


async def until(check: Any, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_sigterm_lets_twenty_turns_in_flight_finish_then_exits_0(tmp_path: Path) -> None:
    """20 turns on 1.5 s jobs all get their real reply across a SIGTERM; the exit code is 0."""
    worker = SlowWorker(run_s=1.5)
    emulator = create_emulator(EmulatorConfig(api_key=KEY, virtual_worker=worker))
    async with serve(emulator) as runpod:
        env = {"RUNPOD_ENDPOINT_URL": f"{runpod}/v2/local", "RUNPOD_API_KEY": KEY,
               "HEALTH_POLL_S": "60"}  # fmt: skip
        async with (
            gateway_process(env, tmp_path) as gw,
            httpx.AsyncClient(base_url=gw.base_url, timeout=20) as client,
        ):
            turns = [
                asyncio.create_task(
                    client.post(
                        "/vapi/webhook",
                        json=tool_calls_message((f"c{i}", "lookup_rent", {"unit": f"{i}B"})),
                    )
                )
                for i in range(20)
            ]
            await until(lambda: worker.jobs == 20, within_s=10)
            gw.terminate()
            await asyncio.sleep(0.3)
            with pytest.raises(httpx.TransportError):  # no longer accepting
                async with httpx.AsyncClient(base_url=gw.base_url, timeout=2) as late:
                    await late.get("/healthz")
            replies = await asyncio.gather(*turns)
            assert await gw.wait(20) == 0
    for i, reply in enumerate(replies):
        assert reply.status_code == 200
        assert reply.json()["results"] == [
            {
                "name": "lookup_rent",
                "toolCallId": f"c{i}",
                "result": f'Emulated result of lookup_rent for {{"unit": "{i}B"}}.',
            }
        ]
    events = [r["event"] for r in gw.records()]
    assert events.index("gateway_stopped") > events.index("Shutting down")


async def test_shutdown_grace_bounds_the_wait_for_a_long_turn(tmp_path: Path) -> None:
    """A turn longer than SHUTDOWN_GRACE_S does not hold the process: it still exits 0."""
    worker = SlowWorker(run_s=5.0)
    emulator = create_emulator(EmulatorConfig(api_key=KEY, virtual_worker=worker))
    async with serve(emulator) as runpod:
        env = {"RUNPOD_ENDPOINT_URL": f"{runpod}/v2/local", "RUNPOD_API_KEY": KEY,
               "HEALTH_POLL_S": "60", "SHUTDOWN_GRACE_S": "0.5"}  # fmt: skip
        async with (
            gateway_process(env, tmp_path) as gw,
            httpx.AsyncClient(base_url=gw.base_url, timeout=20) as client,
        ):
            turn = asyncio.create_task(
                client.post(
                    "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "9Z"}))
                )
            )
            await until(lambda: worker.jobs == 1, within_s=10)
            started = time.monotonic()
            gw.terminate()
            assert await gw.wait(10) == 0
            assert time.monotonic() - started < 3.5
            await asyncio.gather(turn, return_exceptions=True)
    cancelled = [r for r in gw.records() if "timeout graceful shutdown exceeded" in r["event"]]
    assert cancelled, "uvicorn should report the turn it cut at the grace limit"
