"""The RunPod handler: an async generator, one call per job (runpod.md §2.2–2.4, §2.9).

``runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda _: MAX_CONCURRENCY,
"return_aggregate_stream": True})`` (see :mod:`gpu_worker.main`). Inputs are every shape in
:mod:`gpu_worker.inputs`. What a job yields (``/runsync`` and ``/status`` return the list, which
:func:`gpu_worker.contract.normalize_output` folds):

* reply, ``stream: true``: ``{"text": "<delta>"}`` pieces (the first as soon as the engine's first
  token arrives, then at most one per ``STREAM_BATCH_MS`` or ``STREAM_BATCH_TOKENS``), then
  ``{"text": "", "done": true, "model", "usage", "finish_reason", "tool_calls"?}``;
* reply, otherwise (warm-ups too): one ``{"text": <full>, "done": true, "model", "usage",
  "finish_reason", "tool_calls"?}``;
* VAPI tool calls: one ``{"text", "done": true, "model", "usage", "finish_reason": "stop",
  "results": [{"name", "toolCallId", "result" | "error"}]}`` (VAPI's reply body, vapi.md §2.2);
* admin: one ``{"text": <summary>, "done": true, "admin": {"action", ...}}``;
* OpenAI passthrough: raw SSE text pieces (whole events, batched) when streamed, else the engine's
  JSON object, as worker-vllm does (runpod.md §4.1);
* a bad input or an engine failure: exactly one ``{"error": "<reason>"}`` (the job is FAILED;
  validation errors name the field), then the generator returns. Nothing raises out of it except
  ``asyncio.CancelledError`` (RunPod ``/cancel``, TTL, execution timeout), which closes the engine
  request first.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import structlog

from gpu_worker.batching import batched
from gpu_worker.contract import ContractError
from gpu_worker.engines import Chunk, Engine, EngineError, EngineRequest, create_engine
from gpu_worker.inputs import (
    WARMUP_MESSAGES,
    Admin,
    AnswerToolCalls,
    Generate,
    OpenAIProxy,
    ToolCall,
    parse_request,
    tool_call_messages,
)
from gpu_worker.settings import ConfigError, Settings

log = structlog.get_logger("gpu_worker")


@dataclass
class _JobStats:
    """What the one canonical log line per job reports (no prompt, no output)."""

    started: float
    first_piece_ms: float | None = None
    pieces: int = 0
    tokens: int = 0


class Worker:
    """The engine, settings and served model behind :func:`handler`."""

    def __init__(self, settings: Settings, engine: Engine, *, model: str | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.model = model or settings.model
        self.in_flight = 0

    async def handle(self, job: Any) -> AsyncIterator[dict[str, Any]]:
        """The handler body: pieces out, one ``{"error"}`` on failure, never an exception."""
        job_id = job.get("id") if isinstance(job, Mapping) else None
        stats = _JobStats(started=time.monotonic())
        outcome, shape = "ok", "invalid"
        self.in_flight += 1
        try:
            request = parse_request(job.get("input") if isinstance(job, Mapping) else job)
            shape = request.shape
            async with aclosing(self._dispatch(request, stats)) as pieces:
                async for piece in pieces:
                    if stats.first_piece_ms is None:
                        stats.first_piece_ms = (time.monotonic() - stats.started) * 1000
                    stats.pieces += 1
                    yield piece
        except ContractError as exc:
            outcome = "invalid_input"
            yield {"error": f"invalid input: {exc}"}
        except EngineError as exc:
            outcome = f"engine_{exc.kind}"
            yield {"error": str(exc)}
        except TimeoutError:
            outcome = "engine_timeout"
            limit = self.settings.engine_request_timeout_s
            yield {"error": f"engine did not finish within {limit:g} s"}
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except GeneratorExit:
            outcome = "closed" if outcome == "ok" else outcome
            raise
        except Exception:
            outcome = "internal_error"
            log.exception("job_crashed", job_id=job_id, shape=shape)
            yield {"error": "internal worker error (see the worker log)"}
        finally:
            self.in_flight -= 1
            log.info(
                "job_done",
                job_id=job_id,
                shape=shape,
                outcome=outcome,
                first_piece_ms=_round(stats.first_piece_ms),
                pieces=stats.pieces,
                tokens=stats.tokens,
                elapsed_ms=_round((time.monotonic() - stats.started) * 1000),
            )

    def _dispatch(self, request: Any, stats: _JobStats) -> AsyncIterator[dict[str, Any]]:
        if isinstance(request, Generate):
            return self._generate(request, stats)
        if isinstance(request, AnswerToolCalls):
            return self._answer_tool_calls(request, stats)
        if isinstance(request, Admin):
            return self._admin(request, stats)
        if isinstance(request, OpenAIProxy):
            return self._proxy(request, stats)
        raise TypeError(f"no handler for {type(request).__name__}")

    # ------------------------------------------------------------------ replies

    def _engine_request(self, request: Generate) -> EngineRequest:
        max_tokens = request.max_tokens or self.settings.default_max_tokens
        return EngineRequest(
            messages=request.messages,
            model=request.model or self.model,
            max_tokens=1 if request.warmup else max_tokens,
            temperature=request.temperature,
            tools=request.tools,
        )

    def _batches(self, source: AsyncIterator[Any], *, stream: bool) -> AsyncIterator[list[Any]]:
        deadline = asyncio.get_running_loop().time() + self.settings.engine_request_timeout_s
        if not stream:  # one batch for the first item, one for the rest
            return batched(source, window_s=math.inf, max_items=1 << 30, deadline=deadline)
        window = self.settings.stream_batch_ms / 1000
        limit = self.settings.stream_batch_tokens
        return batched(source, window_s=window, max_items=limit, deadline=deadline)

    async def _generate(self, request: Generate, stats: _JobStats) -> AsyncIterator[dict[str, Any]]:
        engine_request = self._engine_request(request)
        final: Chunk | None = None
        parts: list[str] = []
        batches = self._batches(self.engine.chat(engine_request), stream=request.stream)
        async with aclosing(batches):
            async for batch in batches:
                stats.tokens += sum(1 for c in batch if c.text)
                final = next((c for c in batch if c.done), final)
                text = "".join(c.text for c in batch)
                if not request.stream:
                    parts.append(text)
                elif text:
                    yield {"text": text}
        if final is None:
            raise EngineError("engine stream ended without a final chunk", "cut")
        yield _final_piece(final, "".join(parts), engine_request.model)

    async def _complete(self, engine_request: EngineRequest, stats: _JobStats) -> Chunk:
        """One whole reply as a single ``done`` chunk carrying the text."""
        pieces = [p async for p in self._generate(_whole(engine_request), stats)]
        final = pieces[-1]
        return Chunk(
            text=final["text"],
            done=True,
            model=final["model"],
            usage=final["usage"],
            finish_reason=final["finish_reason"],
            tool_calls=tuple(final.get("tool_calls", ())),
        )

    async def _answer_tool_calls(
        self, request: AnswerToolCalls, stats: _JobStats
    ) -> AsyncIterator[dict[str, Any]]:
        """One engine answer per VAPI tool call, concurrently; VAPI's ``results`` out."""
        model = request.model or self.model
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        failures: list[EngineError] = []

        async def answer(call: ToolCall) -> dict[str, Any]:
            entry: dict[str, Any] = {"name": call.name, "toolCallId": call.id}
            if call.problem:
                return {**entry, "error": call.problem}
            messages = tuple(tool_call_messages(call, request.context))
            ask = EngineRequest(
                messages=messages, model=model, max_tokens=self.settings.default_max_tokens
            )
            try:
                reply = await self._complete(ask, stats)
            except TimeoutError:
                limit = self.settings.engine_request_timeout_s
                failures.append(EngineError(f"engine did not finish within {limit:g} s", "timeout"))
                return {**entry, "error": str(failures[-1])}
            except EngineError as exc:
                failures.append(exc)
                return {**entry, "error": str(exc)}
            for key in usage:
                usage[key] += int((reply.usage or {}).get(key) or 0)
            return {**entry, "result": " ".join(reply.text.split())}  # one line for VAPI

        results = await asyncio.gather(*(answer(call) for call in request.calls))
        if len(failures) == len(results):
            raise failures[0]  # nothing answered: the engine is the problem, not the calls
        text = " ".join(r["result"] for r in results if "result" in r)
        yield {
            "text": text,
            "done": True,
            "model": model,
            "usage": usage,
            "finish_reason": "stop",
            "results": results,
        }

    # ------------------------------------------------------------------ admin and passthrough

    async def _admin(self, request: Admin, stats: _JobStats) -> AsyncIterator[dict[str, Any]]:
        info: dict[str, Any] = {"action": request.action}
        if request.action == "warmup":
            started = time.monotonic()
            warm = EngineRequest(messages=WARMUP_MESSAGES, model=self.model, max_tokens=1)
            reply = await self._complete(warm, stats)
            info["elapsed_ms"] = _round((time.monotonic() - started) * 1000)
            yield {**_final_piece(reply, reply.text, self.model), "admin": info}
            return
        if request.action == "list_models":
            info["models"] = await self.engine.list_models()
            yield {"text": ", ".join(info["models"]), "done": True, "admin": info}
            return
        try:
            info["models"] = await self.engine.list_models()
            info["ready"] = True
        except EngineError as exc:
            info.update(ready=False, problem=str(exc))
        info.update(
            engine=self.engine.kind,
            model=self.model,
            in_flight=self.in_flight,
            max_concurrency=self.settings.max_concurrency,
        )
        summary = f"{'ready' if info['ready'] else 'not ready'}: {self.engine.kind} {self.model}"
        yield {"text": summary, "done": True, "admin": info}

    async def _proxy(self, request: OpenAIProxy, stats: _JobStats) -> AsyncIterator[Any]:
        body = dict(request.body) if request.body is not None else None
        if body is not None and not body.get("model"):
            body["model"] = self.model
        if not request.stream:
            yield await self.engine.openai_json(request.method, request.route, body)
            return
        carry = ""
        batches = self._batches(self.engine.openai_stream(request.route, body or {}), stream=True)
        async with aclosing(batches):
            async for batch in batches:
                stats.tokens += len(batch)
                text = carry + "".join(batch)
                cut = text.rfind("\n\n") + 2  # whole SSE events only; the rest waits for its end
                carry = text[cut:] if cut >= 2 else text
                if cut >= 2:
                    yield text[:cut]
        if carry.strip():
            yield carry


