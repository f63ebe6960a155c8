"""Late tool results are not thrown away (issue #4 item 6): counted, and spoken through VAPI's
Live Call Control when the webhook carried a controlUrl and LATE_RESULT_DELIVERY is on."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.settings import DEFAULT_FALLBACK
from devstack.emulator import Behavior
from devstack.serve import serve
from tests.app.conftest import stack, tool_calls_message


class LiveCallControl:
    """A loopback stand-in for VAPI's controlUrl that records what it was told to do."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def control(self, request: Request) -> JSONResponse:
        self.received.append(await request.json())
        return JSONResponse({"ok": True})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/call-1/control", self.control, methods=["POST"])])


async def test_a_late_tool_result_is_spoken_through_live_call_control() -> None:
    """Fallback at the budget, then the real result is POSTed to controlUrl as a `say`."""
    control = LiveCallControl()
    async with (
        serve(control.app()) as control_base,
        stack(
            lambda _input: Behavior(run_s=1.0),
            TOOL_BUDGET_MS="400",
            LATE_RESULT_DELIVERY="on",
            HEALTH_POLL_S="3600",
        ) as s,
    ):
        body = tool_calls_message(("late-1", "lookup_rent", {"unit": "4B"}))
        body["message"]["call"]["monitor"] = {"controlUrl": f"{control_base}/call-1/control"}
        r = await s.client.post("/vapi/webhook", json=body)
        assert r.json()["results"][0]["result"] == DEFAULT_FALLBACK
        for _ in range(150):
            if control.received:
                break
            await asyncio.sleep(0.02)
        assert control.received == [
            {
                "type": "say",
                "endCallAfterSpoken": False,
                "content": 'Emulated result of lookup_rent for {"unit": "4B"}.',
            }
        ]
        late = s.app.state.metrics.registry.get_sample_value("pete_late_results_total")
        assert late == 1
        assert [j.status for j in s.emulator.jobs()] == ["COMPLETED"], "job was cancelled"


async def test_without_delivery_an_overrun_job_is_cancelled() -> None:
    """With LATE_RESULT_DELIVERY off (the default) the overrun job is cancelled instead."""
    async with stack(lambda _input: Behavior(run_s=5.0), TOOL_BUDGET_MS="400") as s:
        body = tool_calls_message(("late-2", "lookup_rent", {"unit": "4B"}))
        body["message"]["call"]["monitor"] = {"controlUrl": "http://127.0.0.1:9/control"}
        await s.client.post("/vapi/webhook", json=body)
        for _ in range(100):
            if s.emulator.jobs() and s.emulator.jobs()[0].status == "CANCELLED":
                break
            await asyncio.sleep(0.02)
        assert [j.status for j in s.emulator.jobs()] == ["CANCELLED"]
