"""Gateway settings: read once from the environment into one frozen dataclass.

`Settings.from_env(mapping)` collects every missing or invalid key into one :class:`ConfigError`
(so an operator fixes them all in one go); secrets are :class:`Secret` values that print as
``***``. Nothing else in the gateway reads ``os.environ``.

Contract (issue #2, relied on by the launcher, the Procfile and outside checks):
``PORT`` (8000), ``HOST`` (0.0.0.0), ``RUNPOD_API_KEY``, ``RUNPOD_ENDPOINT_ID``,
``RUNPOD_ENDPOINT_URL`` (overrides; default ``https://api.runpod.ai/v2/{RUNPOD_ENDPOINT_ID}``),
``TOOL_BUDGET_MS`` (6000), ``FALLBACK_MESSAGE``, ``LOG_FORMAT`` (json|console), ``LOG_LEVEL``.
The other keys are listed in README's configuration table; each field below names its key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gpu_worker.envconfig import ConfigError, Secret

__all__ = ["ConfigError", "Secret", "Settings"]

RUNPOD_API_BASE = "https://api.runpod.ai/v2"
DEFAULT_FALLBACK = (
    "I'm sorry, I couldn't get that information just now. Let me help you another way."
)


_DEFAULT_CONCURRENCY = (
    ("runsync", 400),
    ("run", 200),
    ("status", 400),
    ("stream", 400),
    ("cancel", 20),
)
_DEFAULT_RATES = (
    ("runsync", 2000),
    ("run", 1000),
    ("status", 2000),
    ("stream", 2000),
    ("cancel", 100),
)  # runpod.md §1.8


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8000
    runpod_api_key: Secret = field(default_factory=lambda: Secret(""))
    runpod_endpoint_id: str = ""
    runpod_endpoint_url: str = ""
    tool_budget_ms: int = 6000
    fallback_message: str = DEFAULT_FALLBACK
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    # RunPod client tuning (runpod.md §1.2, §5)
    runpod_wait_margin_ms: int = 250
    runpod_poll_initial_ms: int = 100
    runpod_poll_max_ms: int = 1000
    runpod_cancel_timeout_ms: int = 2000
    runpod_max_connections: int = 512
    runpod_http_transport: str = "aiohttp"
    web_concurrency: int = 1
    # VAPI protocol and verification (issue #3, vapi.md §4)
    public_url: str = "http://127.0.0.1:8000"
    vapi_secret: Secret = field(default_factory=lambda: Secret(""))
    vapi_secret_header: str = "x-vapi-secret"
    vapi_hmac_secret: Secret = field(default_factory=lambda: Secret(""))
    vapi_hmac_algorithm: str = "sha256"
    vapi_hmac_header: str = "x-signature"
    vapi_hmac_encoding: str = "hex"
    vapi_hmac_timestamp_header: str = "x-timestamp"
    vapi_hmac_max_skew_s: int = 300
    assistant_request_budget_ms: int = 4000
    assistant_template: str = ""
    assistant_id: str = ""
    idempotency_ttl_s: int = 300
    idempotency_max_entries: int = 10_000
    runpod_tools: str = ""
    # Budgets, fallbacks, breaker, admission (issue #4)
    turn_budget_ms: int = 8000
    first_token_budget_ms: int = 1500
    stream_gap_ms: int = 2500
    stream_poll_ms: int = 100
    filler_message: str = "One moment."
    fallback_slow: str = ""
    fallback_failed: str = ""
    fallback_overloaded: str = ""
    fallback_breaker: str = ""
    llm_api_key: Secret = field(default_factory=lambda: Secret(""))
    model_name: str = "pete"
    breaker_failures: int = 5
    breaker_reset_s: int = 15
    health_poll_s: float = 5.0
    cold_start_budget_ms: int = 2500
    keep_warm_interval_s: int = 0
    late_result_delivery: bool = False
    max_inflight_turns: int = 5000
    runpod_concurrency: tuple[tuple[str, int], ...] = (
        ("runsync", 400),
        ("run", 200),
        ("status", 400),
        ("stream", 400),
        ("cancel", 20),
    )
    runpod_rate_per_10s: tuple[tuple[str, int], ...] = (
        ("runsync", 2000),
        ("run", 1000),
        ("status", 2000),
        ("stream", 2000),
        ("cancel", 100),
    )
    # Worker compatibility (issue #5)
    runpod_job_format: str = "pete"
    runpod_model: str = ""
    # Operations (issue #6)
    metrics_token: Secret = field(default_factory=lambda: Secret(""))
    admin_token: Secret = field(default_factory=lambda: Secret(""))
    chat_budget_ms: int = 15000
    ready_max_age_s: float = 30.0
    shutdown_grace_s: float = 15.0

    @property
    def endpoint_url(self) -> str:
        if self.runpod_endpoint_url:
            return self.runpod_endpoint_url.rstrip("/")
        return f"{RUNPOD_API_BASE}/{self.runpod_endpoint_id}"

    def fallback_for(self, reason: str) -> str:
        """The sentence spoken for a fallback ``reason`` (slow|failed|overloaded|breaker_open)."""
        specific = {
            "slow": self.fallback_slow,
            "failed": self.fallback_failed,
            "overloaded": self.fallback_overloaded,
            "breaker_open": self.fallback_breaker,
        }.get(reason, "")
        return specific or self.fallback_message

    def public_view(self) -> dict[str, Any]:
        """Effective settings for logs and admin, secrets masked."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = ("***" if value else "") if isinstance(value, Secret) else value
        out["endpoint_url"] = self.endpoint_url
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        reader = _Reader(env)
        values: dict[str, Any] = {
            "host": reader.text("HOST", "0.0.0.0"),
            "port": reader.integer("PORT", 8000, low=1, high=65535),
            "runpod_api_key": Secret(reader.text("RUNPOD_API_KEY", "")),
            "runpod_endpoint_id": reader.text("RUNPOD_ENDPOINT_ID", ""),
            "runpod_endpoint_url": reader.text("RUNPOD_ENDPOINT_URL", ""),
            "tool_budget_ms": reader.integer("TOOL_BUDGET_MS", 6000, low=100, high=300_000),
            "fallback_message": reader.text("FALLBACK_MESSAGE", DEFAULT_FALLBACK),
            "log_format": reader.choice("LOG_FORMAT", "auto", ("json", "console", "auto")),
            "log_level": reader.choice(
                "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True
            ),
            "max_body_bytes": reader.integer("MAX_BODY_BYTES", 1 << 20, low=1024, high=64 << 20),
            "runpod_wait_margin_ms": reader.integer(
                "RUNPOD_WAIT_MARGIN_MS", 250, low=0, high=10_000
            ),
            "runpod_poll_initial_ms": reader.integer(
                "RUNPOD_POLL_INITIAL_MS", 100, low=10, high=10_000
            ),
            "runpod_poll_max_ms": reader.integer("RUNPOD_POLL_MAX_MS", 1000, low=10, high=60_000),
            "runpod_cancel_timeout_ms": reader.integer(
                "RUNPOD_CANCEL_TIMEOUT_MS", 2000, low=100, high=60_000
            ),
            "runpod_max_connections": reader.integer(
                "RUNPOD_MAX_CONNECTIONS", 512, low=1, high=100_000
            ),
            "runpod_http_transport": reader.choice(
                "RUNPOD_HTTP_TRANSPORT", "aiohttp", ("aiohttp", "httpx")
            ),
            "web_concurrency": reader.integer("WEB_CONCURRENCY", 1, low=1, high=64),
            "public_url": reader.text("PUBLIC_URL", "").rstrip("/"),
            "vapi_secret": Secret(reader.text("VAPI_SECRET", "")),
            "vapi_secret_header": reader.text("VAPI_SECRET_HEADER", "x-vapi-secret").lower(),
            "vapi_hmac_secret": Secret(reader.text("VAPI_HMAC_SECRET", "")),
            "vapi_hmac_algorithm": reader.choice(
                "VAPI_HMAC_ALGORITHM", "sha256", ("sha256", "sha512", "sha1")
            ),
            "vapi_hmac_header": reader.text("VAPI_HMAC_HEADER", "x-signature").lower(),
            "vapi_hmac_encoding": reader.choice("VAPI_HMAC_ENCODING", "hex", ("hex", "base64")),
            "vapi_hmac_timestamp_header": reader.text(
                "VAPI_HMAC_TIMESTAMP_HEADER", "x-timestamp"
            ).lower(),
            "vapi_hmac_max_skew_s": reader.integer("VAPI_HMAC_MAX_SKEW_S", 300, low=1, high=86_400),
            "assistant_request_budget_ms": reader.integer(
                "ASSISTANT_REQUEST_BUDGET_MS", 4000, low=100, high=7000
            ),
            "assistant_template": reader.text("ASSISTANT_TEMPLATE", ""),
            "assistant_id": reader.text("ASSISTANT_ID", ""),
            "idempotency_ttl_s": reader.integer("IDEMPOTENCY_TTL_S", 300, low=0, high=86_400),
            "idempotency_max_entries": reader.integer(
                "IDEMPOTENCY_MAX_ENTRIES", 10_000, low=1, high=10_000_000
            ),
            "runpod_tools": reader.text("RUNPOD_TOOLS", ""),
            "turn_budget_ms": reader.integer("TURN_BUDGET_MS", 8000, low=100, high=300_000),
            "first_token_budget_ms": reader.integer(
                "FIRST_TOKEN_BUDGET_MS", 1500, low=50, high=300_000
            ),
            "stream_gap_ms": reader.integer("STREAM_GAP_MS", 2500, low=50, high=300_000),
            "stream_poll_ms": reader.integer("STREAM_POLL_MS", 100, low=10, high=5000),
            "filler_message": reader.text("FILLER_MESSAGE", "One moment."),
            "fallback_slow": reader.text("FALLBACK_SLOW", ""),
            "fallback_failed": reader.text("FALLBACK_FAILED", ""),
            "fallback_overloaded": reader.text("FALLBACK_OVERLOADED", ""),
            "fallback_breaker": reader.text("FALLBACK_BREAKER", ""),
            "llm_api_key": Secret(reader.text("LLM_API_KEY", "")),
            "model_name": reader.text("MODEL_NAME", "pete"),
            "breaker_failures": reader.integer("BREAKER_FAILURES", 5, low=1, high=10_000),
            "breaker_reset_s": reader.integer("BREAKER_RESET_S", 15, low=1, high=3600),
            "health_poll_s": reader.number("HEALTH_POLL_S", 5.0, low=0.1, high=3600),
            "cold_start_budget_ms": reader.integer(
                "COLD_START_BUDGET_MS", 2500, low=100, high=300_000
            ),
            "keep_warm_interval_s": reader.integer("KEEP_WARM_INTERVAL_S", 0, low=0, high=86_400),
            "late_result_delivery": reader.flag("LATE_RESULT_DELIVERY", False),
            "max_inflight_turns": reader.integer("MAX_INFLIGHT_TURNS", 5000, low=1, high=1_000_000),
            "runpod_concurrency": tuple(
                (op, reader.integer(f"RUNPOD_{op.upper()}_CONCURRENCY", cap, low=1, high=100_000))
                for op, cap in _DEFAULT_CONCURRENCY
            ),
            "runpod_rate_per_10s": tuple(
                (op, reader.integer(f"RUNPOD_{op.upper()}_RATE_PER_10S", cap, low=1, high=10**7))
                for op, cap in _DEFAULT_RATES
            ),
            "runpod_job_format": reader.choice(
                "RUNPOD_JOB_FORMAT", "pete", ("pete", "openai", "ollama", "prompt")
            ),
            "runpod_model": reader.text("RUNPOD_MODEL", ""),
            "metrics_token": Secret(reader.text("METRICS_TOKEN", "")),
            "admin_token": Secret(reader.text("ADMIN_TOKEN", "")),
            "chat_budget_ms": reader.integer("CHAT_BUDGET_MS", 15000, low=100, high=300_000),
            "ready_max_age_s": reader.number("READY_MAX_AGE_S", 30.0, low=1, high=86_400),
            "shutdown_grace_s": reader.number("SHUTDOWN_GRACE_S", 15.0, low=0, high=3600),
        }
        if not values["public_url"]:
            values["public_url"] = f"http://127.0.0.1:{values['port']}"
        if not values["runpod_endpoint_url"] and not values["runpod_endpoint_id"]:
            reader.problems["RUNPOD_ENDPOINT_ID"] = (
                "set RUNPOD_ENDPOINT_ID (or RUNPOD_ENDPOINT_URL for a local RunPod)"
            )
        url = values["runpod_endpoint_url"]
        if url and not url.startswith(("http://", "https://")):
            reader.problems["RUNPOD_ENDPOINT_URL"] = "must start with http:// or https://"
        if not values["fallback_message"].strip():
            reader.problems["FALLBACK_MESSAGE"] = "must be a non-empty, speakable sentence"
        if reader.problems:
            raise ConfigError(reader.problems)
        return cls(**values)


