"""The simulator's core: config, live state, the planned reply, its pacing and the faults.

A reply is planned from the last user message (same text in, same words out) or, when the request
offers ``tools`` and that message names one, as a call of that tool. :func:`paced` releases its
pieces on the configured clock; :func:`faulty` applies the scripted fault to a body stream and
counts how each stream ended (completed, cut, client gone), which tests read from
:class:`SimState`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import StreamingResponse

Fault = Literal["none", "http500", "malformed", "cut", "stall", "slow"]
FAULTS: tuple[str, ...] = ("none", "http500", "malformed", "cut", "stall", "slow")
LABEL = "engine simulator, not a real model"
WORDS = (
    "sure", "here", "is", "a", "short", "simulated", "answer", "about", "your", "question",
    "the", "engine", "keeps", "talking", "so", "timing", "can", "be", "checked", "on", "this",
    "line", "with", "some", "more", "words", "for", "the", "caller", "today",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EngineSimConfig:
    model: str = "pete-simulator"
    ttft_ms: float = 150.0
    tokens_per_s: float = 40.0
    reply_tokens: int = 24  # reply length when max_tokens / num_predict does not cut it
    fault: Fault = "none"
    fault_after: int = 3  # pieces sent before a malformed / cut / stall fault
    slow_ttft_ms: float = 10_000.0


class SimulatedCut(Exception):
    """Raised mid-stream so the server drops the connection (the ``cut`` fault)."""


@dataclass
class SimState:
    """The live state of one simulator: its config (switchable), models and counters."""

    config: EngineSimConfig
    models: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def disconnects(self) -> int:
        return self.counts["disconnects"]

    @property
    def active(self) -> int:
        """Response bodies still being sent (a stalled one counts until the client leaves)."""
        ended = ("completed", "disconnects", "cuts")
        return self.counts["streams"] - sum(self.counts[k] for k in ended)

    def reset(self, config: EngineSimConfig | None = None) -> None:
        """Back to a fresh simulator (tests reuse one server): config, models, counters."""
        self.config = config or self.config
        self.models = {tagged(self.config.model)}
        self.counts.clear()
        self.requests.clear()

    def has_model(self, name: str) -> bool:
        return tagged(name) in self.models


def tagged(name: str) -> str:
    """Ollama's full model name: ``name:latest`` unless a tag is given."""
    return name if ":" in name else f"{name}:latest"


@dataclass(frozen=True, slots=True)
class Plan:
    tokens: list[str]
    finish: str  # stop | length | tool_calls
    tool_call: dict[str, Any] | None  # {"id", "name", "arguments": {...}}
    prompt_tokens: int


def plan(cfg: EngineSimConfig, messages: Any, limit: Any, tools: Any = None) -> Plan:
    """The reply to ``messages``: deterministic words, ``limit`` of them at most, or a tool call."""
    prompt = last_user_text(messages)
    n_in = sum(len(text(m.get("content")).split()) for m in messages or [] if isinstance(m, dict))
    call = _tool_call_for(prompt, tools)
    if call is not None:
        return Plan([], "tool_calls", call, n_in)
    limited = isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
    n = min(cfg.reply_tokens, limit) if limited else cfg.reply_tokens
    rng = random.Random(int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big"))
    words = [rng.choice(WORDS) for _ in range(max(n, 0))]
    tokens = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
    if tokens:
        tokens[0] = tokens[0].capitalize()
    return Plan(tokens, "length" if n < cfg.reply_tokens else "stop", None, n_in)


def _tool_call_for(prompt: str, tools: Any) -> dict[str, Any] | None:
    for tool in tools if isinstance(tools, list) else []:
        fn = tool.get("function", {}) if isinstance(tool, dict) else {}
        name = fn.get("name")
        if not isinstance(name, str) or not name or name.lower() not in prompt.lower():
            continue
        params = fn.get("parameters") or {}
        props = params.get("properties") or {}
        wanted = params.get("required") or list(props)
        samples = {"integer": 1, "number": 1, "boolean": True}
        arguments = {k: samples.get((props.get(k) or {}).get("type"), "simulated") for k in wanted}
        call_id = "call_" + hashlib.sha256(prompt.encode()).hexdigest()[:12]
        return {"id": call_id, "name": name, "arguments": arguments}
    return None


def text(content: Any) -> str:
    """A message's text: a string, or the text parts of an OpenAI content list."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def last_user_text(messages: Any) -> str:
    users = [m for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
    return text(users[-1].get("content")) if users else ""


async def paced(cfg: EngineSimConfig, n: int) -> AsyncIterator[int]:
    """Indices 0..n-1: the first after the TTFT (``slow_ttft_ms`` under ``slow``), then the rest
    at ``tokens_per_s``, on an absolute schedule so a slow consumer does not stretch it."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    ttft = (cfg.slow_ttft_ms if cfg.fault == "slow" else cfg.ttft_ms) / 1000
    for i in range(n):
        delay = start + ttft + i / max(cfg.tokens_per_s, 1e-6) - loop.time()
        await asyncio.sleep(max(0.0, delay))
        yield i


async def faulty(
    state: SimState, cfg: EngineSimConfig, chunks: AsyncIterator[str], broken: str
) -> AsyncIterator[str]:
    """Apply the malformed / cut / stall fault to a body stream and count how it ended."""
    state.counts["streams"] += 1
    sent = 0
    try:
        async for chunk in chunks:
            if cfg.fault in ("malformed", "cut", "stall") and sent >= cfg.fault_after:
                if cfg.fault == "malformed":
                    yield broken
                    break
                if cfg.fault == "cut":
                    state.counts["cuts"] += 1
                    raise SimulatedCut("simulated connection cut")
                state.counts["stalls"] += 1
                await asyncio.Event().wait()  # held until the client goes away
            yield chunk
            sent += 1
        state.counts["completed"] += 1
    except (asyncio.CancelledError, GeneratorExit):
        state.counts["disconnects"] += 1
        raise


def stream(
    state: SimState, cfg: EngineSimConfig, chunks: AsyncIterator[str], *, sse: bool
) -> StreamingResponse:
    """A streamed body (SSE or NDJSON) with the fault applied."""
    broken = 'data: {"id": "chatcmpl-broken", "choices": [{\n\n' if sse else '{"model": "sim\n'
    media = "text/event-stream" if sse else "application/x-ndjson"
    return StreamingResponse(faulty(state, cfg, chunks, broken), media_type=media)


def single(
    state: SimState, cfg: EngineSimConfig, build: Callable[[], dict[str, Any]], n: int
) -> StreamingResponse:
    """A non-streamed reply: waits as long as generating would, then sends one JSON object
    (in two halves, so ``cut`` / ``stall`` / ``malformed`` can strike in the middle)."""

    async def body() -> AsyncIterator[str]:
        async for _ in paced(cfg, max(n, 1)):
            pass
        whole = json.dumps(build())
        yield whole[: len(whole) // 2]
        yield whole[len(whole) // 2 :]

    midway = dataclasses.replace(cfg, fault_after=min(cfg.fault_after, 1))
    chunks = faulty(state, midway, body(), '{"model": "sim')
    return StreamingResponse(chunks, media_type="application/json")


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def read_body(request: Request, state: SimState) -> dict[str, Any]:
    """The request's JSON object ({} if none), counted and kept (last 100) for tests."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    state.counts[f"{request.method} {request.url.path}"] += 1
    state.requests = [*state.requests[-99:], (request.url.path, body)]
    return body
