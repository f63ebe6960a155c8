"""``POST /vapi/webhook``: every VAPI server message (vapi.md §1–§4).

Thin on purpose: read the raw body (413 past ``MAX_BODY_BYTES`` without reading it whole), verify
it (vapi.md §4: shared secret, bearer or HMAC over the raw bytes; 401 with a body that reveals
nothing, the reason counted), parse the envelope (400 with a JSON reason), then let
:class:`app.webhooks.Webhooks` decide the reply. Where VAPI expects a reply it always gets HTTP 200
with a VAPI-shaped body; informational messages get ``200 {}`` at once and never a RunPod job.
"""

from __future__ import annotations

import time

import structlog
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.metrics import type_label
from app.requestlog import set_outcome
from app.routes.common import BodyTooLarge, error_response, read_body, services
from app.vapi.auth import UNAUTHORIZED_BODY, UNAUTHORIZED_STATUS, verify
from app.vapi.messages import BadRequest, parse_envelope

log = structlog.get_logger(__name__)

NON_JSON_TYPES = ("multipart/", "application/x-www-form-urlencoded", "text/html")


async def vapi_webhook(request: Request) -> JSONResponse:
    svc = services(request)
    started = time.perf_counter()
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(NON_JSON_TYPES):
        svc.metrics.webhook_requests.labels(type="unknown", outcome="bad_request").inc()
        return error_response(415, "send the VAPI message as application/json")
    try:
        body = await read_body(request, svc.settings.max_body_bytes)
    except BodyTooLarge as exc:
        svc.metrics.webhook_requests.labels(type="unknown", outcome="too_large").inc()
        return error_response(413, str(exc))
    auth = verify(request.headers, body, svc.auth, time.time())
    if not auth.ok:
        svc.metrics.auth_failures.labels(reason=auth.reason).inc()
        svc.metrics.webhook_requests.labels(type="unknown", outcome="unauthorized").inc()
        log.warning("webhook_rejected", reason=auth.reason)
        return JSONResponse(UNAUTHORIZED_BODY, status_code=UNAUTHORIZED_STATUS)
    try:
        msg = parse_envelope(body)
    except BadRequest as exc:
        svc.metrics.webhook_requests.labels(type="unknown", outcome="bad_request").inc()
        return JSONResponse(exc.as_dict(), status_code=400)
    structlog.contextvars.bind_contextvars(
        call_id=msg.call_id, message_type=msg.type, auth=auth.reason
    )
    try:
        reply, outcome, after = await svc.webhooks.reply(msg)
    except Exception:  # the dispatcher never raises; this is the last line of defence
        log.exception("webhook_failed")
        reply, outcome, after = svc.webhooks.fallback(msg), "fallback", None
    elapsed = time.perf_counter() - started
    svc.metrics.webhook_requests.labels(type=type_label(msg.type), outcome=outcome).inc()
    if msg.expects_reply:
        route = msg.type if msg.type in ("tool-calls", "assistant-request") else "webhook"
        svc.metrics.turn_duration.labels(route=route, outcome=outcome).observe(elapsed)
    set_outcome(request, outcome)  # the canonical request line (app/requestlog.py) carries it
    return JSONResponse(reply, background=BackgroundTask(after) if after else None)


def routes() -> list[Route]:
    return [Route("/vapi/webhook", vapi_webhook, methods=["POST"])]
