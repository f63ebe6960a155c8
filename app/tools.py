"""Answering a VAPI ``tool-calls`` message: one RunPod job per call, all under one deadline.

vapi.md §2.2/§3: the reply is ``{"results": [...]}``, one entry per call in order with the exact
``toolCallId``, string values, always HTTP 200. Calls in one message run concurrently. The turn's
budget (``TOOL_BUDGET_MS``) is a hard bound: a call still running at the deadline is answered with
the fallback sentence (a ``result`` the assistant can speak, never silence) and its job is
cancelled in the background (runpod.md §5), or, with ``LATE_RESULT_DELIVERY=on`` and a
``call.monitor.controlUrl``, left running and spoken through Live Call Control when it lands
(vapi.md §5). Tool names go through the
:class:`~app.tool_registry.ToolRegistry` (unknown → per-result ``error``); a redelivered call
(same call id and ``toolCallId``) joins or reuses the first one's result (idempotency store).
The job input is contract v1 ``type: "tool"`` with the
tool's name, its arguments and the conversation so far (``artifact.messagesOpenAIFormatted``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from app.background import Background
from app.budget import Deadline
from app.errors import GatewayError, Overloaded, UpstreamError
from app.idempotency import IdempotencyStore, make_key
from app.livecall import LateDelivery
from app.settings import Settings
from app.tool_registry import ToolRegistry
from app.turns import Turns
from app.vapi.messages import conversation_of
from app.vapi.replies import tool_calls_error_reply
from app.vapi.toolcalls import ToolCall, ToolResult, extract_tool_calls, tool_results_reply
from gpu_worker.contract import ContractError, build_job_input, is_role, normalize_output

log = structlog.get_logger(__name__)

ASYNC_TOOL_BUDGET_MS = 120_000  # an async tool's job: nobody is waiting on the line
MAX_HISTORY = 40  # messages of context sent with a tool job (bounded payload, bounded prompt)


@dataclass(frozen=True, slots=True)
class FallbackResult(ToolResult):
    """A tool result that is our fallback sentence, not the tool's answer."""

    reason: str = "failed"


