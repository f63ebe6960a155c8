"""Every Prometheus collector of the gateway, in one place, on a registry the app owns.

Names are a contract (issue #6): prefix ``pete_``; labels are low-cardinality (never a call id or
job id; unknown message types collapse to ``other``, unmatched paths to ``unmatched``). Tests
build ``Metrics(CollectorRegistry())``; :func:`render` is what ``GET /metrics`` serves.

Several uvicorn workers (``WEB_CONCURRENCY`` > 1) are separate processes, each with its own
counters. prometheus-client's multiprocess mode, switched on by ``PROMETHEUS_MULTIPROC_DIR`` (its
own variable, read when prometheus-client is imported; ``python -m app`` sets it up), keeps every
value in a per-process file there, and :func:`render` then merges all the files, so whichever
worker answers a scrape reports the whole gateway. Each gauge declares how it merges: turns in
flight add up over live workers, the breaker flag is the maximum over live workers, RunPod's
worker/job counts are the most recent reading, build info the maximum.
"""

from __future__ import annotations

import contextlib
import glob
import os
import platform
import re
from importlib import metadata

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from app.vapi.messages import KNOWN_TYPES, REPLY_TYPES

# Voice-scale buckets: 10 ms to 30 s.
_GROUPED = ("chat.", "session.", "call.")
TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 12, 20, 30)
QUEUE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


def type_label(message_type: str) -> str:
    """A bounded label for a VAPI message type: known types by name, transcripts as one, the
    ``chat.*``/``session.*``/``call.*`` families grouped, anything else ``other``."""
    if message_type.startswith("transcript"):
        return "transcript"
    if message_type in REPLY_TYPES or (
        message_type in KNOWN_TYPES and not message_type.startswith(_GROUPED)
    ):
        return message_type
    for prefix in _GROUPED:
        if message_type.startswith(prefix):
            return prefix + "*"
    return "other"


def version() -> str:
    """The installed package version (``0+unknown`` from a bare source tree)."""
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
        self.inflight = Gauge(
            "pete_inflight_turns", "Turns in flight", registry=r, multiprocess_mode="livesum"
        )
        self.breaker_open = Gauge(
            "pete_circuit_breaker_open",
            "1 while the RunPod breaker is open",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.auth_failures = Counter(
            "pete_webhook_auth_failures", "Rejected webhooks by reason", ["reason"], registry=r
        )
        self.workers = Gauge(
            "pete_runpod_workers",
            "RunPod workers by state (from /health)",
            ["state"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.jobs = Gauge(
            "pete_runpod_jobs",
            "RunPod jobs by state (from /health)",
            ["state"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.late_results = Counter(
            "pete_late_results", "Tool jobs that finished after their turn gave up", registry=r
        )
        self.http_requests = Counter(
            "pete_http_requests",
            "HTTP requests by route template, method and status code",
            ["route", "method", "code"],
            registry=r,
        )
        self.build_info = Gauge(
            "pete_build_info",
            "Build information",
            ["version", "python"],
            registry=r,
            multiprocess_mode="max",
        )
        self.build_info.labels(version=version(), python=platform.python_version()).set(1)


def multiprocess_dir() -> str | None:
    """Where multiprocess mode keeps its files, or None when it is off in this process.

    prometheus-client decided at import time; this reports that decision, not today's env.
    """
    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def render(metrics: Metrics) -> tuple[bytes, str]:
    """The text exposition for ``GET /metrics`` and its content type.

    In multiprocess mode, every worker's files are merged, and the live-gauge files of workers
    that died (a crash leaves them behind) are dropped first.
    """
    path = multiprocess_dir()
    if path is None:
        return generate_latest(metrics.registry), CONTENT_TYPE_PLAIN_0_0_4
    prune_dead_workers(path)
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=path)
    return generate_latest(merged), CONTENT_TYPE_PLAIN_0_0_4


_LIVE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db$")


def prune_dead_workers(path: str) -> None:
    """``mark_process_dead`` for every pid whose live-gauge files outlived it."""
    pids = {int(m.group(1)) for f in glob.glob(os.path.join(path, "gauge_live*_*.db"))
            if (m := _LIVE_FILE.search(f))}  # fmt: skip
    for pid in pids:
        if not _alive(pid):
            with contextlib.suppress(FileNotFoundError):
                multiprocess.mark_process_dead(pid, path)


def reset_multiprocess_dir(path: str) -> None:
    """Empty (or create) the directory before workers start: stale files would be merged."""
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
