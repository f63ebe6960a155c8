"""Gateway settings: read once from the environment into one frozen dataclass.

`Settings.from_env(mapping)` collects every missing or invalid key into one :class:`ConfigError`
(so an operator fixes them all in one go); secrets are :class:`Secret` values that print as
``***``. Nothing else in the gateway reads ``os.environ``.

Contract (issue #2, relied on by the launcher, the Procfile and outside checks):
``PORT`` (8000), ``HOST`` (0.0.0.0), ``RUNPOD_API_KEY``, ``RUNPOD_ENDPOINT_ID``,
``RUNPOD_ENDPOINT_URL`` (overrides; default ``https://api.runpod.ai/v2/{RUNPOD_ENDPOINT_ID}``),
``TOOL_BUDGET_MS`` (6000), ``FALLBACK_MESSAGE``, ``LOG_FORMAT`` (json|console), ``LOG_LEVEL``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RUNPOD_API_BASE = "https://api.runpod.ai/v2"
DEFAULT_FALLBACK = (
    "I'm sorry, I couldn't get that information just now. Let me help you another way."
)


class ConfigError(ValueError):
    """Every bad setting at once: ``problems`` maps each key to what is wrong with it."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        lines = "\n".join(f"  {key}: {why}" for key, why in sorted(self.problems.items()))
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


class Secret:
    """A configured secret; never shows its value in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


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
    web_concurrency: int = 1

    @property
    def endpoint_url(self) -> str:
        if self.runpod_endpoint_url:
            return self.runpod_endpoint_url.rstrip("/")
        return f"{RUNPOD_API_BASE}/{self.runpod_endpoint_id}"

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
            "web_concurrency": reader.integer("WEB_CONCURRENCY", 1, low=1, high=64),
        }
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