def _whole(request: EngineRequest) -> Generate:
    """The non-streamed :class:`Generate` that sends exactly ``request`` to the engine."""
    return Generate(
        shape="internal",
        messages=request.messages,
        model=request.model,
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        tools=request.tools,
    )


def _final_piece(final: Chunk, text: str, model: str) -> dict[str, Any]:
    piece: dict[str, Any] = {
        "text": text,
        "done": True,
        "model": final.model or model,
        "usage": final.usage or {},
        "finish_reason": final.finish_reason or "stop",
    }
    if final.tool_calls:
        piece["tool_calls"] = list(final.tool_calls)
    return piece


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ---------------------------------------------------------------------- the SDK's entry points

_worker: Worker | None = None


def install(worker: Worker | None) -> None:
    """Make ``worker`` the one :func:`handler` serves (``main`` does this before ``start``)."""
    global _worker
    _worker = worker


async def handler(job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The RunPod handler (async generator). Builds a worker from the environment if none set."""
    global _worker
    if _worker is None:
        import os

        try:
            settings = Settings.from_env(os.environ)
        except ConfigError as exc:
            yield {"error": f"worker misconfigured: {exc}"}
            return
        _worker = Worker(settings, create_engine(settings))
    async with aclosing(_worker.handle(job)) as pieces:
        async for piece in pieces:
            yield piece


async def collect(job: dict[str, Any]) -> Any:
    """Non-generator form for the SDK's local ``--test_input`` mode (it does not drain generators,
    runpod.md §3.1): the list of pieces, or the error dict."""
    pieces = [piece async for piece in handler(job)]
    errors = [p for p in pieces if isinstance(p, dict) and "error" in p]
    return errors[0] if errors else pieces
