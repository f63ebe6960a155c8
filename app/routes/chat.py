"""``POST /api/chat``: one question, one spoken-style answer, as the ancestor's clients expect.

Request ``{"message": str, "model"?: str, "temperature"?: 0..2, "max_tokens"?: int ≥ 1}``; reply
``{"response", "model", "job_id", "latency_ms", "fallback"}`` (HTTP 200). The answer is one
RunPod job (contract v1 ``type: "chat"`` with the message as the user turn) under
``CHAT_BUDGET_MS``, through :class:`app.turns.Turns` like every other turn: admission, the
circuit breaker, the cold-start shortening. When RunPod cannot answer in time the reply is the
fallback sentence for the reason (``settings.fallback_for``: slow, failed, overloaded,
breaker_open), ``fallback`` names the reason and ``pete_fallback_replies_total{reason}`` counts
it. Bad JSON is 400; a body that breaks the contract is 422 with ``field`` naming the key.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.budget import Deadline
from app.errors import GatewayError, UpstreamError
from app.requestlog import set_outcome
from app.routes.common import BodyTooLarge, error_response, read_body, services
from app.turns import fallback_reason
from gpu_worker.contract import ContractError, build_job_input, normalize_output

if TYPE_CHECKING:
    from app.main import Services

log = structlog.get_logger(__name__)

ROUTE = "chat"
MAX_MESSAGE_CHARS = 32_000


class InvalidChat(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def chat_job(body: Any) -> dict[str, Any]:
    """A ``/api/chat`` body → contract v1 job input (raises InvalidChat naming the field)."""
    if not isinstance(body, dict):
        raise InvalidChat("body", "must be a JSON object")
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise InvalidChat("message", "must be a non-empty string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidChat("message", f"must be at most {MAX_MESSAGE_CHARS} characters")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidChat("model", "must be a string")
    try:
        return build_job_input(
            type="chat",
            messages=[{"role": "user", "content": message}],
            model=model or None,
            temperature=body.get("temperature"),
            max_tokens=body.get("max_tokens"),
        )
    except ContractError as exc:
        raise InvalidChat(exc.field, exc.problem) from None


async def chat(request: Request) -> Response:
    svc = services(request)
    started = time.perf_counter()
    try:
        raw = await read_body(request, svc.settings.max_body_bytes)
    except BodyTooLarge as exc:
        return error_response(413, str(exc))
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "the body is not valid JSON")
    try:
        job = chat_job(body)
    except InvalidChat as exc:
        return error_response(422, str(exc), field=exc.field)
    text, model, job_id, reason = await answer(svc, job)
    elapsed = time.perf_counter() - started
    if reason is not None:
        text = svc.settings.fallback_for(reason)
        svc.metrics.fallbacks.labels(reason=reason).inc()
        if reason == "slow":
            svc.metrics.budget_exceeded.labels(route=ROUTE).inc()
        log.info("chat_fallback", reason=reason)
    outcome = "ok" if reason is None else "fallback"
    svc.metrics.turn_duration.labels(route=ROUTE, outcome=outcome).observe(elapsed)
    set_outcome(request, outcome)
    return JSONResponse(
        {
            "response": text,
            "model": model,
            "job_id": job_id,
            "latency_ms": round(elapsed * 1000),
            "fallback": reason,
        }
    )


async def answer(svc: Services, job: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    """``(text, model, job_id, fallback reason or None)`` for one chat job within the budget."""
    model = job.get("model") or svc.settings.model_name
    deadline = Deadline.after_ms(svc.settings.chat_budget_ms)
    try:
        with svc.turns.admit():
            # The deadline is also a hard guard around everything the job awaits.
            async with asyncio.timeout_at(deadline.at):
                result = await svc.turns.run(job, deadline)
    except (GatewayError, TimeoutError) as exc:
        job_id = getattr(exc, "job_id", None)
        if isinstance(exc, UpstreamError):
            log.warning("chat_job_failed", error=str(exc), job_id=job_id)
        return "", model, job_id, fallback_reason(exc)
    structlog.contextvars.bind_contextvars(job_id=result.id)
    output = normalize_output(result.output)
    if output.error or not output.text.strip():
        log.warning("chat_job_empty", job_id=result.id, error=output.error)
        return "", model, result.id, "failed"
    return output.text.strip(), output.model or model, result.id, None


def routes() -> list[Route]:
    return [Route("/api/chat", chat, methods=["POST"])]