def clean_history(conversation: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation so far (``vapi.messages.conversation_of``), cut to what the job contract
    accepts: known roles only, string or parts content, the last ``MAX_HISTORY`` messages."""
    clean = []
    for item in conversation:
        if not is_role(item.get("role")):
            continue
        content = item.get("content")
        if content is not None and not isinstance(content, str | list):
            content = str(content)
        clean.append({**item, "content": content})
    return clean[-MAX_HISTORY:]


class ToolRunner:
    def __init__(
        self,
        *,
        turns: Turns,
        settings: Settings,
        registry: ToolRegistry,
        idempotency: IdempotencyStore,
        background: Background,
        late_delivery: LateDelivery | None = None,
    ) -> None:
        self._turns = turns
        self._settings = settings
        self._registry = registry
        self._idempotency = idempotency
        self._background = background
        self._metrics = turns.metrics
        self._late_delivery = late_delivery

    async def answer(
        self, message: Mapping[str, Any], *, call_id: str | None, deadline: Deadline | None = None
    ) -> tuple[dict[str, Any], str]:
        """The ``{"results": [...]}`` reply for a tool-calls message within the budget, and its
        outcome: ``ok``, or ``fallback`` when any call got a fallback sentence."""
        deadline = deadline or Deadline.after_ms(self._settings.tool_budget_ms)
        calls = extract_tool_calls(message)
        if not calls:
            # Nothing to answer one by one: the batch-level error VAPI reads (vapi.md §2.2).
            return tool_calls_error_reply(
                "The tool request had no tool calls in it."
            ), "bad_request"
        results = await self.run_calls(calls, message, call_id=call_id, deadline=deadline)
        fell_back = any(isinstance(r, FallbackResult) for r in results)
        return tool_results_reply(results), "fallback" if fell_back else "ok"

    async def run_calls(
        self,
        calls: list[ToolCall],
        message: Mapping[str, Any],
        *,
        call_id: str | None,
        deadline: Deadline,
    ) -> list[ToolResult]:
        """Each call concurrently; a redelivered call (same call and toolCallId) runs once."""
        conversation = clean_history(conversation_of(message))
        control_url = _control_url(message)

        def once(call: ToolCall) -> Awaitable[ToolResult]:
            async def compute() -> ToolResult:
                return await self._one(call, conversation, call_id, control_url, deadline)

            return self._shared(make_key("tool", call_id, call.id, call.name), compute)

        try:
            with self._turns.admit():
                if len(calls) == 1:  # the common case: no gather future (2 % of CPU, profiled)
                    return [await once(calls[0])]
                return list(await asyncio.gather(*(once(c) for c in calls)))
        except Overloaded:
            return [self._fallback_result(c, "overloaded") for c in calls]

    async def _shared(self, key: str, compute: Callable[[], Awaitable[ToolResult]]) -> ToolResult:
        result, shared = await self._idempotency.run_once(key, compute)
        if shared:
            log.info("tool_call_deduplicated", tool=result.call.name)
        return result

    async def _one(
        self,
        call: ToolCall,
        conversation: list[dict[str, Any]],
        call_id: str | None,
        control_url: str | None,
        deadline: Deadline,
    ) -> ToolResult:
        if call.problem:
            return ToolResult(call, error=call.problem)
        kind = self._registry.kind(call.name)
        if kind is None:
            log.info("tool_unknown", tool=call.name)
            return ToolResult(call, error=f"Unknown tool: {call.name}")
        if kind == "local":
            return await self._registry.local[call.name](call)
        try:
            job = build_job_input(
                type="tool",
                messages=conversation,
                tool_name=call.name,
                tool_arguments=call.arguments,
                call_id=call_id,
            )
        except ContractError as exc:
            return ToolResult(call, error=f"invalid tool call ({exc.field})")
        on_late = None
        if self._late_delivery is not None and control_url:
            on_late = self._late_delivery.for_call(control_url, call.name)
        if call.is_async:
            # VAPI does not wait for async tools (vapi.md §2.2): acknowledge now, run the job
            # in the background and speak its result through Live Call Control when enabled.
            self._background.spawn(
                self._run_async(job, call, on_late), name=f"async-tool-{call.name}"
            )
            return ToolResult(call, result="Request received.")
        try:
            # asyncio's loop clock is time.monotonic on every platform we run on, so the
            # deadline doubles as a hard guard around everything the job awaits.
            async with asyncio.timeout_at(deadline.at):
                result = await self._turns.run(job, deadline, on_late=on_late)
        except TimeoutError:
            return self._fallback_result(call, "slow")
        except GatewayError as exc:
            if isinstance(exc, UpstreamError):
                log.warning("tool_job_failed", tool=call.name, error=str(exc), job_id=exc.job_id)
            return self._fallback_result(call, exc.reason)
        output = normalize_output(result.output)
        if output.error or not output.text.strip():
            log.warning("tool_job_empty", tool=call.name, job_id=result.id, error=output.error)
            return self._fallback_result(call, "failed")
        return ToolResult(call, result=output.text.strip())

    async def _run_async(self, job: dict[str, Any], call: ToolCall, on_late: Any) -> None:
        deadline = Deadline.after_ms(ASYNC_TOOL_BUDGET_MS)
        try:
            result = await self._turns.run(job, deadline)
        except GatewayError as exc:
            log.warning("async_tool_failed", tool=call.name, reason=exc.reason)
            return
        log.info("async_tool_done", tool=call.name, job_id=result.id)
        if on_late is not None:
            await on_late(result)

    def _fallback_result(self, call: ToolCall, reason: str) -> ToolResult:
        self._metrics.fallbacks.labels(reason=reason).inc()
        if reason == "slow":
            self._metrics.budget_exceeded.labels(route="tool-calls").inc()
        log.info("tool_fallback", tool=call.name, reason=reason)
        return FallbackResult(call, result=self._settings.fallback_for(reason), reason=reason)


def _control_url(message: Mapping[str, Any]) -> str | None:
    call = message.get("call")
    monitor = call.get("monitor") if isinstance(call, Mapping) else None
    url = monitor.get("controlUrl") if isinstance(monitor, Mapping) else None
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None
