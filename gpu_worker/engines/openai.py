"""An OpenAI-compatible server (vLLM's ``vllm serve``, llama.cpp server, Ollama's /v1):
``{ENGINE_URL}/chat/completions`` streamed as SSE, ``{ENGINE_URL}/models``, optional bearer key.

``ENGINE_URL`` is the base ending in ``/v1`` (runpod.md §4.1). Streamed tool calls arrive as
``delta.tool_calls`` fragments merged by ``index``; ``stream_options.include_usage`` asks for the
usage chunk. A stream that stops before ``finish_reason`` / ``[DONE]`` is an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gpu_worker.engines.base import Chunk, EngineError, EngineRequest, HTTPEngine, parse_json_line


class OpenAIEngine(HTTPEngine):
    kind = "openai"

    def __init__(self, *, base_url: str, read_timeout_s: float, api_key: str = "") -> None:
        super().__init__(
            base_url=base_url, openai_base=base_url, read_timeout_s=read_timeout_s, api_key=api_key
        )

    async def ready(self) -> None:
        await self._json("GET", f"{self.base_url}/models", what="/models", quick=True)

    async def list_models(self) -> list[str]:
        listing = await self._json("GET", f"{self.base_url}/models", what="/models")
        data = listing.get("data") if isinstance(listing, dict) else None
        return [str(m["id"]) for m in data or [] if isinstance(m, dict) and "id" in m]

    async def ensure_model(self, model: str) -> str:
        served = await self.list_models()
        if not model:
            if not served:
                raise EngineError("the engine serves no model (/models is empty)", "model")
            return served[0]
        if model not in served:
            names = ", ".join(served) or "none"
            raise EngineError(
                f"model {model!r} is not served by the engine (serves: {names})", "model"
            )
        return model

    async def chat(self, request: EngineRequest) -> AsyncIterator[Chunk]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": list(request.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.tools:
            body["tools"] = list(request.tools)
        model, usage, finish, ended = request.model, None, None, False
        calls: dict[int, dict[str, Any]] = {}
        url = f"{self.base_url}/chat/completions"
        async for line in self._lines(url, body, what="/chat/completions"):
            if not line.startswith("data:"):
                continue  # SSE comments, event names
            data = line[5:].strip()
            if data == "[DONE]":
                ended = True
                break
            obj = parse_json_line(data, "/chat/completions")
            model = obj.get("model") or model
            usage = obj.get("usage") or usage
            choices = obj.get("choices") if isinstance(obj.get("choices"), list) else []
            for choice in choices[:1]:
                delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
                if delta.get("content"):
                    yield Chunk(text=str(delta["content"]))
                for fragment in delta.get("tool_calls") or []:
                    _merge(calls, fragment)
                finish = choice.get("finish_reason") or finish
        if not ended and finish is None:  # a finish_reason without [DONE] is still a whole reply
            raise EngineError("engine stream ended before finish_reason (/chat/completions)", "cut")
        yield Chunk(
            done=True,
            model=model,
            usage=usage,
            finish_reason=finish or "stop",
            tool_calls=tuple(calls[i] for i in sorted(calls)),
        )


def _merge(calls: dict[int, dict[str, Any]], fragment: Any) -> None:
    if not isinstance(fragment, dict):
        return
    index = fragment.get("index", len(calls))
    call = calls.setdefault(
        index if isinstance(index, int) else len(calls),
        {"id": f"call_{index}", "type": "function", "function": {"name": "", "arguments": ""}},
    )
    if fragment.get("id"):
        call["id"] = fragment["id"]
    fn = fragment.get("function") if isinstance(fragment.get("function"), dict) else {}
    if fn.get("name"):
        call["function"]["name"] = fn["name"]
    if isinstance(fn.get("arguments"), str):
        call["function"]["arguments"] += fn["arguments"]
