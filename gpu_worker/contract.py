"""The job contract between the gateway and the GPU worker, version 1 (one module, both sides).

The gateway builds a RunPod job input with :func:`build_job_input`; the worker parses it with
:func:`parse_job_input`; the gateway turns whatever a worker returned into text with
:func:`normalize_output`. The example files in ``tests/fixtures/jobs/`` are tested from both sides.

Job input v1 (runpod.md §1.1: the ``input`` object of ``/run`` and ``/runsync``)::

    {"v": 1, "type": "chat" | "tool" | "warmup", "messages": [{"role", "content", ...}],
     "tool": {"name": str, "arguments": {...}}?,        # required when type == "tool"
     "model"?: str, "max_tokens"?: int, "temperature"?: float, "stream"?: bool, "call_id"?: str,
     "tools"?: [OpenAI function tools]}     # offered to the model (custom-LLM turns)

Worker output v1: ``{"text": str, "model": str, "usage"?: {...}, "finish_reason"?: str,
"tool_calls"?: [...]}``. A streaming worker (async generator with ``return_aggregate_stream``)
yields pieces ``{"text": "<delta>"}`` and ends with a piece carrying ``"done": true`` plus the
metadata; ``/runsync`` and ``/status`` then return the list of pieces (runpod.md §2.4).

:func:`normalize_output` also accepts, so the gateway can sit in front of workers it did not build
(runpod.md §4): a plain string, ``{"response": str}``, an OpenAI ``chat.completion`` (or a list of
``chat.completion.chunk`` objects), an Ollama ``/api/chat`` or ``/api/generate`` reply (or a list of
its NDJSON lines), worker-vllm's legacy ``{"choices": [{"tokens": [...]}]}`` batches and RunPod's
``{"text": [...]}`` vLLM output, and raw SSE text in arbitrary chunk boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

JOB_VERSION = 1
JobType = Literal["chat", "tool", "warmup"]
JOB_TYPES: tuple[str, ...] = ("chat", "tool", "warmup")
ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})


def is_role(value: Any) -> bool:
    """A known message role; False for anything else, including unhashable values (a list or
    dict from a malformed body would make a bare ``in ROLES`` raise TypeError)."""
    return isinstance(value, str) and value in ROLES


class ContractError(ValueError):
    """A job input that breaks the contract; ``field`` names the offending key."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobInput:
    """A parsed, validated v1 job input."""

    type: JobType
    messages: tuple[dict[str, Any], ...] = ()
    tool: ToolSpec | None = None
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    call_id: str | None = None
    tools: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": JOB_VERSION, "type": self.type, "messages": list(self.messages)}
        if self.tool is not None:
            out["tool"] = {"name": self.tool.name, "arguments": self.tool.arguments}
        for key in ("model", "max_tokens", "temperature", "call_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.stream:
            out["stream"] = True
        if self.tools:
            out["tools"] = list(self.tools)
        return out


def build_job_input(
    *,
    type: JobType,
    messages: Iterable[Mapping[str, Any]] = (),
    tool_name: str | None = None,
    tool_arguments: Mapping[str, Any] | None = None,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stream: bool = False,
    call_id: str | None = None,
    tools: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The gateway side: a v1 job input dict, validated by the same rules the worker applies."""
    # copies of the objects; anything else is left for parse_job_input to refuse (ContractError)
    copied = [dict(m) if isinstance(m, Mapping) else m for m in messages]
    raw: dict[str, Any] = {"v": JOB_VERSION, "type": type, "messages": copied}
    if tool_name is not None:
        raw["tool"] = {"name": tool_name, "arguments": dict(tool_arguments or {})}
    for key, value in (
        ("model", model),
        ("max_tokens", max_tokens),
        ("temperature", temperature),
        ("call_id", call_id),
    ):
        if value is not None:
            raw[key] = value
    if stream:
        raw["stream"] = True
    tools = [dict(t) if isinstance(t, Mapping) else t for t in tools]
    if tools:
        raw["tools"] = tools
    return parse_job_input(raw).to_dict()


def parse_job_input(raw: Any) -> JobInput:
    """The worker side: validate a v1 job input; raises :class:`ContractError` naming the field."""
    if not isinstance(raw, Mapping):
        raise ContractError("input", f"expected an object, got {type(raw).__name__}")
    version = raw.get("v", JOB_VERSION)
    if version != JOB_VERSION:
        raise ContractError("v", f"unsupported version {version!r} (this worker speaks v1)")
    job_type = raw.get("type")
    if job_type not in JOB_TYPES:
        raise ContractError("type", f"must be one of {', '.join(JOB_TYPES)}; got {job_type!r}")
    messages = _parse_messages(raw.get("messages", []))
    tool = _parse_tool(raw.get("tool"), required=job_type == "tool")
    if job_type == "chat" and not messages:
        raise ContractError("messages", "a chat job needs at least one message")
    return JobInput(
        type=job_type,
        messages=messages,
        tool=tool,
        model=_optional(raw, "model", str),
        max_tokens=_positive_int(raw, "max_tokens"),
        temperature=_temperature(raw),
        stream=_optional(raw, "stream", bool) or False,
        call_id=_optional(raw, "call_id", str),
        tools=_parse_tools(raw.get("tools")),
    )


def _parse_tools(value: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ContractError("tools", "must be a list of OpenAI function tools")
    for i, tool in enumerate(value):
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise ContractError(f"tools[{i}].function.name", "each tool needs a function name")
    return tuple(dict(t) for t in value)


def _parse_messages(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise ContractError("messages", "must be a list of {role, content} objects")
    out = []
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise ContractError(where, "must be an object")
        role = message.get("role")
        if not is_role(role):
            raise ContractError(f"{where}.role", f"unknown role {role!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise ContractError(f"{where}.content", "must be a string, a list of parts or null")
        out.append(dict(message))
    return tuple(out)


def _parse_tool(value: Any, *, required: bool) -> ToolSpec | None:
    if value is None:
        if required:
            raise ContractError("tool", "a tool job needs tool.name and tool.arguments")
        return None
    if not isinstance(value, Mapping):
        raise ContractError("tool", "must be an object")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise ContractError("tool.name", "must be a non-empty string")
    arguments = value.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise ContractError("tool.arguments", f"not valid JSON: {exc}") from None
    if not isinstance(arguments, Mapping):
        raise ContractError("tool.arguments", "must be an object (or a JSON string of one)")
    return ToolSpec(name=name, arguments=dict(arguments))


def _optional(raw: Mapping[str, Any], key: str, kind: type) -> Any:
    value = raw.get(key)
    if value is not None and not isinstance(value, kind):
        raise ContractError(key, f"must be {kind.__name__}")
    return value


def _positive_int(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ContractError(key, "must be a positive integer")
    return value


def _temperature(raw: Mapping[str, Any]) -> float | None:
    value = raw.get("temperature")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise ContractError("temperature", "must be a number between 0 and 2")
    return float(value)


# --------------------------------------------------------------------------- engine prompt

TOOL_INSTRUCTION = (
    "You are answering a tool call for a voice assistant on a live phone call. "
    "Tool: {name}. Arguments (JSON): {arguments}. "
    "Reply with the tool's result as one or two short, plain sentences the assistant can speak "
    "aloud: no markdown, no lists, no line breaks."
)


def engine_messages(job: JobInput) -> list[dict[str, Any]]:
    """The chat messages the engine sees for a job (pure; the worker sends these)."""
    if job.type == "warmup":
        return [{"role": "user", "content": "ping"}]
    messages = [dict(m) for m in job.messages]
    if job.type == "tool" and job.tool is not None:
        instruction = TOOL_INSTRUCTION.format(
            name=job.tool.name, arguments=json.dumps(job.tool.arguments, sort_keys=True)
        )
        messages.append({"role": "system", "content": instruction})
        if not any(m.get("role") == "user" for m in messages):
            messages.append({"role": "user", "content": f"Run {job.tool.name}."})
    return messages


# --------------------------------------------------------------------------- output side


@dataclass(frozen=True, slots=True)
class WorkerOutput:
    """What the gateway needs from any worker's output."""

    text: str
    model: str | None = None
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def normalize_output(output: Any) -> WorkerOutput:
    """Any supported worker output (see module docstring) → :class:`WorkerOutput`.

    Never raises: an unrecognised shape becomes ``WorkerOutput(text="", error=...)``.
    """
    if output is None:
        return WorkerOutput(text="", error="worker returned no output")
    if isinstance(output, str):
        return _from_string(output)
    if isinstance(output, list):
        return _from_pieces(output)
    if isinstance(output, Mapping):
        return _from_mapping(output)
    return WorkerOutput(text="", error=f"unrecognised worker output ({type(output).__name__})")


def _from_string(text: str) -> WorkerOutput:
    stripped = text.lstrip()
    if stripped.startswith("data:"):
        return _from_pieces([text])
    if stripped.startswith("{") and "\n" in stripped.strip():
        return _from_pieces([text])  # NDJSON (worker-ollama stream lines)
    return WorkerOutput(text=text)


def _from_mapping(out: Mapping[str, Any]) -> WorkerOutput:
    error = out.get("error")
    if error:
        return WorkerOutput(text="", error=error if isinstance(error, str) else json.dumps(error))
    if isinstance(out.get("text"), str):  # ours (v1)
        return WorkerOutput(
            text=out["text"],
            model=_str_or_none(out.get("model")),
            usage=out.get("usage") if isinstance(out.get("usage"), dict) else None,
            finish_reason=_str_or_none(out.get("finish_reason")),
            tool_calls=list(out.get("tool_calls") or []),
        )
    if isinstance(out.get("text"), list):  # RunPod's vLLM public output {"text": ["..."]}
        return WorkerOutput(text="".join(str(t) for t in out["text"]))
    if isinstance(out.get("response"), str):  # ancestor worker, Ollama /api/generate
        return WorkerOutput(text=out["response"], model=_str_or_none(out.get("model")))
    if isinstance(out.get("message"), Mapping):  # Ollama /api/chat
        message = out["message"]
        return WorkerOutput(
            text=str(message.get("content") or ""),
            model=_str_or_none(out.get("model")),
            finish_reason=_str_or_none(out.get("done_reason")),
            tool_calls=_ollama_tool_calls(message.get("tool_calls")),
        )
    choices = out.get("choices")
    if isinstance(choices, list):
        return _from_choices(out, choices)
    return WorkerOutput(text="", error="unrecognised worker output (object without text)")


def _from_choices(out: Mapping[str, Any], choices: list[Any]) -> WorkerOutput:
    first = choices[0] if choices and isinstance(choices[0], Mapping) else {}
    if isinstance(first.get("tokens"), list):  # worker-vllm legacy batches
        text = "".join(
            str(t) for c in choices if isinstance(c, Mapping) for t in c.get("tokens", [])
        )
        return WorkerOutput(text=text)
    body = first.get("message") or first.get("delta") or {}
    text = body.get("content") if isinstance(body, Mapping) else None
    if text is None:
        text = first.get("text", "")  # /v1/completions
    return WorkerOutput(
        text=str(text or ""),
        model=_str_or_none(out.get("model")),
        usage=out.get("usage") if isinstance(out.get("usage"), dict) else None,
        finish_reason=_str_or_none(first.get("finish_reason")),
        tool_calls=list(body.get("tool_calls") or []) if isinstance(body, Mapping) else [],
    )


def _from_pieces(pieces: list[Any]) -> WorkerOutput:
    """A list of stream pieces (ours, OpenAI chunks, Ollama lines, raw SSE/NDJSON text)."""
    acc = StreamAccumulator()
    for piece in pieces:
        acc.feed(piece)
    return acc.result()


class StreamAccumulator:
    """Folds stream pieces, in order, into text deltas and a final :class:`WorkerOutput`.

    ``feed`` returns the new text it found, so a streaming consumer can forward deltas as they
    arrive; raw SSE/NDJSON text may be split at any byte boundary (worker-vllm streams it so).
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._buffer = ""
        self.model: str | None = None
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.done = False
        self._framed = False  # saw SSE / NDJSON text: later text pieces are frame fragments
        self._tool_calls: dict[int, dict[str, Any]] = {}

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def feed(self, piece: Any) -> str:
        if isinstance(piece, Mapping) and "output" in piece and len(piece) <= 2:
            piece = piece["output"]  # a RunPod /stream element {"output": ...}
        before = len(self._parts)
        if isinstance(piece, str):
            self._feed_text(piece)
        elif isinstance(piece, Mapping):
            self._feed_object(piece)
        elif isinstance(piece, list):
            for item in piece:
                self.feed(item)
        return "".join(self._parts[before:])

    def _feed_text(self, text: str) -> None:
        stripped = text.lstrip()
        if not self._framed and not stripped.startswith(("data:", "{", ":")):
            self._parts.append(text)  # plain text piece
            return
        self._framed = True  # a later piece may be a lone "\n" between two SSE events
        self._buffer += text
        while True:
            line, sep, rest = self._buffer.partition("\n")
            if not sep:
                break
            self._buffer = rest
            self._feed_line(line.strip())

    def _feed_line(self, line: str) -> None:
        if not line or line.startswith(":"):
            return
        if line.startswith("data:"):
            line = line[5:].strip()
            if line == "[DONE]":
                self.done = True
                return
        try:
            obj = json.loads(line)
        except ValueError:
            return
        if isinstance(obj, Mapping):
            self._feed_object(obj)

    def _feed_object(self, obj: Mapping[str, Any]) -> None:
        if obj.get("error"):
            error = obj["error"]
            self.error = error if isinstance(error, str) else json.dumps(error)
            return
        out = _from_mapping(obj) if not _is_chunk(obj) else _from_choices(obj, obj["choices"])
        if out.error is None:
            if out.text:
                self._parts.append(out.text)
            self.model = out.model or self.model
            self.usage = out.usage or self.usage
            self.finish_reason = out.finish_reason or self.finish_reason
            for i, call in enumerate(out.tool_calls):
                self._merge_tool_call(i, call)
        if obj.get("done") is True or obj.get("finish_reason") or out.finish_reason:
            self.done = self.done or obj.get("done") is True or out.finish_reason is not None

    def _merge_tool_call(self, position: int, call: Mapping[str, Any]) -> None:
        index = call.get("index", position)
        index = index if isinstance(index, int) else position
        current = self._tool_calls.setdefault(
            index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if call.get("id"):
            current["id"] = call["id"]
        fn = call.get("function") or {}
        if fn.get("name"):
            current["function"]["name"] = fn["name"]
        arguments = fn.get("arguments")
        if isinstance(arguments, Mapping):
            current["function"]["arguments"] = json.dumps(arguments)
        elif isinstance(arguments, str):
            current["function"]["arguments"] += arguments

    def result(self) -> WorkerOutput:
        if self._buffer.strip():
            self._feed_line(self._buffer.strip())
            self._buffer = ""
        calls = [self._tool_calls[i] for i in sorted(self._tool_calls)]
        if self.error is not None and not self._parts:
            return WorkerOutput(text="", error=self.error)
        return WorkerOutput(
            text=self.text,
            model=self.model,
            usage=self.usage,
            finish_reason=self.finish_reason,
            tool_calls=calls,
            error=self.error,
        )


def _is_chunk(obj: Mapping[str, Any]) -> bool:
    return isinstance(obj.get("choices"), list) and "text" not in obj


def _ollama_tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(calls or []):
        fn = call.get("function", {}) if isinstance(call, Mapping) else {}
        out.append(
            {
                "id": call.get("id") or f"call_{i}",
                "type": "function",
                "function": {
                    "name": fn.get("name", ""),
                    "arguments": json.dumps(fn.get("arguments", {})),
                },
            }
        )
    return out


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
