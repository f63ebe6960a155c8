"""One canonical log line per HTTP request, and fresh log context for each (STYLE.md §7).

:class:`RequestLog` is a pure ASGI middleware (no ``BaseHTTPMiddleware``: streaming replies and
the per-request contextvars stay intact). For each HTTP request it:

* clears structlog's contextvars and binds ``request_id`` — the caller's ``X-Request-ID`` when it
  is a short token, else a new one — which every line logged while serving the request carries;
  routes bind ``call_id``/``turn_id``/``job_id`` as they learn them;
* echoes the id in the ``X-Request-ID`` response header;
* writes one ``request`` line when the response is done: ``method``, ``path``, ``route`` (the
  matched template, e.g. ``/admin/jobs/{job_id}``), ``status``, ``duration_ms``, ``outcome``
  (what the route reported with :func:`set_outcome`, else ok / client_error / error from the
  status), plus whatever the route bound. Probes (``/healthz``, ``/health``, ``/readyz``,
  ``/metrics``) that succeed log at DEBUG, so a 1 s scrape does not flood INFO;
* counts ``pete_http_requests_total{route,method,code}``.

Never logged here: query strings, headers, bodies (they carry secrets and caller speech).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics

log = structlog.get_logger("app.request")

PROBES = frozenset({"/healthz", "/health", "/readyz", "/metrics"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def set_outcome(request: Request, outcome: str) -> None:
    """Let a route name its outcome (``fallback``, ``ack``, ...) for the canonical line."""
    request.scope.setdefault("state", {})["outcome"] = outcome


def new_request_id(header: str | None) -> str:
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class RequestLog:
    def __init__(self, app: ASGIApp, *, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        raw_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = new_request_id(raw_id)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500  # if the app dies before answering, uvicorn sends a 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # Context stays bound: uvicorn's "Exception in ASGI application" line, logged after
            # this returns, then carries the request_id. Each request runs in its own task, so
            # nothing leaks into the next one.
            self._finish(scope, status, time.perf_counter() - started)

    def _finish(self, scope: Scope, status: int, elapsed: float) -> None:
        route = _route_template(scope)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        if self.metrics is not None:
            self.metrics.http_requests.labels(route=route, method=method, code=str(status)).inc()
        state: dict[str, Any] = scope.get("state") or {}
        outcome = state.get("outcome") or _outcome_of(status)
        quiet = scope["path"] in PROBES and status < 400
        (log.debug if quiet else log.info)(
            "request",
            method=scope["method"],
            path=scope["path"],
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 1),
            outcome=outcome,
        )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    return "client_error" if status < 500 else "error"
