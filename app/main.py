"""The gateway application: ``create_app(settings)`` plus a lifespan that owns shared resources.

The lifespan opens one pooled, keep-alive HTTP client for RunPod (httpx's API; the transport is
injectable so tests and the benchmark can choose it), builds the services the routes use, and on
shutdown drains background work (best-effort cancels) before closing the pool. Nothing here is a
module-level singleton: tests build as many apps as they like.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import structlog
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Route

from app.background import Background
from app.metrics import Metrics
from app.routes.ops import healthz
from app.routes.webhook import vapi_webhook
from app.runpod import RunPodClient, Tuning
from app.settings import Settings
from app.tools import ToolRunner

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    background: Background
    http: httpx.AsyncClient
    runpod: RunPodClient
    tools: ToolRunner


def build_http_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.runpod_max_connections,
        max_keepalive_connections=settings.runpod_max_connections,
        keepalive_expiry=30,
    )
    # Per-request timeouts come from each turn's deadline; this is only the outer bound.
    return httpx.AsyncClient(transport=transport, limits=limits, timeout=httpx.Timeout(30.0))


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    registry: CollectorRegistry | None = None,
) -> Starlette:
    metrics = Metrics(registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        background = Background()
        async with build_http_client(settings, transport) as http:
            runpod = RunPodClient(
                http=http,
                endpoint_url=settings.endpoint_url,
                api_key=settings.runpod_api_key.reveal(),
                metrics=metrics,
                background=background,
                tuning=Tuning(
                    wait_margin_ms=settings.runpod_wait_margin_ms,
                    poll_initial_ms=settings.runpod_poll_initial_ms,
                    poll_max_ms=settings.runpod_poll_max_ms,
                    cancel_timeout_ms=settings.runpod_cancel_timeout_ms,
                ),
            )
            app.state.services = Services(
                settings=settings,
                metrics=metrics,
                background=background,
                http=http,
                runpod=runpod,
                tools=ToolRunner(
                    runpod=runpod,
                    metrics=metrics,
                    budget_ms=settings.tool_budget_ms,
                    fallback=settings.fallback_message,
                ),
            )
            log.info("gateway_started", endpoint=settings.endpoint_url, port=settings.port)
            try:
                yield
            finally:
                await background.drain(grace_s=settings.runpod_cancel_timeout_ms / 1000 + 1)
                log.info("gateway_stopped")

    app = Starlette(
        routes=[
            Route("/vapi/webhook", vapi_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    return app
