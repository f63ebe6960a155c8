"""Tool calls in a VAPI ``tool-calls`` message, and the reply VAPI reads back (vapi.md §2.2, §3).

VAPI has sent tool calls in several shapes over the years; :func:`extract_tool_calls` accepts all
of them (``toolCallList``, legacy ``toolCalls``, ``toolWithToolCallList[].toolCall``, flat
``{"id","name","arguments"}`` and ``parameters`` variants, ``arguments`` as an object or a JSON
string) and returns one :class:`ToolCall` per call, in order. :func:`tool_results_reply` builds
``{"results": [{"name", "toolCallId", "result" | "error"}]}``: one entry per call, same order,
exact ids, string values (objects are JSON-encoded; newlines folded, vapi.md §2.2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    is_async: bool = False
    tool: Mapping[str, Any] = field(default_factory=dict)  # the tool config, when VAPI sent it
    problem: str | None = None  # why this call cannot run (bad arguments), answered as `error`


@dataclass(frozen=True, slots=True)
class ToolResult:
    call: ToolCall
    result: str | None = None
    error: str | None = None


def extract_tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    """Every tool call in a ``tool-calls`` message, whatever generation of the payload it is."""
    tools_by_id = _tools_by_call_id(message.get("toolWithToolCallList"))
    raw = _first_list(message, "toolCallList", "toolCalls")
    if raw is None:
        raw = [
            {**(w.get("toolCall") or {}), "_tool": w}
            for w in message.get("toolWithToolCallList") or []
            if isinstance(w, Mapping)
        ]
    calls = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            continue
        tool = item.get("_tool") or tools_by_id.get(str(item.get("id")), {})
        calls.append(_one_call(item, tool, position=i))
    return calls


def _first_list(message: Mapping[str, Any], *keys: str) -> list[Any] | None:
    for key in keys:
        value = message.get(key)
        if isinstance(value, list) and value:
            return value
    return None


def _tools_by_call_id(items: Any) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for w in items if isinstance(items, list) else []:
        if isinstance(w, Mapping) and isinstance(w.get("toolCall"), Mapping):
            out[str(w["toolCall"].get("id"))] = w
    return out


def _one_call(item: Mapping[str, Any], tool: Mapping[str, Any], *, position: int) -> ToolCall:
    fn = item.get("function") if isinstance(item.get("function"), Mapping) else {}
    tool_fn = tool.get("function") if isinstance(tool.get("function"), Mapping) else {}
    name = fn.get("name") or item.get("name") or tool_fn.get("name") or tool.get("name") or ""
    raw_args = next(
        (
            v
            for v in (
                fn.get("arguments"),
                fn.get("parameters"),
                item.get("arguments"),
                item.get("parameters"),
            )
            if v is not None
        ),
        {},
    )
    arguments, problem = _parse_arguments(raw_args)
    call_id = item.get("id")
    return ToolCall(
        id=str(call_id) if call_id not in (None, "") else f"call_{position}",
        name=str(name),
        arguments=arguments,
        is_async=bool(tool.get("async", False)),
        tool=tool,
        problem=problem if name else "tool call without a function name",
    )


def _parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    if isinstance(raw, str):
        if not raw.strip():
            return {}, None
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}, "tool arguments are not valid JSON"
    if isinstance(raw, Mapping):
        return dict(raw), None
    return {}, "tool arguments must be an object"


def speakable(value: Any) -> str:
    """A VAPI result string: objects JSON-encoded, line breaks folded to spaces."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


def tool_results_reply(results: Sequence[ToolResult]) -> dict[str, Any]:
    """``{"results": [...]}`` with one entry per call, in order, ``result`` xor ``error``."""
    out = []
    for r in results:
        entry: dict[str, Any] = {"name": r.call.name, "toolCallId": r.call.id}
        if r.error is not None:
            entry["error"] = speakable(r.error)
        else:
            entry["result"] = speakable(r.result if r.result is not None else "")
        out.append(entry)
    return {"results": out}
