"""The gateway application: ``create_app(settings)`` plus a lifespan that owns shared resources.

The lifespan opens one pooled, keep-alive upstream HTTP client (app/upstream.py: aiohttp by
default, httpx with ``RUNPOD_HTTP_TRANSPORT=httpx``), builds the services the routes use, and on
shutdown drains background work (best-effort cancels) before closing the pool. Nothing here is a
module-level singleton: tests build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware

from app.background import Background
from app.breaker import CircuitBreaker
from app.health import HealthMonitor
from app.idempotency import InMemoryIdempotencyStore
from app.limits import UpstreamLimits
from app.livecall import LateDelivery
from app.llm import LlmTurns
from app.metrics import Metrics
from app.requestlog import RequestLog
from app.routes import admin, chat, llm, ops, webhook
from app.runpod import RunPodClient, Tuning
from app.settings import Settings
from app.tool_registry import build_registry, template_tool_names
from app.tools import ToolRunner
from app.turns import Turns
from app.upstream import Upstream, build_upstream
from app.vapi.assistant import AssistantTemplate, load_template
from app.vapi.auth import AuthConfig, configured
from app.webhooks import Webhooks

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    background: Background
    http: Upstream
    runpod: RunPodClient
    tools: ToolRunner
    breaker: CircuitBreaker
    health: HealthMonitor
    turns: Turns
    limits: UpstreamLimits
    llm: LlmTurns
    auth: AuthConfig
    webhooks: Webhooks


DEFAULT_TEMPLATE = Path(__file__).parent / "assistants" / "default.yaml"


def auth_config(settings: Settings) -> AuthConfig:
    return AuthConfig(
        secret=settings.vapi_secret.reveal() or None,
        secret_header=settings.vapi_secret_header,
        hmac_secret=settings.vapi_hmac_secret.reveal() or None,
        hmac_algorithm=settings.vapi_hmac_algorithm,  # type: ignore[arg-type]
        hmac_header=settings.vapi_hmac_header,
        hmac_encoding=settings.vapi_hmac_encoding,  # type: ignore[arg-type]
        hmac_timestamp_header=settings.vapi_hmac_timestamp_header,
        hmac_max_skew_s=settings.vapi_hmac_max_skew_s,
    )


def assistant_template(settings: Settings) -> AssistantTemplate:
    """The assistant template (``ASSISTANT_TEMPLATE`` or the packaged demo); TemplateError."""
    return load_template(settings.assistant_template or DEFAULT_TEMPLATE)


def warn_if_open(settings: Settings, auth: AuthConfig) -> None:
    if not configured(auth):
        log.warning(
            "webhook_verification_off",
            hint="anyone who knows the URL can spend GPU time: set VAPI_SECRET or VAPI_HMAC_SECRET",
        )
    if not settings.llm_api_key:
        log.warning(
            "custom_llm_open", hint="set LLM_API_KEY and a matching VAPI custom-llm credential"
        )


def create_app(settings: Settings, *, registry: CollectorRegistry | None = None) -> Starlette:
    metrics = Metrics(registry)
    auth = auth_config(settings)
    template = assistant_template(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        background = Background()
        limits = UpstreamLimits(
            dict(settings.runpod_concurrency), dict(settings.runpod_rate_per_10s)
        )
        http = build_upstream(
            settings.runpod_http_transport, max_connections=settings.runpod_max_connections
        )
        try:
            runpod = RunPodClient(
                limits=limits,
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
            breaker = CircuitBreaker(
                failures=settings.breaker_failures,
                reset_s=settings.breaker_reset_s,
                on_change=lambda state: metrics.breaker_open.set(1 if state == "open" else 0),
            )
            health = HealthMonitor(
                runpod=runpod,
                metrics=metrics,
                interval_s=settings.health_poll_s,
                keep_warm_interval_s=settings.keep_warm_interval_s,
            )
            turns = Turns(
                runpod=runpod,
                breaker=breaker,
                health=health,
                metrics=metrics,
                background=background,
                max_inflight=settings.max_inflight_turns,
                cold_start_budget_ms=settings.cold_start_budget_ms,
                job_format=settings.runpod_job_format,
                model=settings.runpod_model or None,
                stream_poll_ms=settings.stream_poll_ms,
            )
            idempotency = InMemoryIdempotencyStore(
                max_entries=settings.idempotency_max_entries,
                ttl_s=max(1, settings.idempotency_ttl_s),
            )
            registry = build_registry(
                template_tools=template_tool_names(template.base.get("assistant")),
                configured=settings.runpod_tools.split(","),
                destinations=template.destinations,
            )
            tools = ToolRunner(
                turns=turns,
                settings=settings,
                registry=registry,
                idempotency=idempotency,
                background=background,
                late_delivery=LateDelivery(http) if settings.late_result_delivery else None,
            )
            app.state.services = Services(
                settings=settings,
                metrics=metrics,
                background=background,
                http=http,
                runpod=runpod,
                tools=tools,
                breaker=breaker,
                health=health,
                turns=turns,
                limits=limits,
                llm=LlmTurns(turns=turns, settings=settings, metrics=metrics),
                auth=auth,
                webhooks=Webhooks(
                    settings=settings,
                    tools=tools,
                    turns=turns,
                    template=template,
                    idempotency=idempotency,
                ),
            )
            warn_if_open(settings, auth)
            health_task = asyncio.create_task(health.run(), name="runpod-health")
            log.info("gateway_started", endpoint=settings.endpoint_url, port=settings.port)
            try:
                yield
            finally:
                health_task.cancel()
                await asyncio.gather(health_task, return_exceptions=True)
                await background.drain(grace_s=settings.runpod_cancel_timeout_ms / 1000 + 1)
                log.info("gateway_stopped")
        finally:
            await http.aclose()

    app = Starlette(
        routes=[
            *webhook.routes(),
            *llm.routes(),
            *chat.routes(),
            *ops.routes(),
            *admin.routes(),
        ],
        middleware=[Middleware(RequestLog, metrics=metrics)],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    return app
