"""Every job input shape the worker accepts, parsed into one of four normalised requests.

:func:`parse_request` takes a RunPod job's ``input`` (runpod.md §2.2) and returns a
:class:`Generate`, :class:`AnswerToolCalls`, :class:`Admin` or :class:`OpenAIProxy`; a bad input
raises :class:`~gpu_worker.contract.ContractError` naming the field. Pure: no I/O. One example file
per shape lives in ``tests/fixtures/jobs/`` (named after the shape):

=========================== =====================================================================
shape (example file)        input
=========================== =====================================================================
``v1_chat``, ``v1_tool``,   contract v1 (:mod:`gpu_worker.contract`): ``{"v": 1, "type": "chat" |
``v1_warmup``               "tool" | "warmup", "messages", "tool"?, "tools"?, "model"?, ...}``
``legacy_prompt``           the ancestor's ``{"prompt": str, "system"?, "model"?, "max_tokens"?,
                            "temperature"?, "stream"?, "options"?, "sampling_params"?}``
``legacy_messages``         worker-vllm / worker-ollama shorthand ``{"messages": [...], ...}``
``legacy_chat``             the ancestor's ``{"type": "chat", "message": str, "model"?,
                            "system"?, "history"?: [messages]}``
``legacy_vapi_webhook``     ``{"type": "vapi_webhook", "message": <VAPI tool-calls or
                            function-call server message>, "call_id"?}``: the tool calls are
                            answered (vapi.md §2.2, §3)
``legacy_admin_*``          ``{"type": "admin", "action": "status" | "list_models" | "warmup"}``
``warmup_flag``             ``{"warmup": true}`` (a cheap warm-up job, runpod.md §5)
``openai_chat``,            worker-vllm's passthrough (runpod.md §4.1): ``{"openai_route":
``openai_models``           "/v1/chat/completions" | "/v1/completions", "openai_input": {...}}``
                            and ``{"openai_route": "/v1/models"}``
=========================== =====================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gpu_worker.contract import (
    ContractError,
    JobInput,
    ToolSpec,
    engine_messages,
    is_role,
    parse_job_input,
)

AdminAction = Literal["status", "list_models", "warmup"]
ADMIN_ACTIONS: tuple[str, ...] = ("status", "list_models", "warmup")
# route (relative to the engine's /v1 base) -> (method, shape)
OPENAI_ROUTES = {
    "/chat/completions": ("POST", "openai_chat"),
    "/completions": ("POST", "openai_completions"),
    "/models": ("GET", "openai_models"),
}
WARMUP_MESSAGES = ({"role": "user", "content": "ping"},)


@dataclass(frozen=True, slots=True, kw_only=True)
class Generate:
    """One reply from the engine: streamed in pieces, or whole."""

    shape: str
    messages: tuple[dict[str, Any], ...]
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    tools: tuple[dict[str, Any], ...] = ()
    warmup: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    problem: str | None = None  # answered as the result's ``error`` instead of asking the engine


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerToolCalls:
    """A VAPI ``tool-calls`` message: one engine answer per call, VAPI ``results`` out."""

    shape: str
    calls: tuple[ToolCall, ...]
    context: tuple[dict[str, Any], ...] = ()
    model: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Admin:
    shape: str
    action: AdminAction


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAIProxy:
    """A request for the engine's OpenAI-compatible API, ``route`` relative to its ``/v1`` base."""

    shape: str
    route: str
    method: str
    body: dict[str, Any] | None = field(default=None)

    @property
    def stream(self) -> bool:
        return bool(self.body and self.body.get("stream") is True)


WorkerRequest = Generate | AnswerToolCalls | Admin | OpenAIProxy


