"""``POST /vapi/webhook``: every VAPI server message (vapi.md §1–§3).

Dispatches on ``message.type``. ``tool-calls`` runs the tool jobs under the turn budget and
answers ``{"results": [...]}``; informational messages (status-update, transcript, ...,
end-of-call-report, and any type we do not know) get ``200 {}`` at once and never a RunPod job.
Where VAPI expects a reply it always gets HTTP 200 with a VAPI-shaped body: an unexpected error
becomes the fallback sentence, never a 5xx. Malformed input gets 400/413 with a JSON reason.
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.metrics import type_label
from app.routes.common import BodyTooLarge, error_response, read_body, services
from app.vapi.toolcalls import ToolResult, extract_tool_calls, tool_results_reply

log = structlog.get_logger(__name__)


def _parse(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, "body is not valid JSON"
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        return None, "body must be a JSON object with a 'message' object"
    mtype = data["message"].get("type")
    if not isinstance(mtype, str) or not mtype:
        return None, "message.type is missing"
    return data["message"], None


def _call_id(message: dict[str, Any]) -> str | None:
    call = message.get("call")
    if isinstance(call, dict):
        value = call.get("id") or call.get("callId")
        return str(value) if value else None
    return None


async def vapi_webhook(request: Request) -> JSONResponse:
    svc = services(request)
    started = time.perf_counter()
    try:
        body = await read_body(request, svc.settings.max_body_bytes)
    except BodyTooLarge as exc:
        svc.metrics.webhook_requests.labels(type="unknown", outcome="too_large").inc()
        return error_response(413, str(exc))
    message, problem = _parse(body)
    if message is None:
        svc.metrics.webhook_requests.labels(type="unknown", outcome="bad_request").inc()
        return error_response(400, problem or "bad request")
    mtype: str = message["type"]
    label = type_label(mtype)
    call_id = _call_id(message)
    structlog.contextvars.bind_contextvars(call_id=call_id, message_type=mtype)
    outcome = "ok"
    try:
        if mtype == "tool-calls":
            reply = await svc.tools.answer(message, call_id=call_id)
        else:
            reply = {}
            outcome = "ack"
    except Exception:
        log.exception("webhook_failed")
        outcome = "fallback"
        reply = _safe_reply(mtype, message, svc.settings.fallback_message)
    elapsed = time.perf_counter() - started
    svc.metrics.webhook_requests.labels(type=label, outcome=outcome).inc()
    if mtype == "tool-calls":
        svc.metrics.turn_duration.labels(route="tool-calls", outcome=outcome).observe(elapsed)
    log.info("webhook", type=mtype, outcome=outcome, ms=round(elapsed * 1000, 1))
    return JSONResponse(reply)


def _safe_reply(mtype: str, message: dict[str, Any], fallback: str) -> dict[str, Any]:
    """A VAPI-valid reply when something unexpected broke: never a 5xx where VAPI waits."""
    if mtype != "tool-calls":
        return {}
    try:
        calls = extract_tool_calls(message)
    except Exception:
        return {"error": fallback}
    return tool_results_reply([ToolResult(call, result=fallback) for call in calls])


def routes() -> list[Route]:
    return [Route("/vapi/webhook", vapi_webhook, methods=["POST"])]
