"""Tool calls in a VAPI ``tool-calls`` message and the reply VAPI reads (vapi.md §2.2, §2.3, §3).

VAPI has sent tool calls in several shapes over the years; :func:`extract_tool_calls` accepts all
of them (``toolCallList``, legacy ``toolCalls``, ``toolWithToolCallList[].toolCall``, flat
``{"id","name","arguments"}`` and ``parameters`` variants, ``arguments`` as an object or a JSON
string) and returns one :class:`ToolCall` per call, in order. :func:`extract_function_call` does
the same for the legacy ``function-call`` message (``functionCall.{name,parameters}``).
:func:`tool_results_reply` builds ``{"results": [{"name", "toolCallId", "result" | "error",
"message"?}]}``: one entry per call, same order, exact ids, string values (objects are
JSON-encoded; line breaks folded, vapi.md §2.2).

None of these functions raises for any JSON-decoded input: a call that cannot run (no name,
arguments that are not an object) carries a ``problem`` to answer as its ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


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
    # Spoken instead of a model-generated reply: sent as a `request-complete` message with a
    # result and `request-failed` with an error (vapi.md §2.2, spoken-output priority).
    message: str | None = None


def extract_tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    """Every tool call in a ``tool-calls`` message, whatever generation of the payload it is."""
    wrapped = _mappings(message.get("toolWithToolCallList"))
    tools_by_id = _tools_by_call_id(wrapped)
    raw = _first_list(message, "toolCallList", "toolCalls")
    pairs: list[tuple[Any, Mapping[str, Any]]]
    if raw is not None:
        pairs = [(item, tools_by_id.get(_call_id(item) or "", {})) for item in raw]
    else:
        pairs = [(_mapping(w.get("toolCall")), w) for w in wrapped]
    return [
        _one_call(item, tool, position=i)
        for i, (item, tool) in enumerate(pairs)
        if isinstance(item, Mapping)
    ]


def extract_function_call(message: Mapping[str, Any]) -> ToolCall | None:
    """The legacy ``function-call``'s ``functionCall`` as a :class:`ToolCall` (vapi.md §2.3).

    ``parameters`` may be an object or a JSON string. The id is the call id (legacy function
    calls have none of their own). None when there is no ``functionCall`` object.
    """
    fn = message.get("functionCall")
    if not isinstance(fn, Mapping):
        return None
    call = _mapping(message.get("call"))
    call_id = _ident(call.get("id")) or _ident(call.get("callId")) or "function_call"
    return _one_call({**fn, "id": call_id}, {}, position=0)


def parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Tool arguments as a dict from an object or a JSON string; ``(dict, problem or None)``."""
    if raw is None:
        return {}, None
    if isinstance(raw, str):
        if not raw.strip():
            return {}, None
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return {}, "tool arguments are not valid JSON"
    if isinstance(raw, Mapping):
        return dict(raw), None
    return {}, "tool arguments must be an object"


def speakable(value: Any) -> str:
    """A VAPI result string: objects JSON-encoded, line breaks folded to spaces."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):  # odd keys, cycles, deep nesting
            text = _fallback_text(value)
    if any(c in _LINE_BREAKS for c in text):
        text = " ".join(text.split())
    return text


def _fallback_text(value: Any) -> str:
    try:
        return str(value)
    except (ValueError, RecursionError):  # an int beyond the str() digit limit, a deep repr
        return f"<{type(value).__name__}>"


def tool_results_reply(results: Sequence[ToolResult]) -> dict[str, Any]:
    """``{"results": [...]}`` with one entry per call, in order, ``result`` xor ``error``."""
    out = []
    for r in results:
        entry: dict[str, Any] = {"name": r.call.name, "toolCallId": r.call.id}
        if r.error is not None:
            entry["error"] = speakable(r.error)
        else:
            entry["result"] = speakable(r.result if r.result is not None else "")
        if r.message is not None:
            entry["message"] = {
                "type": "request-failed" if r.error is not None else "request-complete",
                "content": speakable(r.message),
            }
        out.append(entry)
    return {"results": out}


def _first_list(message: Mapping[str, Any], *keys: str) -> list[Any] | None:
    for key in keys:
        value = message.get(key)
        if isinstance(value, list) and value:
            return value
    return None


def _tools_by_call_id(wrapped: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for w in wrapped:
        call_id = _call_id(w.get("toolCall"))
        if call_id is not None:
            out.setdefault(call_id, w)
    return out


def _one_call(item: Mapping[str, Any], tool: Mapping[str, Any], *, position: int) -> ToolCall:
    fn = _mapping(item.get("function"))
    tool_fn = _mapping(tool.get("function"))
    name = next(
        (
            n
            for n in (fn.get("name"), item.get("name"), tool_fn.get("name"), tool.get("name"))
            if isinstance(n, str) and n
        ),
        "",
    )
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
    arguments, problem = parse_arguments(raw_args)
    return ToolCall(
        id=_call_id(item) or f"call_{position}",
        name=name,
        arguments=arguments,
        is_async=tool.get("async") is True,
        tool=tool,
        problem=problem if name else "tool call without a function name",
    )


def _call_id(item: Any) -> str | None:
    return _ident(item.get("id")) if isinstance(item, Mapping) else None


def _ident(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
        return str(value)
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
