"""The engines behind the worker (runpod.md §4.1, §4.2), one small Protocol for both.

:func:`create_engine` picks :class:`OllamaEngine` (native ``/api/chat``) or :class:`OpenAIEngine`
(vLLM / llama.cpp ``/v1``) from the settings; the handler only sees :class:`Engine`.
"""

from __future__ import annotations

from gpu_worker.engines.base import Chunk, Engine, EngineError, EngineRequest, HTTPEngine
from gpu_worker.engines.ollama import OllamaEngine
from gpu_worker.engines.openai import OpenAIEngine
from gpu_worker.settings import Settings

__all__ = [
    "Chunk",
    "Engine",
    "EngineError",
    "EngineRequest",
    "HTTPEngine",
    "OllamaEngine",
    "OpenAIEngine",
    "create_engine",
]


def create_engine(settings: Settings) -> Engine:
    """The engine the settings name, with their timeouts (no I/O until first used)."""
    if settings.engine_kind == "openai":
        return OpenAIEngine(
            base_url=settings.engine_url,
            read_timeout_s=settings.engine_read_timeout_s,
            api_key=settings.engine_api_key.reveal(),
        )
    return OllamaEngine(
        base_url=settings.engine_url,
        read_timeout_s=settings.engine_read_timeout_s,
        keep_alive=settings.ollama_keep_alive,
    )
