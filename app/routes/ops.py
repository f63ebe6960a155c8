"""Operations routes (issue #6): liveness, readiness, metrics and the API description.

* ``GET /healthz`` — the process is alive and serving; never calls upstream. ``GET /health`` is
  the same answer, kept for the ancestor's users and probes.
* ``GET /readyz`` — 200 when the gateway has started (its settings were valid, or it would not
  have) and RunPod's ``/health`` answered within ``READY_MAX_AGE_S`` (read by the background
  monitor, runpod.md §1.5); otherwise 503 with a JSON ``reason``. An open circuit breaker does not
  make the gateway unready: callers still get a spoken fallback, and pulling every replica out
  of a load balancer at once would turn that into silence.
* ``GET /metrics`` — the Prometheus text exposition (:func:`app.metrics.render`); with
  ``METRICS_TOKEN`` set it needs ``Authorization: Bearer <token>`` (constant-time compare).
* ``GET /openapi.json`` — the OpenAPI 3.1 document of every route (:mod:`app.openapi`).
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.metrics import Metrics, render
from app.openapi import openapi_document
from app.routes.common import error_response


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    svc = getattr(request.app.state, "services", None)
    if svc is None:
        return _not_ready("the gateway is still starting")
    age = svc.health.age_s()
    limit = svc.settings.ready_max_age_s
    runpod = {"age_s": None if age is None else round(age, 3), "max_age_s": limit,
              "last_error": svc.health.last_error, "cold": svc.health.cold}  # fmt: skip
    if age is None:
        return _not_ready("RunPod /health has not answered yet", runpod=runpod)
    if age > limit:
        return _not_ready(f"RunPod /health last answered {age:.1f} s ago", runpod=runpod)
    return JSONResponse({"status": "ready", "runpod": runpod, "breaker": svc.breaker.state})


def _not_ready(reason: str, **extra: object) -> JSONResponse:
    return JSONResponse({"status": "not_ready", "reason": reason, **extra}, status_code=503)


def bearer_matches(request: Request, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    svc = getattr(request.app.state, "services", None)
    if svc is None:  # fail closed: the token is not known before start-up
        return error_response(503, "the gateway is still starting")
    token = svc.settings.metrics_token.reveal()
    if token and not bearer_matches(request, token):
        registry.auth_failures.labels(reason="metrics_bad_token").inc()
        response = error_response(401, "metrics need Authorization: Bearer <METRICS_TOKEN>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = render(registry)
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/health", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
