"""Job inputs for workers we did not build (issue #5; runpod.md §4.1–§4.2). Pure, shared.

The gateway always thinks in contract v1 (:mod:`gpu_worker.contract`); ``RUNPOD_JOB_FORMAT``
chooses what actually goes to RunPod:

* ``pete`` — v1 as is (our worker);
* ``openai`` — worker-vllm's OpenAI passthrough
  ``{"openai_route": "/v1/chat/completions", "openai_input": {model, messages, ...}}``
  (it streams raw SSE text in arbitrary chunk boundaries when ``stream`` is true);
* ``ollama`` — worker-ollama's ``{"model", "messages", "options", "stream", "tools"?}`` for
  ``/api/chat`` (it yields NDJSON lines as strings when streaming, else the reply dict);
* ``prompt`` — the ancestor's prompt-only worker ``{"prompt": "<conversation as text>"}``.

Tool jobs carry their instruction as a system message (:func:`contract.engine_messages`), so
every format asks the model the same question. Their outputs are folded back by
:func:`contract.normalize_output` / :class:`contract.StreamAccumulator`.
"""

from __future__ import annotations

from typing import Any, Literal

from gpu_worker.contract import engine_messages, parse_job_input

JobFormat = Literal["pete", "openai", "ollama", "prompt"]
FORMATS: tuple[str, ...] = ("pete", "openai", "ollama", "prompt")


def to_worker_input(v1: dict[str, Any], fmt: str, *, model: str | None = None) -> dict[str, Any]:
    """A v1 job input rewritten for the worker kind ``fmt`` (ValueError for an unknown kind)."""
    if fmt == "pete":
        return v1
    if fmt not in FORMATS:
        raise ValueError(f"unknown job format {fmt!r}; expected one of {', '.join(FORMATS)}")
    job = parse_job_input(v1)
    messages = engine_messages(job)
    model = job.model or model
    if fmt == "prompt":
        return {"prompt": _as_prompt(messages)}
    if fmt == "openai":
        body: dict[str, Any] = {"messages": messages, "stream": job.stream}
        if model:
            body["model"] = model
        if job.max_tokens is not None:
            body["max_tokens"] = job.max_tokens
        if job.temperature is not None:
            body["temperature"] = job.temperature
        if job.tools:
            body["tools"] = list(job.tools)
        return {"openai_route": "/v1/chat/completions", "openai_input": body}
    options: dict[str, Any] = {}
    if job.max_tokens is not None:
        options["num_predict"] = job.max_tokens
    if job.temperature is not None:
        options["temperature"] = job.temperature
    out: dict[str, Any] = {"messages": messages, "stream": job.stream}
    if model:
        out["model"] = model
    if options:
        out["options"] = options
    if job.tools:
        out["tools"] = list(job.tools)
    return out


def _as_prompt(messages: list[dict[str, Any]]) -> str:
    lines = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):  # OpenAI content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if content:
            lines.append(f"{m.get('role', 'user')}: {content}")
    lines.append("assistant:")
    return "\n".join(lines)
