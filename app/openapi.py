"""The gateway's OpenAPI 3.1 document, hand-written: every route, its body and its replies.

``openapi_document()`` returns a plain dict (served at ``GET /openapi.json``). It describes the
wire contracts the routes implement — the VAPI server-message envelope (vapi.md §1–§3), the
OpenAI chat-completions request VAPI's custom LLM sends (vapi.md §6), the ancestor's
``/api/chat``, the admin and ops routes — not every optional VAPI field: unknown fields are
allowed everywhere VAPI may add them. ``tests/app/test_openapi.py`` checks that every route the
app registers is documented here, and that every ``$ref`` resolves.
"""

from __future__ import annotations

from typing import Any

from app.metrics import version
from app.vapi.messages import MAX_TYPE_LENGTH, REPLY_TYPES

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description or "JSON", "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    body: str | None = None,
    security: str | None = None,
    params: list[dict[str, Any]] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {JSON: {"schema": _ref(body)}}}
    if security is not None:
        op["security"] = [{security: []}, {}] if security == "vapiSecret" else [{security: []}]
    if params:
        op["parameters"] = params
    return op


_OPENAI = "ChatCompletionRequest"


def _openai_error(description: str) -> dict[str, Any]:
    return _json(_ref("OpenAIError"), description)


_LLM_RESPONSES = {
    "200": {
        "description": "A chat.completion, or with stream=true an SSE stream of "
        "chat.completion.chunk objects ending with data: [DONE]",
        "content": {JSON: {"schema": _ref("ChatCompletion")}, "text/event-stream": {}},
    },
    "400": _openai_error("Body is not JSON"),
    "401": _openai_error("LLM_API_KEY is set and the bearer key is wrong"),
    "413": _openai_error("Body too large"),
    "422": _openai_error("A field breaks the request contract (param names it)"),
}
_ADMIN_DENIED = {
    "401": _error("Wrong or missing admin token"),
    "404": {"description": "ADMIN_TOKEN is not configured: the admin routes do not exist"},
}
_JOB_ID = [{"name": "job_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}}]  # fmt: skip
_UPSTREAM = _error("RunPod failed or did not answer")
_JOB_404 = {
    "description": "RunPod does not know the job or it expired (JSON); the plain-text Not Found"
    " of every admin route while ADMIN_TOKEN is not configured",
    "content": {JSON: {"schema": _ref("Error")}, "text/plain": {"schema": {"type": "string"}}},
}


def _llm(summary: str) -> dict[str, Any]:
    return {"post": _op(summary, _LLM_RESPONSES, tag="llm", body=_OPENAI, security="llmKey")}


def _paths() -> dict[str, Any]:
    admin = {"tag": "admin", "security": "adminToken"}
    return {
        "/vapi/webhook": {
            "post": _op(
                "Every VAPI server message; tool-calls are answered within TOOL_BUDGET_MS",
                {
                    "200": _json(_ref("VapiReply"), "A VAPI-shaped reply (always 200 once parsed)"),
                    "400": _error("Body is not a VAPI envelope"),
                    "401": _error("Webhook verification failed"),
                    "413": _error("Body too large"),
                    "415": _error("Content-Type is a form or HTML, not JSON"),
                },
                tag="vapi",
                body="VapiEnvelope",
                security="vapiSecret",
            )
        },
        "/vapi/chat/completions": _llm("VAPI custom LLM (model.url = PUBLIC_URL/vapi)"),
        "/vapi/chat/completions/chat/completions": _llm("The same, at the docs' doubled path"),
        "/v1/chat/completions": _llm("The same, for any OpenAI client"),
        "/api/chat": {
            "post": _op(
                "One message, one answer within CHAT_BUDGET_MS (the ancestor's API)",
                {
                    "200": _json(_ref("ChatReply"), "The answer, or the fallback sentence"),
                    "400": _error("Body is not JSON"),
                    "413": _error("Body too large"),
                    "422": _error("A field is invalid (field names it)"),
                },
                tag="chat",
                body="ChatRequest",
            )
        },
        "/healthz": {"get": _op("Liveness: the process serves", _HEALTH, tag="ops")},
        "/health": {"get": _op("Alias of /healthz", _HEALTH, tag="ops")},
        "/readyz": {
            "get": _op(
                "Readiness: RunPod /health answered within READY_MAX_AGE_S",
                {
                    "200": _json(_ref("Readiness"), "Ready"),
                    "503": _json(_ref("Readiness"), "Not ready; reason says why"),
                },
                tag="ops",
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus text exposition (pete_* metrics)",
                {
                    "200": {
                        "description": "text/plain; version=0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _error("METRICS_TOKEN is set and the bearer token is wrong"),
                },
                tag="ops",
                security="metricsToken",
            )
        },
        "/openapi.json": {
            "get": _op(
                "This document",
                {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                tag="ops",
            )
        },
        "/admin/status": {
            "get": _op(
                "RunPod health, breaker, turns in flight, limits, budgets, version",
                {"200": _json(_ref("AdminStatus"), "Status"), **_ADMIN_DENIED},
                **admin,
            )
        },
        "/admin/warmup": {
            "post": _op(
                "Submit N warm-up jobs with /run",
                {
                    "200": _json(_ref("WarmupResult"), "At least one job submitted"),
                    "400": _error("Body is not JSON"),
                    "422": _error("count out of range"),
                    "502": _json(_ref("WarmupResult"), "No job could be submitted"),
                    **_ADMIN_DENIED,
                },
                body="WarmupRequest",
                body_required=False,  # no body at all = {"count": 1}
                **admin,
            )
        },
        "/admin/purge-queue": {
            "post": _op(
                "RunPod /purge-queue: remove queued jobs (running ones go on)",
                {
                    "200": _json({"type": "object"}, "RunPod's answer, e.g. {removed, status}"),
                    "502": _UPSTREAM,
                    **_ADMIN_DENIED,
                },
                **admin,
            )
        },
        "/admin/jobs/{job_id}": {
            "get": _op(
                "RunPod /status of one job",
                {
                    "200": _json(_ref("RunPodJob"), "The job as RunPod reports it"),
                    "404": _JOB_404,
                    "401": _ADMIN_DENIED["401"],
                    "422": _error("Malformed job id"),
                    "502": _UPSTREAM,
                },
                params=_JOB_ID,
                **admin,
            )
        },
        "/admin/jobs/{job_id}/cancel": {
            "post": _op(
                "RunPod /cancel of one job",
                {
                    "200": _json(_ref("CancelResult"), "Cancelled"),
                    "404": _JOB_404,
                    "401": _ADMIN_DENIED["401"],
                    "422": _error("Malformed job id"),
                    "502": _json(_ref("CancelResult"), "RunPod refused or did not answer"),
                },
                params=_JOB_ID,
                **admin,
            )
        },
        "/admin/config": {
            "get": _op(
                "Effective settings, secrets masked as ***",
                {"200": _json({"type": "object"}, "Settings"), **_ADMIN_DENIED},
                **admin,
            )
        },
        "/admin/action": {
            "post": _op(
                "The ancestor's single admin endpoint, mapped onto the routes above",
                {
                    "200": {"description": "The mapped route's answer"},
                    "400": _error("Body is not JSON"),
                    "422": _error("Unknown action or bad count"),
                    "502": _UPSTREAM,
                    **_ADMIN_DENIED,
                },
                body="AdminAction",
                **admin,
            )
        },
    }


_HEALTH = {"200": _json({"type": "object", "properties": {"status": {"const": "ok"}}}, "Alive")}

_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool", "developer", "function"]},
        "content": {"type": ["string", "array", "null"]},
        "tool_calls": {"type": ["array", "null"], "items": {"type": "object"}},
        "tool_call_id": {"type": ["string", "null"]},
    },
}

_MESSAGE_FIELDS: dict[str, Any] = {
    "timestamp": {"type": ["string", "number"]},
    "call": {"type": "object", "properties": {"id": {"type": "string"}}},
    "toolCallList": {"type": "array", "items": _ref("VapiToolCall")},
    "toolWithToolCallList": {"type": "array", "items": {"type": "object"}},
    "artifact": {
        "type": "object",
        "properties": {"messagesOpenAIFormatted": {"type": "array", "items": _MESSAGE}},
    },
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    },
    "OpenAIError": {
        "type": "object",
        "description": "OpenAI's error envelope (the custom-LLM routes), so OpenAI clients read it",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "examples": ["invalid_request_error"]},
                    "code": {"type": "string", "examples": ["invalid_value", "invalid_api_key"]},
                    "param": {"type": ["string", "null"], "description": "The offending field"},
                },
            }
        },
    },
    "VapiEnvelope": {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {
                "description": "Any VapiMessage; the shapes the gateway answers are listed first",
                "anyOf": [
                    _ref("VapiToolCallsMessage"),
                    _ref("VapiReplyRequest"),
                    _ref("VapiMessage"),
                ],
            }
        },
    },
    "VapiMessage": {
        "type": "object",
        "required": ["type"],
        "description": "A VAPI server message; unknown types are acknowledged with {}. Only"
        " `type` is enforced (400 when it is missing, empty, not a string, longer than"
        f" {MAX_TYPE_LENGTH} characters or not printable). The other fields are what VAPI sends:"
        " each is read when it has this shape and ignored when it does not, so a message VAPI"
        " extends or reshapes is still answered (200) rather than bounced.",
        "properties": {
            "type": {"type": "string", "minLength": 1, "maxLength": MAX_TYPE_LENGTH},
            **_MESSAGE_FIELDS,
        },
    },
    "VapiToolCallsMessage": {
        "type": "object",
        "description": "tool-calls: answered with {results: [...]} within TOOL_BUDGET_MS",
        "required": ["type", "toolCallList"],
        "properties": {
            **_MESSAGE_FIELDS,
            "type": {"const": "tool-calls"},
            "toolCallList": {"type": "array", "minItems": 1, "items": _ref("VapiToolCall")},
        },
    },
    "VapiReplyRequest": {
        "type": "object",
        "description": "The other types whose reply body VAPI reads (vapi.md §0 item 4)",
        "required": ["type"],
        "properties": {
            **_MESSAGE_FIELDS,
            "type": {"enum": sorted(REPLY_TYPES - {"tool-calls"})},
        },
    },
    "VapiToolCall": {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "function"},
            "function": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "arguments": {"type": ["object", "string"]},
                },
            },
        },
    },
    "VapiReply": {
        "type": "object",
        "description": "{} for informational messages; {results: [...]} for tool-calls",
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["toolCallId"],
                    "properties": {
                        "toolCallId": {"type": "string"},
                        "name": {"type": "string"},
                        "result": {"type": "string"},
                        "error": {"type": "string"},
                    },
                },
            }
        },
    },
    _OPENAI: {
        "type": "object",
        "required": ["messages"],
        "description": "null counts as absent for every optional field (as in OpenAI's API)",
        "properties": {
            "model": {"type": ["string", "null"]},
            "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
            "stream": {"type": ["boolean", "null"]},
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "max_tokens": {"type": ["integer", "null"], "minimum": 1},
            "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
            "tools": {"type": ["array", "null"], "items": _ref("Tool")},
            "call": {"type": ["object", "null"], "description": "VAPI adds the call object"},
        },
    },
    "Tool": {
        "type": "object",
        "description": 'An OpenAI function tool, {"type": "function", "function": {"name",'
        ' "description", "parameters"}}: the gateway checks function.name, the engine the rest',
        "required": ["function"],
        "properties": {
            "function": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}},
            },
        },
    },
    "ChatCompletion": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": {"type": "object"}},
            "usage": {"type": "object"},
        },
    },
    "ChatRequest": {
        "type": "object",
        "required": ["message"],
        "description": "null counts as absent for the optional fields",
        "properties": {
            "message": {
                "type": "string",
                "minLength": 1,
                "maxLength": 32_000,
                "description": "Not blank (whitespace only is a 422)",
            },
            "model": {"type": ["string", "null"]},
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "max_tokens": {"type": ["integer", "null"], "minimum": 1},
        },
    },
    "ChatReply": {
        "type": "object",
        "required": ["response", "model", "job_id", "latency_ms"],
        "properties": {
            "response": {"type": "string"},
            "model": {"type": "string"},
            "job_id": {"type": ["string", "null"]},
            "latency_ms": {"type": "integer"},
            "fallback": {"enum": ["slow", "failed", "overloaded", "breaker_open", None]},
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ready", "not_ready"]},
            "reason": {"type": "string"},
            "runpod": {"type": "object"},
            "breaker": {"enum": ["closed", "open", "half_open"]},
        },
    },
    "AdminStatus": {
        "type": "object",
        "properties": {
            "version": {"type": "string"},
            "endpoint_url": {"type": "string"},
            "runpod": {"type": "object"},
            "breaker": {"type": "object"},
            "inflight_turns": {"type": "integer"},
            "max_inflight_turns": {"type": "integer"},
            "background_tasks": {"type": "integer"},
            "upstream_limits": {"type": "object"},
            "budgets_ms": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "WarmupRequest": {
        "type": "object",
        "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}},
    },
    "WarmupResult": {
        "type": "object",
        "properties": {
            "requested": {"type": "integer"},
            "submitted": {"type": "array", "items": {"type": "object"}},
            "failed": {"type": "array", "items": {"type": "string"}},
        },
    },
    "RunPodJob": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "output": {},
            "error": {"type": "string"},
            "delayTime": {"type": "number"},
            "executionTime": {"type": "number"},
        },
    },
    "CancelResult": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "cancelled": {"type": "boolean"}},
    },
    "AdminAction": {
        "type": "object",
        "required": ["action"],
        "properties": {
            "action": {"enum": ["status", "warmup", "purge_queue", "config"]},
            "count": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10,
                "description": "Warm-up jobs (warmup only; checked whenever sent)",
            },
        },
    },
}

_SECURITY = {
    "vapiSecret": {"type": "apiKey", "in": "header", "name": "x-vapi-secret",
                   "description": "VAPI_SECRET (or an HMAC signature; see README)"},
    "llmKey": {"type": "http", "scheme": "bearer", "description": "LLM_API_KEY, when set"},
    "adminToken": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"},
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN, when set"},
}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "PeteOllama gateway",
            "version": version(),
            "description": "VAPI webhooks and custom-LLM turns as deadline-bounded RunPod jobs.",
        },
        "paths": _paths(),
        "components": {"schemas": _SCHEMAS, "securitySchemes": _SECURITY},
    }
