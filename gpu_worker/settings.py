"""Worker settings: the environment, read once into one frozen dataclass (STYLE.md §2).

:meth:`Settings.from_env` collects every missing or invalid key into one :class:`ConfigError`
(``python -m gpu_worker`` prints it and exits 2); ``ENGINE_API_KEY`` is a :class:`Secret` that
prints as ``***``. Nothing else in the worker reads ``os.environ`` (``main`` only sets the
``RUNPOD_LOG_LEVEL`` default before importing the SDK, runpod.md §2.11).

=========================== ======================================== =============================
key                         meaning                                  default
=========================== ======================================== =============================
``ENGINE_KIND``             ``ollama`` (native ``/api/chat``) or      ``ollama``
                            ``openai`` (vLLM, llama.cpp server)
``ENGINE_URL``              Ollama base, or the OpenAI base ending   ``http://127.0.0.1:11434`` /
                            in ``/v1``                               ``http://127.0.0.1:8000/v1``
``MODEL``                   model to serve (pulled at start on       required for ollama; openai:
                            Ollama)                                  the first of ``/v1/models``
``MAX_CONCURRENCY``         jobs one worker runs at once             8
``ENGINE_START_TIMEOUT_S``  bound on wait + pull + warm at start     300
``ENGINE_READ_TIMEOUT_S``   longest silence from the engine          60
                            (time to first token, gaps mid-stream)
``ENGINE_REQUEST_TIMEOUT_S`` bound on one whole engine request       300
``ENGINE_API_KEY``          bearer for an OpenAI-compatible engine   (none)
``STREAM_BATCH_MS``         at most one streamed piece per window    100
``STREAM_BATCH_TOKENS``     ...or per this many engine tokens        64
``OLLAMA_KEEP_ALIVE``       Ollama ``keep_alive`` (seconds or "5m")  -1 (keep loaded)
``DEFAULT_MAX_TOKENS``      reply cap when a job sets none (voice)   256
``LOG_LEVEL``/``LOG_FORMAT`` worker log level; ``json``/``console``  INFO / auto
=========================== ======================================== =============================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from gpu_worker.envconfig import ConfigError, Secret

OLLAMA_URL = "http://127.0.0.1:11434"
OPENAI_URL = "http://127.0.0.1:8000/v1"
_DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


@dataclass(frozen=True, slots=True)
class Settings:
    engine_kind: Literal["ollama", "openai"] = "ollama"
    engine_url: str = OLLAMA_URL
    model: str = ""
    max_concurrency: int = 8
    engine_start_timeout_s: float = 300.0
    engine_read_timeout_s: float = 60.0
    engine_request_timeout_s: float = 300.0
    engine_api_key: Secret = field(default_factory=Secret)
    stream_batch_ms: int = 100
    stream_batch_tokens: int = 64
    ollama_keep_alive: int | float | str = -1
    default_max_tokens: int = 256
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse ``env``; raises :class:`ConfigError` listing every bad key."""
        problems: dict[str, str] = {}

        def get(key: str, parse: Callable[[str], Any], default: Any) -> Any:
            raw = env.get(key, "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except ValueError as exc:
                problems[key] = f"{exc} (got {raw!r})"
                return default

        kind = get("ENGINE_KIND", _choice("ollama", "openai"), "ollama")
        url = get("ENGINE_URL", _url, OPENAI_URL if kind == "openai" else OLLAMA_URL).rstrip("/")
        if kind == "openai" and "ENGINE_URL" not in problems and not url.endswith("/v1"):
            problems["ENGINE_URL"] = f"an OpenAI-compatible base must end in /v1 (got {url!r})"
        model = env.get("MODEL", "").strip()
        if kind == "ollama" and not model:
            problems["MODEL"] = "required with ENGINE_KIND=ollama (the model to pull and serve)"
        settings = cls(
            engine_kind=kind,
            engine_url=url,
            model=model,
            max_concurrency=get("MAX_CONCURRENCY", _int(1, 1024), 8),
            engine_start_timeout_s=get("ENGINE_START_TIMEOUT_S", _seconds, 300.0),
            engine_read_timeout_s=get("ENGINE_READ_TIMEOUT_S", _seconds, 60.0),
            engine_request_timeout_s=get("ENGINE_REQUEST_TIMEOUT_S", _seconds, 300.0),
            engine_api_key=Secret(env.get("ENGINE_API_KEY", "").strip()),
            stream_batch_ms=get("STREAM_BATCH_MS", _int(0, 10_000), 100),
            stream_batch_tokens=get("STREAM_BATCH_TOKENS", _int(1, 100_000), 64),
            ollama_keep_alive=get("OLLAMA_KEEP_ALIVE", _keep_alive, -1),
            default_max_tokens=get("DEFAULT_MAX_TOKENS", _int(1, 1_000_000), 256),
            log_level=get("LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
            log_format=get("LOG_FORMAT", _choice("auto", "json", "console"), "auto"),
        )
        if problems:
            raise ConfigError(problems)
        return settings


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower() if allowed[0].islower() else raw.upper()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("must be an integer") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not 0 < value <= 86_400:
        raise ValueError("must be more than 0 and at most 86400 seconds")
    return value


def _url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return raw


def _keep_alive(raw: str) -> int | float | str:
    # Ollama reads a JSON number as seconds and a string as a Go duration ("-1" alone is invalid).
    try:
        number = float(raw)
    except ValueError:
        if not _DURATION.match(raw):
            raise ValueError(
                'must be seconds (e.g. -1, 300) or a duration (e.g. "5m", "1h")'
            ) from None
        return raw
    return int(number) if number.is_integer() else number