def parse_request(raw: Any) -> WorkerRequest:
    """A job's ``input`` → the request it asks for; raises :class:`ContractError`."""
    if not isinstance(raw, Mapping):
        raise ContractError("input", f"expected an object, got {type(raw).__name__}")
    kind = raw.get("type")
    if "openai_route" in raw:
        return _openai(raw)
    if kind == "admin":
        action = raw.get("action")
        if action not in ADMIN_ACTIONS:
            raise ContractError("action", f"must be one of {', '.join(ADMIN_ACTIONS)}")
        return Admin(shape=f"legacy_admin_{action}", action=action)
    if kind == "vapi_webhook":
        return _vapi_webhook(raw)
    if kind == "chat" and "message" in raw and "messages" not in raw and "v" not in raw:
        return _legacy_chat(raw)
    if "v" in raw or kind is not None:
        return _from_v1(parse_job_input(raw))
    if "prompt" in raw:
        prompt = raw["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise ContractError("prompt", "must be a non-empty string")
        return _loose("legacy_prompt", raw, [{"role": "user", "content": prompt}])
    if "messages" in raw:
        return _loose("legacy_messages", raw, _messages(raw["messages"], "messages"))
    if raw.get("warmup") is True:
        return Generate(shape="warmup_flag", messages=WARMUP_MESSAGES, max_tokens=1, warmup=True)
    raise ContractError(
        "input",
        "unrecognised job input: expected contract v1 ({'v': 1, 'type': ...}), 'prompt', "
        "'messages', {'type': 'chat'|'vapi_webhook'|'admin'} or 'openai_route'",
    )


def _from_v1(job: JobInput) -> Generate:
    if job.type == "warmup":
        return Generate(shape="v1_warmup", messages=WARMUP_MESSAGES, max_tokens=1, warmup=True)
    return Generate(
        shape=f"v1_{job.type}",
        messages=tuple(engine_messages(job)),
        model=job.model,
        max_tokens=job.max_tokens,
        temperature=job.temperature,
        stream=job.stream,
        tools=job.tools,
    )


def _loose(
    shape: str,
    raw: Mapping[str, Any],
    messages: list[dict[str, Any]],
    *,
    system_keys: tuple[str, ...] = ("system",),
) -> Generate:
    """The older shorthands: knobs at the top level, in ``options`` or in ``sampling_params``."""
    system = _first(*(_string(raw, key) for key in system_keys))
    options = _object(raw, "options")
    sampling = _object(raw, "sampling_params")
    max_tokens = _first(
        _count(raw, "max_tokens", "max_tokens"),
        _count(sampling, "max_tokens", "sampling_params.max_tokens"),
        _count(options, "num_predict", "options.num_predict"),
    )
    temperature = _first(
        _temperature(raw, "temperature", "temperature"),
        _temperature(sampling, "temperature", "sampling_params.temperature"),
        _temperature(options, "temperature", "options.temperature"),
    )
    stream = raw.get("stream", False)
    if not isinstance(stream, bool):
        raise ContractError("stream", "must be true or false")
    prefix = [{"role": "system", "content": system}] if system else []
    return Generate(
        shape=shape,
        messages=tuple(prefix + messages),
        model=_string(raw, "model"),
        max_tokens=max_tokens,
        temperature=temperature,
        stream=stream,
    )


def _legacy_chat(raw: Mapping[str, Any]) -> Generate:
    message = raw.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ContractError("message", "must be a non-empty string")
    history = _messages(raw.get("history", []), "history")
    turn = [{"role": "user", "content": message}]
    return _loose("legacy_chat", raw, history + turn, system_keys=("system", "system_prompt"))


def _vapi_webhook(raw: Mapping[str, Any]) -> AnswerToolCalls:
    message = raw.get("message")
    if not isinstance(message, Mapping):
        raise ContractError("message", "must be a VAPI server message object")
    kind = message.get("type")
    if kind == "function-call":
        call = message.get("functionCall")
        if not isinstance(call, Mapping):
            raise ContractError("message.functionCall", "must be an object")
        calls = [_tool_call({"id": "function-call", **call}, 0)]
    elif kind == "tool-calls":
        calls = _vapi_tool_calls(message)
        if not calls:
            raise ContractError("message.toolCallList", "a tool-calls message needs a tool call")
    else:
        raise ContractError(
            "message.type", f"this worker answers 'tool-calls' and 'function-call'; got {kind!r}"
        )
    return AnswerToolCalls(
        shape="legacy_vapi_webhook",
        calls=tuple(calls),
        context=_conversation(message),
        model=_string(raw, "model"),
    )


def _vapi_tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    """vapi.md §3: ``toolCallList``, legacy ``toolCalls`` or ``toolWithToolCallList[].toolCall``."""
    raw = message.get("toolCallList") or message.get("toolCalls")
    if not isinstance(raw, list) or not raw:
        raw = [
            {**(w.get("toolCall") or {}), "_tool": w}
            for w in message.get("toolWithToolCallList") or []
            if isinstance(w, Mapping)
        ]
    return [_tool_call(item, i) for i, item in enumerate(raw) if isinstance(item, Mapping)]


def _tool_call(item: Mapping[str, Any], position: int) -> ToolCall:
    fn = item.get("function") if isinstance(item.get("function"), Mapping) else {}
    tool = item.get("_tool") if isinstance(item.get("_tool"), Mapping) else {}
    tool_fn = tool.get("function") if isinstance(tool.get("function"), Mapping) else {}
    name = fn.get("name") or item.get("name") or tool_fn.get("name") or tool.get("name") or ""
    candidates = (fn.get("arguments"), fn.get("parameters"), item.get("arguments"))
    args: Any = next((v for v in (*candidates, item.get("parameters")) if v is not None), {})
    problem = None if name else "tool call without a function name"
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            args, problem = {}, problem or "tool arguments are not valid JSON"
    if not isinstance(args, Mapping):
        args, problem = {}, problem or "tool arguments must be an object"
    call_id = item.get("id")
    return ToolCall(
        id=str(call_id) if call_id not in (None, "") else f"call_{position}",
        name=str(name),
        arguments=dict(args),
        problem=problem,
    )


def _conversation(message: Mapping[str, Any], keep: int = 8) -> tuple[dict[str, Any], ...]:
    """The last few spoken turns (user / assistant text) from a VAPI message, as engine context."""
    artifact = message.get("artifact") if isinstance(message.get("artifact"), Mapping) else {}
    history = artifact.get("messagesOpenAIFormatted") or message.get("messagesOpenAIFormatted")
    history = history if isinstance(history, list) else []
    turns = [
        {"role": m["role"], "content": m["content"]}
        for m in history
        if isinstance(m, Mapping)
        and m.get("role") in ("user", "assistant")
        and isinstance(m.get("content"), str)
        and m["content"].strip()
        and not m.get("tool_calls")
    ]
    return tuple(turns[-keep:])


def tool_call_messages(call: ToolCall, context: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The engine prompt for one VAPI tool call: the contract's tool instruction (same as v1)."""
    job = JobInput(type="tool", messages=context, tool=ToolSpec(call.name, call.arguments))
    return engine_messages(job)


def _openai(raw: Mapping[str, Any]) -> OpenAIProxy:
    route = raw.get("openai_route")
    if not isinstance(route, str):
        raise ContractError("openai_route", "must be a string such as '/v1/chat/completions'")
    relative = route.split("?", 1)[0].rstrip("/")
    relative = relative.removeprefix("/v1") if relative.startswith("/v1/") else relative
    if relative not in OPENAI_ROUTES:
        raise ContractError("openai_route", f"unsupported route {route!r}")
    body = raw.get("openai_input")
    if body is not None and not isinstance(body, Mapping):
        raise ContractError("openai_input", "must be an object (the OpenAI request body)")
    method, shape = OPENAI_ROUTES[relative]
    if method == "POST" and body is None:
        raise ContractError("openai_input", f"{route} needs a request body")
    body = dict(body) if body is not None else None
    return OpenAIProxy(shape=shape, route=relative, method=method, body=body)


# --------------------------------------------------------------------------- field helpers


def _messages(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ContractError(where, "must be a list of {role, content} objects")
    for i, m in enumerate(value):
        if not isinstance(m, Mapping):
            raise ContractError(f"{where}[{i}]", "must be an object")
        if not is_role(m.get("role")):
            raise ContractError(f"{where}[{i}].role", f"unknown role {m.get('role')!r}")
        if m.get("content") is not None and not isinstance(m["content"], str | list):
            raise ContractError(
                f"{where}[{i}].content", "must be a string, a list of parts or null"
            )
    return [dict(m) for m in value]


def _object(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ContractError(key, "must be an object")
    return value


def _string(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ContractError(key, "must be a string")
    return value or None


def _count(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(where, "must be an integer")
    return value if value > 0 else None  # Ollama's -1 / -2 mean "no limit"


def _temperature(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise ContractError(where, "must be a number between 0 and 2")
    return float(value)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
