"""What we answer to each VAPI server message (vapi.md §2; the table in docs/vapi-messages.md).

The route verifies and parses; this module decides the reply. Only the types whose reply VAPI
uses get real work on the request path; everything else is ``{}`` at once, with any follow-up
(the end-of-call summary, a structured log event) returned as an ``after`` callable that runs
once the reply has been sent. Every branch degrades to :func:`replies.fallback_reply`: a
VAPI-valid, speakable body, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from app.budget import Deadline
from app.errors import GatewayError
from app.idempotency import IdempotencyStore, make_key
from app.settings import Settings
from app.tools import ToolRunner, clean_history
from app.turns import Turns
from app.vapi import replies
from app.vapi.assistant import AssistantTemplate, build_assistant_reply
from app.vapi.messages import ServerMessage, end_of_call_summary
from app.vapi.toolcalls import (
    ToolResult,
    extract_function_call,
    extract_tool_calls,
    tool_results_reply,
)
from gpu_worker.contract import build_job_input, normalize_output

log = structlog.get_logger(__name__)

After = Callable[[], Awaitable[None]] | None

KNOWLEDGE_INSTRUCTION = (
    "From what you know about this business, write the facts most relevant to the caller's "
    "last question as short plain sentences. If nothing is relevant, answer with nothing."
)


class Webhooks:
    def __init__(
        self,
        *,
        settings: Settings,
        tools: ToolRunner,
        turns: Turns,
        template: AssistantTemplate,
        idempotency: IdempotencyStore,
    ) -> None:
        self._settings = settings
        self._tools = tools
        self._turns = turns
        self._template = template
        self._idempotency = idempotency

    async def reply(self, msg: ServerMessage) -> tuple[dict[str, Any], str, After]:
        """(reply body, outcome label, work to run after the reply)."""
        handler = self._handlers().get(msg.type)
        if handler is None:
            return replies.ack(), "ack", self._after(msg)
        try:
            body, outcome = await handler(msg)
        except Exception:
            log.exception("webhook_handler_failed", type=msg.type)
            return self.fallback(msg), "fallback", None
        return body, outcome, None

    def fallback(self, msg: ServerMessage) -> dict[str, Any]:
        """A VAPI-valid reply when something unexpected broke (never a 5xx where VAPI waits)."""
        sentence = self._settings.fallback_message
        if msg.type == "tool-calls":
            try:
                calls = extract_tool_calls(msg.raw)
            except Exception:
                calls = []
            if calls:
                return tool_results_reply([ToolResult(call, result=sentence) for call in calls])
        return replies.fallback_reply(msg.type, sentence)

    def _handlers(self) -> dict[str, Callable[[ServerMessage], Awaitable[tuple[dict, str]]]]:
        return {
            "tool-calls": self._tool_calls,
            "function-call": self._function_call,
            "assistant-request": self._assistant_request,
            "transfer-destination-request": self._transfer,
            "handoff-destination-request": self._handoff,
            "knowledge-base-request": self._knowledge_base,
            "campaign.predial": self._predial,
            "call.endpointing.request": self._endpointing,
        }

    # ------------------------------------------------------------------ replies

    async def _tool_calls(self, msg: ServerMessage) -> tuple[dict[str, Any], str]:
        return await self._tools.answer(msg.raw, call_id=msg.call_id)

    async def _function_call(self, msg: ServerMessage) -> tuple[dict[str, Any], str]:
        call = extract_function_call(msg.raw)
        if call is None:
            return replies.function_call_reply(self._settings.fallback_message), "bad_request"
        deadline = Deadline.after_ms(self._settings.tool_budget_ms)
        [result] = await self._tools.run_calls(
            [call], msg.raw, call_id=msg.call_id, deadline=deadline
        )
        text = result.result if result.error is None else result.error
        return replies.function_call_reply(text or self._settings.fallback_message), "ok"

    async def _assistant_request(self, msg: ServerMessage) -> tuple[dict[str, Any], str]:
        async def build() -> dict[str, Any]:
            if self._settings.assistant_id:
                return replies.assistant_id_reply(self._settings.assistant_id)
            return build_assistant_reply(self._template, msg, self._settings.public_url)

        budget_s = self._settings.assistant_request_budget_ms / 1000
        try:
            async with asyncio.timeout(budget_s):
                if msg.call_id:
                    body, _ = await self._idempotency.run_once(
                        make_key("assistant", msg.call_id), build
                    )
                else:
                    body = await build()
        except TimeoutError:
            return replies.assistant_error_reply(self._settings.fallback_message), "fallback"
        kind = next(
            (k for k in ("error", "destination", "assistantId", "assistant") if k in body), "other"
        )
        log.info("assistant_request_answered", kind=kind)
        return body, "ok"

    async def _transfer(self, msg: ServerMessage) -> tuple[dict[str, Any], str]:
        return replies.answer_transfer(msg, self._template.destinations), "ok"

    async def _handoff(self, msg: ServerMessage) -> tuple[dict[str, Any], str]:
        return replies.answer_handoff(msg, self._template.destinations), "ok"

    async def _knowledge_base(self, msg: ServerMessage) -> tuple[dict[str, Any], str]:
        """One RunPod job whose text becomes the document VAPI gives the model (vapi.md §2.6)."""
        conversation = clean_history(msg.conversation)
        if not conversation:
            return replies.knowledge_base_reply(), "ok"
        job = build_job_input(
            type="chat",
            messages=[*conversation, {"role": "system", "content": KNOWLEDGE_INSTRUCTION}],
            call_id=msg.call_id,
        )
        deadline = Deadline.after_ms(self._settings.tool_budget_ms)
        try:
            with self._turns.admit():
                async with asyncio.timeout_at(deadline.at):
                    result = await self._turns.run(job, deadline)
        except (GatewayError, TimeoutError):
            return replies.knowledge_base_reply(), "fallback"
        text = normalize_output(result.output).text.strip()
        documents = [replies.Document(content=text, similarity=1.0)] if text else []
        return replies.knowledge_base_reply(documents), "ok"

    async def _predial(self, msg: ServerMessage) -> tuple[dict[str, Any], str]:
        return replies.campaign_predial_reply(True), "ok"

    async def _endpointing(self, msg: ServerMessage) -> tuple[dict[str, Any], str]:
        return replies.endpointing_reply(), "ok"

    # ------------------------------------------------------------------ after the reply

    def _after(self, msg: ServerMessage) -> After:
        if msg.type != "end-of-call-report":
            return None

        async def summarise() -> None:
            log.info("end_of_call", **end_of_call_summary(msg.raw))

        return summarise
