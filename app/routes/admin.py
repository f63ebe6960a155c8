"""Admin routes (issue #6): look at and steer the RunPod endpoint behind the gateway.

Every ``/admin/*`` route needs ``Authorization: Bearer <ADMIN_TOKEN>`` (constant-time compare;
a wrong or missing token is 401 and counts ``pete_webhook_auth_failures_total{reason=
"admin_bad_token"}``). With ``ADMIN_TOKEN`` unset the admin surface does not exist: every route
answers the same 404 as an unknown path.

* ``GET /admin/status`` — RunPod health snapshot, breaker, turns in flight, upstream limits,
  budgets, version.
* ``POST /admin/warmup`` ``{"count": N}`` (1..10, default 1) — N ``warmup`` jobs via ``/run``.
* ``POST /admin/purge-queue`` — RunPod ``/purge-queue`` (queued jobs only, runpod.md §1.5).
* ``GET /admin/jobs/{job_id}`` — RunPod ``/status``; ``POST /admin/jobs/{job_id}/cancel`` (404 for
  a job RunPod does not know, like the status route).
* ``GET /admin/config`` — the effective settings, secrets masked.
* ``POST /admin/action`` ``{"action": "status"|"warmup"|"purge_queue"|"config", "count"?}`` —
  the ancestor's single admin endpoint, mapped onto the routes above (``count``, when sent, must
  be 1..10 whatever the action).

RunPod failures answer 502 with a JSON ``error``; bad bodies 400 (not JSON) or 422 (the field).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.budget import Deadline
from app.errors import GatewayError, JobFailed
from app.metrics import version
from app.routes.common import BodyTooLarge, error_response, read_body, services
from app.routes.ops import bearer_matches
from gpu_worker.contract import build_job_input

log = structlog.get_logger(__name__)

MAX_WARMUP = 10
WARMUP_POLICY = {"ttl": 60_000, "executionTimeout": 30_000}
WARMUP_SUBMIT_MS = 3000  # to get each warm-up queued with /run (nobody waits for its result)
STATUS_TIMEOUT_MS = 5000
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MAX_ADMIN_BODY = 4096

Handler = Callable[[Request], Awaitable[Response]]


class BadBody(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def guarded(handler: Handler) -> Handler:
    """404 while ADMIN_TOKEN is unset, 401 for a wrong token, else the handler."""

    async def endpoint(request: Request) -> Response:
        svc = services(request)
        token = svc.settings.admin_token.reveal()
        if not token:
            return PlainTextResponse("Not Found", status_code=404)
        if not bearer_matches(request, token):
            svc.metrics.auth_failures.labels(reason="admin_bad_token").inc()
            response = error_response(401, "admin routes need Authorization: Bearer <ADMIN_TOKEN>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="admin"'
            return response
        return await handler(request)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


async def status(request: Request) -> Response:
    """Health, breaker, load and budgets in one look."""
    svc = services(request)
    s = svc.settings
    return JSONResponse(
        {
            "version": version(),
            "endpoint_url": s.endpoint_url,
            "runpod": svc.health.snapshot(),
            "breaker": svc.breaker.snapshot(),
            "inflight_turns": svc.turns.inflight,
            "max_inflight_turns": s.max_inflight_turns,
            "background_tasks": len(svc.background),
            "upstream_limits": svc.limits.snapshot(),
            "budgets_ms": {
                "tool": s.tool_budget_ms,
                "turn": s.turn_budget_ms,
                "first_token": s.first_token_budget_ms,
                "stream_gap": s.stream_gap_ms,
                "chat": s.chat_budget_ms,
                "cold_start": s.cold_start_budget_ms,
                "assistant_request": s.assistant_request_budget_ms,
            },
        }
    )


async def warmup(request: Request) -> Response:
    """Submit ``count`` warm-up jobs with ``/run``."""
    try:
        count = warmup_count(await _json_body(request, default={}))
    except BadBody as exc:
        return _bad(exc)
    return await _warmup(request, count)


async def _warmup(request: Request, count: int) -> Response:
    runpod = services(request).runpod
    body = {"input": build_job_input(type="warmup"), "policy": WARMUP_POLICY}
    results = await asyncio.gather(
        *(
            runpod.submit(body, Deadline.after_ms(WARMUP_SUBMIT_MS), queue_only=True)
            for _ in range(count)
        ),
        return_exceptions=True,
    )
    submitted = [{"id": r["id"], "status": r["status"]} for r in results if isinstance(r, dict)]
    failed = [_error_text(r) for r in results if isinstance(r, BaseException)]
    log.info("admin_warmup", requested=count, submitted=len(submitted), failed=len(failed))
    code = 200 if submitted else 502
    return JSONResponse({"requested": count, "submitted": submitted, "failed": failed}, code)


def warmup_count(body: Any) -> int:
    """The validated ``count`` of a warm-up request (raises BadBody naming the field)."""
    if not isinstance(body, dict):
        raise BadBody(422, "the body must be a JSON object", "body")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_WARMUP:
        raise BadBody(422, f"count must be an integer from 1 to {MAX_WARMUP}", "count")
    return count


async def purge_queue(request: Request) -> Response:
    """RunPod ``/purge-queue``: drop queued jobs (running ones go on)."""
    try:
        result = await services(request).runpod.purge_queue()
    except (GatewayError, httpx.HTTPError, TimeoutError) as exc:
        return error_response(502, _error_text(exc))
    log.info("admin_purge_queue", removed=result.get("removed"))
    return JSONResponse(result)


async def job_status(request: Request) -> Response:
    """RunPod ``/status/{job_id}`` as RunPod answered it."""
    job_id = request.path_params["job_id"]
    if not _JOB_ID.match(job_id):
        return error_response(422, "job_id must be 1-128 letters, digits, '-' or '_'")
    try:
        data = await services(request).runpod.status(job_id, Deadline.after_ms(STATUS_TIMEOUT_MS))
    except JobFailed as exc:
        if exc.status == "NOT_FOUND":
            return error_response(404, "RunPod does not know this job (or it expired)")
        return error_response(502, _error_text(exc))
    except GatewayError as exc:
        return error_response(502, _error_text(exc))
    if data is None:
        return error_response(502, "RunPod did not answer the status request")
    return JSONResponse(data)


async def cancel_job(request: Request) -> Response:
    """RunPod ``/cancel/{job_id}``."""
    job_id = request.path_params["job_id"]
    if not _JOB_ID.match(job_id):
        return error_response(422, "job_id must be 1-128 letters, digits, '-' or '_'")
    outcome = await services(request).runpod.cancel(job_id)
    if outcome == "not_found":
        return error_response(404, "RunPod does not know this job (or it expired)")
    ok = outcome == "cancelled"
    return JSONResponse({"id": job_id, "cancelled": ok}, status_code=200 if ok else 502)


async def config(request: Request) -> Response:
    """The effective settings, secrets shown as ``***``."""
    return JSONResponse(services(request).settings.public_view())


ACTIONS = ("status", "warmup", "purge_queue", "config")


async def action(request: Request) -> Response:
    """The ancestor's ``{"action": ...}`` endpoint."""
    try:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadBody(422, "the body must be a JSON object", "body")
        name = body.get("action")
        if name not in ACTIONS:
            raise BadBody(422, f"action must be one of {', '.join(ACTIONS)}", "action")
        # count is validated whenever it is sent (it only means something for warmup)
        count = warmup_count(body) if name == "warmup" or "count" in body else 0
    except BadBody as exc:
        return _bad(exc)
    if name == "status":
        return await status(request)
    if name == "warmup":
        return await _warmup(request, count)
    if name == "purge_queue":
        return await purge_queue(request)
    return await config(request)


async def _json_body(request: Request, default: Any = None) -> Any:
    try:
        raw = await read_body(request, _MAX_ADMIN_BODY)
    except BodyTooLarge as exc:
        raise BadBody(413, str(exc)) from None
    if not raw and default is not None:  # no body at all; whitespace is not JSON (400)
        return default
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadBody(400, "the body is not valid JSON") from None


def _bad(exc: BadBody) -> Response:
    extra = {"field": exc.field} if exc.field else {}
    return error_response(exc.status, str(exc), **extra)


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def routes() -> list[Route]:
    return [
        Route("/admin/status", guarded(status), methods=["GET"]),
        Route("/admin/warmup", guarded(warmup), methods=["POST"]),
        Route("/admin/purge-queue", guarded(purge_queue), methods=["POST"]),
        Route("/admin/jobs/{job_id}", guarded(job_status), methods=["GET"]),
        Route("/admin/jobs/{job_id}/cancel", guarded(cancel_job), methods=["POST"]),
        Route("/admin/config", guarded(config), methods=["GET"]),
        Route("/admin/action", guarded(action), methods=["POST"]),
    ]
