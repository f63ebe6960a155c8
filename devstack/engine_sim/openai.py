"""An OpenAI-compatible server as vLLM and llama.cpp serve it: ``GET /v1/models``, ``GET /health``
and ``POST /v1/chat/completions``.

Streamed: SSE ``chat.completion.chunk`` events, ``choices`` in every one: the role first, then
content deltas (or ``delta.tool_calls`` fragments), a chunk with ``finish_reason``, a usage chunk
(``choices: []``) when ``stream_options.include_usage``, then ``data: [DONE]``. Otherwise one
``chat.completion`` with ``usage``. Errors use vLLM's ``{"object": "error", ...}`` body.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devstack.engine_sim.core import LABEL, SimState, paced, plan, read_body, single, stream


def _error(message: str, kind: str, code: int) -> Response:
    body = {"object": "error", "message": message, "type": kind, "param": None, "code": code}
    return JSONResponse(body, status_code=code)


async def models(request: Request) -> Response:
    state: SimState = request.app.state.sim
    data = [
        {"id": name.removesuffix(":latest"), "object": "model", "created": 0, "owned_by": LABEL}
        for name in sorted(state.models)
    ]
    return JSONResponse({"object": "list", "data": data})


async def health(request: Request) -> Response:
    return Response(status_code=200)


async def chat_completions(request: Request) -> Response:
    state: SimState = request.app.state.sim
    cfg = state.config
    body = await read_body(request, state)
    model = body.get("model") or cfg.model
    if not state.has_model(model):
        return _error(f"The model `{model}` does not exist.", "NotFoundError", 404)
    if cfg.fault == "http500":
        return _error(f"simulated engine failure ({LABEL})", "InternalServerError", 500)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    reply = plan(cfg, body.get("messages"), limit, body.get("tools"))
    n = len(reply.tokens)
    usage = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": n,
        "total_tokens": reply.prompt_tokens + n,
    }
    ident, created = f"chatcmpl-sim-{state.counts['completions']}", int(time.time())
    state.counts["completions"] += 1
    calls = None
    if reply.tool_call is not None:
        fn = {
            "name": reply.tool_call["name"],
            "arguments": json.dumps(reply.tool_call["arguments"]),
        }
        calls = [{"id": reply.tool_call["id"], "type": "function", "function": fn}]

    def envelope(kind: str, choices: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
        return {
            "id": ident,
            "object": kind,
            "created": created,
            "model": model,
            "choices": choices,
            **more,
        }

    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.tokens) or None}
        if calls:
            message["tool_calls"] = calls
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}
        return single(state, cfg, lambda: envelope("chat.completion", [choice], usage=usage), n)
    include_usage = (body.get("stream_options") or {}).get("include_usage") is True

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        more = {"usage": None} if include_usage else {}
        return f"data: {json.dumps(envelope('chat.completion.chunk', [choice], **more))}\n\n"

    async def events() -> AsyncIterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        async for i in paced(cfg, max(n, 1)):
            if i < n:
                yield chunk({"content": reply.tokens[i]})
        if calls:
            call, fn = calls[0], calls[0]["function"]
            head = {"name": fn["name"], "arguments": ""}
            yield chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": call["id"], "type": "function", "function": head}
                    ]
                }
            )
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": fn["arguments"]}}]})
        yield chunk({}, reply.finish)
        if include_usage:
            yield f"data: {json.dumps(envelope('chat.completion.chunk', [], usage=usage))}\n\n"
        yield "data: [DONE]\n\n"

    return stream(state, cfg, events(), sse=True)
