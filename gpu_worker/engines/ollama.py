"""Ollama's native API (runpod.md §4.2): ``/api/chat`` NDJSON streaming, ``keep_alive``,
``options.num_predict`` / ``temperature``, ``/api/tags`` and ``/api/pull`` for the model at start.

Its OpenAI-compatible routes (``{ENGINE_URL}/v1``) serve the worker-vllm passthrough shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from gpu_worker.engines.base import Chunk, EngineError, EngineRequest, HTTPEngine, parse_json_line

_ROLES = {"developer": "system", "function": "tool"}


class OllamaEngine(HTTPEngine):
    kind = "ollama"

    def __init__(
        self, *, base_url: str, read_timeout_s: float, keep_alive: int | float | str = -1
    ) -> None:
        super().__init__(
            base_url=base_url,
            openai_base=f"{base_url.rstrip('/')}/v1",
            read_timeout_s=read_timeout_s,
        )
        self.keep_alive = keep_alive

    async def ready(self) -> None:
        await self._json("GET", f"{self.base_url}/api/version", what="/api/version", quick=True)

    async def list_models(self) -> list[str]:
        tags = await self._json("GET", f"{self.base_url}/api/tags", what="/api/tags")
        models = tags.get("models") if isinstance(tags, dict) else None
        return [m["name"] for m in models or [] if isinstance(m, dict) and "name" in m]

    async def ensure_model(self, model: str) -> str:
        if not model:
            raise EngineError("no model configured for Ollama", "model")
        if _tagged(model) in {_tagged(name) for name in await self.list_models()}:
            return model
        body = {"model": model, "stream": True}
        async for line in self._lines(f"{self.base_url}/api/pull", body, what="/api/pull"):
            if parse_json_line(line, "/api/pull").get("status") == "success":
                return model
        raise EngineError(f"pulling {model!r} ended without success", "model")

    async def chat(self, request: EngineRequest) -> AsyncIterator[Chunk]:
        options: dict[str, Any] = {"num_predict": request.max_tokens}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        body: dict[str, Any] = {
            "model": request.model,
            "messages": ollama_messages(request.messages),
            "stream": True,
            "keep_alive": self.keep_alive,
            "options": options,
        }
        if request.tools:
            body["tools"] = list(request.tools)
        calls: list[dict[str, Any]] = []
        async for line in self._lines(f"{self.base_url}/api/chat", body, what="/api/chat"):
            obj = parse_json_line(line, "/api/chat")
            message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
            calls += [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
            if message.get("content"):
                yield Chunk(text=str(message["content"]))
            if obj.get("done") is True:
                prompt, completion = obj.get("prompt_eval_count"), obj.get("eval_count")
                usage = {
                    "prompt_tokens": prompt or 0,
                    "completion_tokens": completion or 0,
                    "total_tokens": (prompt or 0) + (completion or 0),
                }
                finish = "tool_calls" if calls else str(obj.get("done_reason") or "stop")
                yield Chunk(
                    done=True,
                    model=obj.get("model") or request.model,
                    usage=usage,
                    finish_reason=finish,
                    tool_calls=openai_tool_calls(calls),
                )
                return
        raise EngineError("engine stream ended before its done line (/api/chat)", "cut")


def ollama_messages(messages: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """OpenAI-style chat messages → Ollama's (string content, object tool arguments)."""
    out = []
    for m in messages:
        role = _ROLES.get(m.get("role", ""), m.get("role"))
        msg: dict[str, Any] = {"role": role, "content": _text(m.get("content"))}
        calls = []
        for call in m.get("tool_calls") or []:
            fn = (call.get("function") or {}) if isinstance(call, dict) else {}
            arguments = fn.get("arguments") or {}
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments) if arguments.strip() else {}
                except ValueError:
                    arguments = {}
            calls.append({"function": {"name": fn.get("name", ""), "arguments": arguments}})
        if calls:
            msg["tool_calls"] = calls
        if role == "tool" and m.get("name"):
            msg["tool_name"] = m["name"]
        out.append(msg)
    return out


def openai_tool_calls(calls: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Ollama ``message.tool_calls`` → OpenAI ``tool_calls`` (JSON-string arguments)."""
    out = []
    for i, call in enumerate(calls):
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = fn.get("arguments", {})
        out.append(
            {
                "id": str(call.get("id") or f"call_{i}"),
                "type": "function",
                "function": {
                    "name": str(fn.get("name", "")),
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                },
            }
        )
    return tuple(out)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _tagged(name: str) -> str:
    return name if ":" in name else f"{name}:latest"
