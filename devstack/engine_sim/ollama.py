"""Ollama's native API as the simulator serves it (the shapes of Ollama 0.12's ``/api/*``).

``GET /`` and ``/api/version`` (health), ``/api/tags``, ``POST /api/show``, ``/api/pull`` (NDJSON
progress ending ``{"status": "success"}``; adds the model), ``/api/chat`` and ``/api/generate``
(``stream`` defaults to true: NDJSON pieces, then a ``done`` line with ``done_reason``, durations
in ns and token counts). Unknown models get Ollama's 404 until pulled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from devstack.engine_sim.core import (
    LABEL,
    EngineSimConfig,
    Plan,
    SimState,
    now_iso,
    paced,
    plan,
    read_body,
    single,
    stream,
    tagged,
)


def _tag(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": now_iso(),
        "size": 1_000_000,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {"format": "gguf", "family": "simulator", "parameter_size": "0B"},
    }


def _final(cfg: EngineSimConfig, reply: Plan, model: str, key: str, value: Any) -> dict[str, Any]:
    n = len(reply.tokens)
    gen_ns = int(n / max(cfg.tokens_per_s, 1e-6) * 1e9)
    return {
        "model": model,
        "created_at": now_iso(),
        key: value,
        "done": True,
        "done_reason": "length" if reply.finish == "length" else "stop",
        "total_duration": int(cfg.ttft_ms * 1e6) + gen_ns,
        "load_duration": 1_000_000,
        "prompt_eval_count": reply.prompt_tokens,
        "prompt_eval_duration": int(cfg.ttft_ms * 1e6),
        "eval_count": n,
        "eval_duration": gen_ns,
    }


async def _generation(request: Request, *, chat: bool) -> Response:
    state: SimState = request.app.state.sim
    cfg = state.config
    body = await read_body(request, state)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return JSONResponse({"error": "model is required"}, status_code=400)
    if not state.has_model(model):
        error = f'model "{model}" not found, try pulling it first'
        return JSONResponse({"error": error}, status_code=404)
    if cfg.fault == "http500":
        return JSONResponse({"error": f"simulated engine failure ({LABEL})"}, status_code=500)
    messages = body.get("messages") if chat else [{"role": "user", "content": body.get("prompt")}]
    options = body.get("options") if isinstance(body.get("options"), dict) else {}
    reply = plan(cfg, messages, options.get("num_predict"), body.get("tools") if chat else None)
    key = "message" if chat else "response"
    calls = []
    if reply.tool_call is not None:
        call = reply.tool_call
        fn = {"index": 0, "name": call["name"], "arguments": call["arguments"]}
        calls = [{"id": call["id"], "function": fn}]

    def piece(content: str, **more: Any) -> dict[str, Any]:
        value = {"role": "assistant", "content": content, **more} if chat else content
        return {"model": model, "created_at": now_iso(), key: value, "done": False}

    if body.get("stream", True) is False:
        whole = piece("".join(reply.tokens), **({"tool_calls": calls} if calls else {}))[key]
        return single(state, cfg, lambda: _final(cfg, reply, model, key, whole), len(reply.tokens))

    async def lines() -> AsyncIterator[str]:
        async for i in paced(cfg, max(len(reply.tokens), 1)):
            if i < len(reply.tokens):
                yield json.dumps(piece(reply.tokens[i])) + "\n"
        if calls:
            yield json.dumps(piece("", tool_calls=calls)) + "\n"
        empty = {"role": "assistant", "content": ""} if chat else ""
        yield json.dumps(_final(cfg, reply, model, key, empty)) + "\n"

    return stream(state, cfg, lines(), sse=False)


async def chat(request: Request) -> Response:
    return await _generation(request, chat=True)


async def generate(request: Request) -> Response:
    return await _generation(request, chat=False)


async def root(request: Request) -> Response:
    return PlainTextResponse("Ollama is running")


async def version(request: Request) -> Response:
    return JSONResponse({"version": "0.0.0-simulator"})


async def tags(request: Request) -> Response:
    state: SimState = request.app.state.sim
    return JSONResponse({"models": [_tag(name) for name in sorted(state.models)]})


async def show(request: Request) -> Response:
    state: SimState = request.app.state.sim
    body = await read_body(request, state)
    name = body.get("model") or body.get("name") or ""
    if not state.has_model(name):
        return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
    return JSONResponse(
        {
            "modelfile": f"# {LABEL}",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": _tag(name)["details"],
            "model_info": {"general.architecture": "simulator"},
            "capabilities": ["completion", "tools"],
        }
    )


async def pull(request: Request) -> Response:
    state: SimState = request.app.state.sim
    body = await read_body(request, state)
    name = body.get("model") or body.get("name")
    if not isinstance(name, str) or not name:
        return JSONResponse({"error": "model is required"}, status_code=400)
    state.models.add(tagged(name))
    if body.get("stream", True) is False:
        return JSONResponse({"status": "success"})
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    layer = {"status": f"pulling {digest[7:19]}", "digest": digest, "total": 1_000_000}
    steps = [{"status": "pulling manifest"}]
    steps += [{**layer, "completed": k * 250_000} for k in range(5)]
    steps += [{"status": s} for s in ("verifying sha256 digest", "writing manifest", "success")]
    lines = "".join(json.dumps(step) + "\n" for step in steps)
    return Response(lines, media_type="application/x-ndjson")
