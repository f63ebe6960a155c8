"""Request bodies the load generator sends, built once and stamped per request.

* ``tool_calls_template()``: the VAPI ``tool-calls`` message of the project's current fixture
  (``tests/fixtures/vapi/tool-calls.current.json``: call, phone number, customer, artifact with
  the conversation) cut to its first tool call (``lookup_rent``), serialised once with markers so
  each request gets a fresh ``call.id`` and ``toolCallId`` by a bytes replace (a repeated id
  would be answered from the gateway's idempotency store, not by a RunPod job).
* ``direct_job_body()``: the exact ``/runsync`` body the gateway submits for that turn (same
  contract functions), for the "straight to the emulator" baseline.
* ``chat_body()``: an OpenAI chat request (custom-LLM turn, engine or LiteLLM).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.runpod import job_policy
from app.tools import conversation_of
from gpu_worker.contract import build_job_input

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "vapi" / "tool-calls.current.json"
CALL_MARK = "__BENCH_CALL__"
TOOL_MARK = "__BENCH_TOOL__"

_MINIMAL: dict[str, Any] = {
    "message": {
        "type": "tool-calls",
        "call": {"id": "call"},
        "toolCallList": [
            {"id": "tc", "type": "function",
             "function": {"name": "lookup_rent", "arguments": {"unit": "4B"}}}
        ],
        "artifact": {"messagesOpenAIFormatted": [
            {"role": "user", "content": "Hi, what's my rent balance for unit 4B?"}
        ]},
    }
}  # fmt: skip


def tool_calls_message() -> dict[str, Any]:
    """The fixture's tool-calls envelope with one call (``lookup_rent``)."""
    data = json.loads(FIXTURE.read_text()) if FIXTURE.exists() else json.loads(json.dumps(_MINIMAL))
    message = data["message"]
    message["toolCallList"] = message["toolCallList"][:1]
    message.pop("toolCalls", None)
    if "toolWithToolCallList" in message:
        message["toolWithToolCallList"] = message["toolWithToolCallList"][:1]
    return data


def tool_calls_template() -> str:
    """The envelope as JSON text with :data:`CALL_MARK` / :data:`TOOL_MARK` to stamp."""
    data = tool_calls_message()
    message = data["message"]
    message["call"]["id"] = CALL_MARK
    message["toolCallList"][0]["id"] = TOOL_MARK
    for entry in message.get("toolWithToolCallList", []):
        entry.get("toolCall", {})["id"] = TOOL_MARK
    return json.dumps(data, separators=(",", ":"))


def stamp(template: str, n: int, prefix: str) -> bytes:
    """One request body: unique call and tool-call ids for request ``n``."""
    return (
        template.replace(CALL_MARK, f"{prefix}-call-{n}")
        .replace(TOOL_MARK, f"{prefix}-tc-{n}")
        .encode()
    )


def direct_job_body(budget_ms: int = 6000) -> dict[str, Any]:
    """What the gateway POSTs to ``/runsync`` for the tool call above (contract v1, pete format)."""
    message = tool_calls_message()["message"]
    call = message["toolCallList"][0]
    job = build_job_input(
        type="tool",
        messages=conversation_of(message),
        tool_name=call["function"]["name"],
        tool_arguments=call["function"]["arguments"],
        call_id=message["call"]["id"],
    )
    return {"input": job, "policy": job_policy(budget_ms)}


def chat_body(*, model: str, stream: bool, max_tokens: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are Riley, the phone receptionist."},
            {"role": "user", "content": "Hi, what's my rent balance for unit 4B?"},
        ],
        "stream": stream,
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body
