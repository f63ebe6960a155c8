"""The minimal reference gateway: the same webhook to the same upstream, with no features.

A bare Starlette app with one route, ``POST /vapi/webhook``: parse the VAPI ``tool-calls``
message, submit one contract-v1 ``tool`` job per call to ``{upstream}/runsync`` over one pooled
aiohttp session, and answer ``{"results": [{"toolCallId", "result"}]}``. No verification, no
metrics, no logs, no budgets, no fallbacks, no limits, no idempotency: it is the floor that the
real gateway's throughput is compared with (issue #7, "within 10 % of the minimal reference").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_reference(upstream: str, api_key: str, *, budget_ms: int = 6000) -> Starlette:
    runsync = f"{upstream.rstrip('/')}/runsync?wait={budget_ms - 250}"
    headers = {"Authorization": f"Bearer {api_key}"}
    policy = {"ttl": budget_ms + 30_000, "executionTimeout": max(5_000, budget_ms)}
    state: dict[str, aiohttp.ClientSession] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(connector=connector) as session:
            state["session"] = session
            yield

    async def one(call: dict[str, Any], messages: list[Any], call_id: Any) -> dict[str, Any]:
        fn = call.get("function") or {}
        job = {
            "v": 1,
            "type": "tool",
            "messages": messages,
            "tool": {"name": fn.get("name"), "arguments": fn.get("arguments") or {}},
            "call_id": call_id,
        }
        async with state["session"].post(
            runsync, json={"input": job, "policy": policy}, headers=headers
        ) as resp:
            data = await resp.json()
        output = data.get("output") if isinstance(data, dict) else None
        text = output.get("text") if isinstance(output, dict) else None
        return {"toolCallId": call.get("id"), "result": text or ""}

    async def webhook(request: Request) -> JSONResponse:
        message = json.loads(await request.body())["message"]
        artifact = message.get("artifact") or {}
        messages = artifact.get("messagesOpenAIFormatted") or []
        call_id = (message.get("call") or {}).get("id")
        calls = message.get("toolCallList") or []
        results = await asyncio.gather(*(one(c, messages, call_id) for c in calls))
        return JSONResponse({"results": list(results)})

    return Starlette(routes=[Route("/vapi/webhook", webhook, methods=["POST"])], lifespan=lifespan)