class _Reader:
    """Reads typed values, recording a problem per bad key instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: dict[str, str] = {}

    def text(self, key: str, default: str) -> str:
        value = self.env.get(key)
        return default if value is None else value.strip()

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        return self._parse(key, default, int, low, high, "an integer")

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        return self._parse(key, default, float, low, high, "a number")

    def _parse(
        self, key: str, default: Any, kind: Callable[[str], Any], low: Any, high: Any, what: str
    ) -> Any:
        raw = self.env.get(key)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = kind(raw.strip())
        except ValueError:
            self.problems[key] = f"must be {what}, got {raw!r}"
            return default
        if not low <= value <= high:
            self.problems[key] = f"must be between {low} and {high}, got {value}"
            return default
        return value

    def choice(
        self, key: str, default: str, options: tuple[str, ...], *, upper: bool = False
    ) -> Any:
        raw = self.env.get(key)
        if raw is None or raw.strip() == "":
            return default
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in options:
            self.problems[key] = f"must be one of {', '.join(options)}, got {raw!r}"
            return default
        return value

    def flag(self, key: str, default: bool) -> bool:
        raw = self.env.get(key)
        if raw is None or raw.strip() == "":
            return default
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        self.problems[key] = f"must be on/off (true/false), got {raw!r}"
        return default
