"""Custom-LLM turns: one RunPod job per turn, streamed back as OpenAI SSE within budgets.

vapi.md §6 (protocol) and issue #4 (budgets); peers.md §3–§4 (the timeouts peers get wrong fire
on the first token and on a stalled stream, not on a socket read):

* the first SSE bytes (an empty assistant delta) leave as soon as the request is accepted;
* ``FIRST_TOKEN_BUDGET_MS``: no model text yet → a short filler sentence ("One moment.") is
  streamed at once, then we keep waiting up to the turn's hard budget;
* ``TURN_BUDGET_MS``: the hard end; the fallback sentence is streamed and the stream closed;
* ``STREAM_GAP_MS``: once text flows, a gap longer than this closes the turn with the fallback
  instead of leaving the caller in dead air;
* keep-alive SSE comments while waiting, so proxies do not cut an idle stream;
* tool calls the model makes leave as ``delta.tool_calls`` with ``finish_reason: "tool_calls"``.

The job is ``/run`` + ``/stream`` polling (runpod.md §1.4); stopping early cancels it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog

from app.budget import Deadline
from app.errors import GatewayError, Overloaded
from app.metrics import Metrics
from app.openai_format import (
    DONE,
    KEEPALIVE,
    chunk,
    completion,
    sse,
    tool_call_deltas,
)
from app.settings import Settings
from app.turns import Turns, fallback_reason
from gpu_worker.contract import StreamAccumulator, normalize_output

log = structlog.get_logger(__name__)

KEEPALIVE_S = 1.0


@dataclass(frozen=True, slots=True)
class Budgets:
    first_token_s: float
    turn_s: float
    gap_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Budgets:
        return cls(
            first_token_s=settings.first_token_budget_ms / 1000,
            turn_s=settings.turn_budget_ms / 1000,
            gap_s=settings.stream_gap_ms / 1000,
        )


class LlmTurns:
    def __init__(self, *, turns: Turns, settings: Settings, metrics: Metrics) -> None:
        self._turns = turns
        self._settings = settings
        self._metrics = metrics
        self._budgets = Budgets.from_settings(settings)

    # ------------------------------------------------------------------ streaming

    async def stream(self, job_input: dict[str, Any], cid: str, model: str) -> AsyncIterator[bytes]:
        """SSE bytes for one turn; always ends with a finish chunk and ``[DONE]``."""
        started = time.monotonic()
        yield sse(chunk(cid, model, delta={"role": "assistant", "content": ""}))
        try:
            with self._turns.admit():
                async for out in self._stream_admitted(job_input, cid, model, started):
                    yield out
        except Overloaded:
            self._count_fallback("overloaded")
            yield self._fallback_chunk(cid, model, "overloaded", joined=False)
            yield sse(chunk(cid, model, finish_reason="stop"))
            yield DONE
            self._observe(started, "fallback")

    async def _stream_admitted(
        self, job_input: dict[str, Any], cid: str, model: str, started: float
    ) -> AsyncIterator[bytes]:
        b = self._budgets
        turn_deadline = Deadline(started + b.turn_s)
        first_token_at = started + b.first_token_s
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(job_input, turn_deadline, queue), name="llm-pump")
        acc = StreamAccumulator()
        got_text = filler_sent = False
        last_text = started
        reason: str | None = None
        try:
            while True:
                now = time.monotonic()
                if got_text:
                    wake = min(last_text + b.gap_s, turn_deadline.at)
                else:
                    wake = turn_deadline.at if filler_sent else first_token_at
                try:
                    kind, value = await asyncio.wait_for(
                        queue.get(), timeout=max(0.0, min(wake, now + KEEPALIVE_S) - now)
                    )
                except TimeoutError:
                    now = time.monotonic()
                    if now >= turn_deadline.at:
                        reason = "slow"
                        break
                    if got_text and now >= last_text + b.gap_s:
                        reason = "stalled"
                        break
                    if not got_text and not filler_sent and now >= first_token_at:
                        filler_sent = True
                        self._metrics.fallbacks.labels(reason="filler").inc()
                        yield sse(chunk(cid, model, delta={"content": self._filler()}))
                        continue
                    yield KEEPALIVE
                    continue
                if kind == "piece":
                    delta = acc.feed(value)
                    if delta:
                        if not got_text:
                            self._metrics.first_token.observe(time.monotonic() - started)
                        got_text, last_text = True, time.monotonic()
                        yield sse(chunk(cid, model, delta={"content": delta}))
                    if acc.error is not None:
                        reason = "failed"
                        break
                    if acc.done:
                        break
                elif kind == "end":
                    break
                else:
                    reason = fallback_reason(value)
                    break
            result = acc.result()
            if reason is None and result.tool_calls:
                calls = tool_call_deltas(result.tool_calls)
                yield sse(chunk(cid, model, delta={"tool_calls": calls}))
                yield sse(chunk(cid, model, finish_reason="tool_calls"))
                yield DONE
                self._observe(started, "ok")
                return
            if reason is None and not got_text:
                reason = "failed"  # the job ended without any text
            if reason is not None:
                self._count_fallback(reason)
                yield self._fallback_chunk(cid, model, reason, joined=got_text or filler_sent)
            yield sse(chunk(cid, model, finish_reason="stop"))
            yield DONE
            self._observe(started, "fallback" if reason else "ok")
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _pump(
        self, job_input: dict[str, Any], deadline: Deadline, queue: asyncio.Queue[tuple[str, Any]]
    ) -> None:
        try:
            async for piece in self._turns.stream(job_input, deadline):
                if isinstance(piece, dict) and "_job_id" in piece:
                    structlog.contextvars.bind_contextvars(job_id=piece["_job_id"])
                    continue
                await queue.put(("piece", piece))
            await queue.put(("end", None))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, GatewayError):
                log.exception("llm_stream_failed")
            await queue.put(("error", exc))

    # ------------------------------------------------------------------ non-streaming

    async def complete(self, job_input: dict[str, Any], cid: str, model: str) -> dict[str, Any]:
        """A ``chat.completion`` for one turn, or one carrying the fallback sentence."""
        started = time.monotonic()
        deadline = Deadline(started + self._budgets.turn_s)
        reason: str | None = None
        try:
            with self._turns.admit():
                async with asyncio.timeout_at(deadline.at):
                    result = await self._turns.run(job_input, deadline)
            output = normalize_output(result.output)
            if output.tool_calls:
                self._observe(started, "ok")
                return completion(
                    cid, model, text=output.text, tool_calls=output.tool_calls, usage=output.usage
                )
            if output.error or not output.text.strip():
                reason = "failed"
            else:
                self._observe(started, "ok")
                return completion(cid, model, text=output.text, usage=output.usage)
        except (GatewayError, TimeoutError) as exc:
            reason = fallback_reason(exc)
        self._count_fallback(reason)
        self._observe(started, "fallback")
        return completion(cid, model, text=self._settings.fallback_for(_speech_reason(reason)))

    # ------------------------------------------------------------------ helpers

    def _filler(self) -> str:
        filler = self._settings.filler_message.strip()
        return filler + " " if filler else ""

    def _fallback_chunk(self, cid: str, model: str, reason: str, *, joined: bool) -> bytes:
        text = self._settings.fallback_for(_speech_reason(reason))
        return sse(chunk(cid, model, delta={"content": (" " if joined else "") + text}))

    def _count_fallback(self, reason: str) -> None:
        self._metrics.fallbacks.labels(reason=reason).inc()
        if reason in ("slow", "stalled"):
            self._metrics.budget_exceeded.labels(route="llm").inc()
        log.info("llm_fallback", reason=reason)

    def _observe(self, started: float, outcome: str) -> None:
        self._metrics.turn_duration.labels(route="llm", outcome=outcome).observe(
            time.monotonic() - started
        )


def _speech_reason(reason: str) -> str:
    return "slow" if reason == "stalled" else reason
