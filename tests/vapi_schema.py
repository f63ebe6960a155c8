"""Test helper: is this reply body one VAPI accepts? (vapi-server-sdk 3.0.0, vapi.md §0, §2).

:func:`assert_valid_reply` picks the SDK's ``ServerMessageResponse*`` model by message type,
validates the reply in pydantic *strict* mode (``"0.9"`` is not a float, ``{"a": 1}`` is not a
string), then fails on anything the SDK models let through but VAPI would not use:

* keys the models do not define (the SDK models allow extras; a typo such as ``toolcallId`` or a
  ``{"messageResponse": ...}`` wrapper would silently be ignored by VAPI, vapi.md §0 item 2);
* a tool result with both or neither of ``result``/``error``, or an empty ``toolCallId``;
* a reply that carries no answer (``{}`` where VAPI waits for one);
* values JSON cannot carry (NaN, infinity, non-string keys).

Informational types must be answered ``{}``. ``function-call`` (legacy, no SDK model) must be
``{"result": "<string>"}``. ``voice-request`` expects raw PCM, so its only JSON answer is ``{}``.
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import Any

import pydantic

# Imported on first use: the assistant-request model pulls in most of the SDK (~5 s).
RESPONSE_MODELS: dict[str, str] = {
    "assistant-request": "ServerMessageResponseAssistantRequest",
    "tool-calls": "ServerMessageResponseToolCalls",
    "transfer-destination-request": "ServerMessageResponseTransferDestinationRequest",
    "handoff-destination-request": "ServerMessageResponseHandoffDestinationRequest",
    "knowledge-base-request": "ServerMessageResponseKnowledgeBaseRequest",
    "campaign.predial": "ServerMessageResponseCampaignPredial",
    "call.endpointing.request": "ServerMessageResponseCallEndpointingRequest",
}


@cache
def response_model(message_type: str) -> type[pydantic.BaseModel] | None:
    """The SDK model for a reply type's body, or None for types answered ``{}``."""
    name = RESPONSE_MODELS.get(message_type)
    if name is None:
        return None
    model: type[pydantic.BaseModel] = getattr(importlib.import_module("vapi.types"), name)
    return model


# Extra keys we send on purpose: the docs' ``role`` on the knowledge-base custom message
# (vapi.md §2.6 ⚠: "send type + content (+role harmlessly)").
ALLOWED_EXTRAS: dict[str, set[tuple[str, str]]] = {
    "knowledge-base-request": {(".message", "role")},
}

_ANSWERS: dict[str, tuple[str, ...]] = {
    "assistant-request": (
        "error",
        "destination",
        "assistantId",
        "assistant",
        "squadId",
        "squad",
        "workflowId",
        "workflow",
    ),
    "tool-calls": ("results", "error"),
    "transfer-destination-request": ("destination", "error"),
    "handoff-destination-request": ("destination",),
    "knowledge-base-request": ("documents", "message"),
    "campaign.predial": ("eligible",),
    "call.endpointing.request": ("timeoutSeconds",),
}


def assert_valid_reply(message_type: str, reply: dict[str, Any]) -> None:
    """Fail loudly (AssertionError) unless VAPI would accept ``reply`` to ``message_type``."""
    assert isinstance(reply, dict), f"reply must be a JSON object, got {type(reply).__name__}"
    try:
        text = json.dumps(reply, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{message_type}: reply is not plain JSON: {exc}") from None
    assert json.loads(text) == reply, f"{message_type}: reply changes through JSON: {reply!r}"
    if (message_type, text) in _VALID:
        return  # the same body already passed (fuzz tests repeat replies; SDK checks are slow)
    _check(message_type, reply)
    _VALID.add((message_type, text))


_VALID: set[tuple[str, str]] = set()


def _check(message_type: str, reply: dict[str, Any]) -> None:
    assert "messageResponse" not in reply, "VAPI reads the unwrapped object (vapi.md §0 item 2)"
    if message_type == "function-call":
        assert set(reply) == {"result"}, f"function-call reply must be {{'result'}}: {reply!r}"
        assert isinstance(reply["result"], str), "function-call result must be a string"
        return
    model = response_model(message_type)
    if model is None:
        assert reply == {}, f"{message_type} is informational: answer {{}}, got {reply!r}"
        return
    try:
        parsed = model.model_validate(reply, strict=True)
    except pydantic.ValidationError as exc:
        raise AssertionError(
            f"{message_type}: {model.__name__} rejects {reply!r}:\n{exc}"
        ) from None
    allowed = ALLOWED_EXTRAS.get(message_type, set())
    unexpected = [(p, k) for p, k in _extras(parsed, "") if (p, k) not in allowed]
    assert not unexpected, f"{message_type}: keys VAPI does not define: {unexpected} in {reply!r}"
    present = [k for k in _ANSWERS[message_type] if reply.get(k) not in (None, "", [])]
    if message_type == "knowledge-base-request" and reply.get("documents") == []:
        present.append("documents")  # an empty list is a real answer: "nothing relevant"
    assert present, f"{message_type}: the reply answers nothing: {reply!r}"
    if "error" in reply:
        assert isinstance(reply["error"], str) and reply["error"].strip(), (
            f"{message_type}: an empty error makes VAPI say 'Unknown Error': {reply!r}"
        )
    if message_type == "tool-calls" and "results" in reply:
        _check_results(reply["results"])


def _check_results(results: Any) -> None:
    assert isinstance(results, list) and results, "tool-calls results must be a non-empty list"
    for entry in results:
        assert entry.get("toolCallId"), f"every result needs the exact toolCallId: {entry!r}"
        has_result, has_error = "result" in entry, "error" in entry
        assert has_result != has_error, f"a result carries result xor error: {entry!r}"
        value = entry["result"] if has_result else entry["error"]
        assert isinstance(value, str), f"tool results must be strings: {entry!r}"


def _extras(value: Any, path: str) -> list[tuple[str, str]]:
    """Every (path, key) the SDK models accepted only as an undeclared extra."""
    found: list[tuple[str, str]] = []
    if isinstance(value, pydantic.BaseModel):
        found += [(path, str(k)) for k in (value.model_extra or {})]
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), f"{path}.{_alias(type(value), name)}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += _extras(item, f"{path}[{i}]")
    return found


def _alias(model: type[pydantic.BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name
