"""OpenAI chat-completions shapes, as VAPI's custom-LLM client reads them (vapi.md §6). Pure.

Every streamed chunk is a ``chat.completion.chunk`` with a ``choices`` array (VAPI fails with
"chunk.choices is not iterable" otherwise); the stream ends with ``data: [DONE]``. A
non-streaming reply is a ``chat.completion`` that also carries ``delta`` beside ``message``,
because VAPI's own "basic" example reads ``choices[0].delta``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def chunk(
    cid: str,
    model: str,
    *,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}],
    }


def tool_call_deltas(tool_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete tool calls as one ``delta.tool_calls`` list, each with its ``index``."""
    out = []
    for i, call in enumerate(tool_calls):
        fn = call.get("function") or {}
        out.append(
            {
                "index": i,
                "id": call.get("id") or f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": fn.get("name", ""), "arguments": fn.get("arguments") or "{}"},
            }
        )
    return out


def completion(
    cid: str,
    model: str,
    *,
    text: str,
    tool_calls: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    finish = "stop"
    if tool_calls:
        message["tool_calls"] = tool_call_deltas(tool_calls)
        for call in message["tool_calls"]:
            call.pop("index", None)
        finish = "tool_calls"
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "delta": dict(message), "finish_reason": finish}
        ],
    }
    if usage:
        body["usage"] = _usage(usage)
    return body


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    prompt = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
    completion_tokens = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def error_body(message: str, *, kind: str, code: str) -> dict[str, Any]:
    """OpenAI's error envelope, so OpenAI clients surface a readable error."""
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}
