"""Every Prometheus collector of the gateway, in one place, on a registry the app owns.

Names are a contract (issue #6): prefix ``pete_``; labels are low-cardinality (never a call id or
job id; unknown message types collapse to ``other``). Tests build ``Metrics(CollectorRegistry())``.
"""

from __future__ import annotations

import platform
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Voice-scale buckets: 10 ms to 30 s.
TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 12, 20, 30)
QUEUE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)

KNOWN_TYPES = frozenset(
    {
        "assistant-request", "tool-calls", "function-call", "transfer-destination-request",
        "handoff-destination-request", "knowledge-base-request", "status-update",
        "end-of-call-report", "transcript", "conversation-update", "speech-update", "hang",
        "user-interrupted", "model-output", "voice-input", "phone-call-control",
        "transfer-update", "language-change-detected", "language-changed",
        "assistant.started", "assistant.speechStarted", "call.endpointing.request",
        "campaign.predial", "voice-request",
    }
)  # fmt: skip


def type_label(message_type: str) -> str:
    if message_type.startswith("transcript"):
        return "transcript"
    if message_type in KNOWN_TYPES:
        return message_type
    for prefix in ("chat.", "session.", "call."):
        if message_type.startswith(prefix):
            return prefix + "*"
    return "other"


def _version() -> str:
    try:
        return metadata.version("peteollama")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.webhook_requests = Counter(
            "pete_webhook_requests",
            "VAPI webhooks by message type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        self.turn_duration = Histogram(
            "pete_turn_duration_seconds",
            "Time to answer a turn, by route and outcome",
            ["route", "outcome"],
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "pete_first_token_seconds",
            "Custom-LLM time to first streamed model token",
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.runpod_requests = Counter(
            "pete_runpod_requests",
            "Requests to RunPod by operation and HTTP code",
            ["op", "code"],
            registry=r,
        )
        self.job_queue = Histogram(
            "pete_runpod_job_queue_seconds",
            "RunPod delayTime (queue + cold start)",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.job_execution = Histogram(
            "pete_runpod_job_execution_seconds",
            "RunPod executionTime",
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.budget_exceeded = Counter(
            "pete_turn_budget_exceeded", "Turns whose budget ran out", ["route"], registry=r
        )
        self.fallbacks = Counter(
            "pete_fallback_replies", "Fallback replies by reason", ["reason"], registry=r
        )
        self.inflight = Gauge("pete_inflight_turns", "Turns in flight", registry=r)
        self.breaker_open = Gauge(
            "pete_circuit_breaker_open", "1 while the RunPod breaker is open", registry=r
        )
        self.auth_failures = Counter(
            "pete_webhook_auth_failures", "Rejected webhooks by reason", ["reason"], registry=r
        )
        self.workers = Gauge(
            "pete_runpod_workers", "RunPod workers by state (from /health)", ["state"], registry=r
        )
        self.jobs = Gauge(
            "pete_runpod_jobs", "RunPod jobs by state (from /health)", ["state"], registry=r
        )
        self.late_results = Counter(
            "pete_late_results", "Tool jobs that finished after their turn gave up", registry=r
        )
        self.build_info = Gauge(
            "pete_build_info", "Build information", ["version", "python"], registry=r
        )
        self.build_info.labels(version=_version(), python=platform.python_version()).set(1)
