"""The custom-LLM routes (vapi.md §6): ``POST /vapi/chat/completions`` — VAPI's ``model.url`` is
``{PUBLIC_URL}/vapi`` — plus ``/vapi/chat/completions/chat/completions`` (the docs' doubled path)
and the same handler at ``POST /v1/chat/completions`` for any OpenAI client.

With ``LLM_API_KEY`` set, ``Authorization: Bearer <key>`` is required (how VAPI sends a
custom-llm credential), compared in constant time. Bad requests get OpenAI-shaped errors
(400 invalid JSON, 401, 413, 422 invalid fields); everything after acceptance is a 200 stream
or completion, with the fallback sentence when RunPod cannot answer in time.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.openai_format import completion_id, error_body
from app.routes.common import BodyTooLarge, read_body, services
from gpu_worker.contract import ContractError, build_job_input, is_role

log = structlog.get_logger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class InvalidRequest(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def _error(
    status: int, message: str, *, kind: str, code: str, param: str | None = None
) -> Response:
    body = error_body(message, kind=kind, code=code)
    body["error"]["param"] = param
    return JSONResponse(body, status_code=status)


def authorized(request: Request, key: str) -> bool:
    if not key:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


def job_from_request(body: Any, *, max_tokens_default: int | None = None) -> dict[str, Any]:
    """An OpenAI/VAPI chat request body → contract v1 job input (raises InvalidRequest)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body", "the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages", "messages must be a non-empty array")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not is_role(m.get("role")):
            raise InvalidRequest(f"messages[{i}]", "each message needs a valid role")
        tool_calls = m.get("tool_calls")
        if tool_calls is not None and not (
            isinstance(tool_calls, list) and all(isinstance(c, dict) for c in tool_calls)
        ):
            raise InvalidRequest(
                f"messages[{i}].tool_calls", "tool_calls must be an array of objects"
            )
        _optional(m, "tool_call_id", str, "a string", where=f"messages[{i}].")
    # Optional fields of the wrong type are refused, not silently ignored (null = absent), so
    # e.g. "stream": "true" is a 422 rather than a non-streamed answer.
    _optional(body, "model", str, "a string")
    _optional(body, "stream", bool, "a boolean")
    _optional(body, "call", dict, "an object")
    _optional(body, "tools", list, "an array of function tools")
    limit = body.get("max_completion_tokens")  # max_tokens is the contract's to check
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidRequest(
            "max_completion_tokens", "max_completion_tokens must be a positive integer"
        )
    tools = body.get("tools")
    if tools is None and isinstance(body.get("functions"), list):  # legacy OpenAI functions
        tools = [{"type": "function", "function": f} for f in body["functions"]]
    call = body.get("call") or {}
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = max_tokens_default
    try:
        return build_job_input(
            type="chat",
            messages=messages,
            max_tokens=max_tokens,
            temperature=body.get("temperature"),
            stream=True,
            call_id=str(call.get("id") or call.get("callId") or "") or None,
            tools=tools or (),
        )
    except ContractError as exc:
        raise InvalidRequest(exc.field, str(exc)) from None


def _optional(body: dict[str, Any], key: str, kind: type, what: str, *, where: str = "") -> None:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"{where}{key}", f"{key} must be {what}")


async def chat_completions(request: Request) -> Response:
    svc = services(request)
    if not authorized(request, svc.settings.llm_api_key.reveal()):
        svc.metrics.auth_failures.labels(reason="llm_bad_key").inc()
        return _error(
            401, "invalid or missing API key", kind="invalid_request_error", code="invalid_api_key"
        )
    try:
        raw = await read_body(request, svc.settings.max_body_bytes)
    except BodyTooLarge as exc:
        return _error(413, str(exc), kind="invalid_request_error", code="request_too_large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _error(
            400, "the body is not valid JSON", kind="invalid_request_error", code="invalid_json"
        )
    try:
        job = job_from_request(body)
    except InvalidRequest as exc:
        return _error(
            422, str(exc), kind="invalid_request_error", code="invalid_value", param=exc.param
        )
    cid = completion_id()
    # The request's model is whatever the VAPI dashboard says; the worker serves its own MODEL
    # (or RUNPOD_MODEL), so the name is only echoed back in the chunks.
    model = body.get("model") or svc.settings.model_name
    structlog.contextvars.bind_contextvars(call_id=job.get("call_id"), turn_id=cid)
    if body.get("stream") is True:
        return StreamingResponse(
            svc.llm.stream(job, cid, model), media_type="text/event-stream", headers=SSE_HEADERS
        )
    job.pop("stream", None)
    return JSONResponse(await svc.llm.complete(job, cid, model))


def routes() -> list[Route]:
    return [
        Route("/vapi/chat/completions", chat_completions, methods=["POST"]),
        Route("/vapi/chat/completions/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    ]
