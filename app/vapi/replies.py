"""Reply bodies for every VAPI server message that reads one (vapi.md §2, §0 items 2–6).

Plain builders from data to the *unwrapped* JSON body VAPI expects (§0 item 2: never
``{"messageResponse": ...}``); the route sends them with HTTP 200 (§0 item 3).

=============================  ====================================================================
message type                   builders
=============================  ====================================================================
assistant-request (§2.1)       :func:`assistant_reply`, :func:`assistant_id_reply`,
                               :func:`assistant_destination_reply`, :func:`assistant_error_reply`
                               (templates: :mod:`app.vapi.assistant`)
tool-calls (§2.2)              :func:`tool_results_reply` (re-exported),
                               :func:`tool_calls_error_reply`
function-call (§2.3)           :func:`function_call_reply`
transfer-destination (§2.4)    :func:`transfer_destination_reply`, :func:`transfer_error_reply`,
                               :func:`answer_transfer` (picks from :data:`Destinations`)
handoff-destination (§2.5)     :func:`handoff_destination_reply`, :func:`handoff_error_reply`,
                               :func:`answer_handoff`
knowledge-base-request (§2.6)  :func:`knowledge_base_reply`
campaign.predial (§2 table)    :func:`campaign_predial_reply`
call.endpointing.request       :func:`endpointing_reply`
everything else                :func:`ack` (``{}``)
=============================  ====================================================================

:func:`fallback_reply` is the one reply per type to send when our own work failed: a speakable
``error`` where VAPI speaks it, the conservative answer where it does not.

Destinations (transfer targets) are plain data: a mapping from a name to a VAPI destination
object, validated once by :func:`app.vapi.destinations.load_destinations` (normally from the
assistant template file; re-exported here). Builders that take a destination raise
:class:`DestinationError` (a ``ValueError``) for one that VAPI would reject; builders that take
text never raise, and their spoken sentences are never empty and never contain line breaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from app.vapi.destinations import (
    DestinationError,
    Destinations,
    choose_destination,
    load_destinations,
    validate_destination,
)
from app.vapi.messages import REPLY_TYPES, ServerMessage, finite_number
from app.vapi.toolcalls import ToolResult, speakable, tool_results_reply

__all__ = [
    "DEFAULT_ENDPOINTING_TIMEOUT_S",
    "DEFAULT_ERROR",
    "DEFAULT_UNAVAILABLE",
    "DestinationError",
    "Destinations",
    "Document",
    "ToolResult",
    "ack",
    "answer_handoff",
    "answer_transfer",
    "assistant_destination_reply",
    "assistant_error_reply",
    "assistant_id_reply",
    "assistant_reply",
    "campaign_predial_reply",
    "choose_destination",
    "endpointing_reply",
    "fallback_reply",
    "function_call_reply",
    "handoff_destination_reply",
    "handoff_error_reply",
    "knowledge_base_reply",
    "load_destinations",
    "tool_calls_error_reply",
    "tool_results_reply",
    "transfer_destination_reply",
    "transfer_error_reply",
    "validate_destination",
]

DEFAULT_ERROR: Final = "Sorry, something went wrong on our side. Please call back in a moment."
DEFAULT_UNAVAILABLE: Final = "Sorry, I can't transfer you right now. Please try again later."
DEFAULT_ENDPOINTING_TIMEOUT_S: Final = 0.5


@dataclass(frozen=True, slots=True)
class Document:
    """One knowledge-base hit (vapi.md §2.6): ``content`` and ``similarity`` are required."""

    content: str
    similarity: float
    uuid: str | None = None


def ack() -> dict[str, Any]:
    """``{}``: the immediate answer to every informational message (vapi.md §0 item 4)."""
    return {}


# --- assistant-request (§2.1) -------------------------------------------------------------------


def assistant_reply(
    assistant: Mapping[str, Any], *, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``{"assistant": {...}}`` (a transient assistant), plus ``assistantOverrides`` if given."""
    reply: dict[str, Any] = {"assistant": dict(assistant)}
    if overrides:
        reply["assistantOverrides"] = dict(overrides)
    return reply


def assistant_id_reply(
    assistant_id: str, *, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``{"assistantId": ...}``: a saved assistant, plus ``assistantOverrides`` if given."""
    reply: dict[str, Any] = {"assistantId": str(assistant_id)}
    if overrides:
        reply["assistantOverrides"] = dict(overrides)
    return reply


def assistant_destination_reply(destination: Mapping[str, Any]) -> dict[str, Any]:
    """``{"destination": {...}}``: transfer at once without any assistant (number or sip only)."""
    return {"destination": validate_destination(destination, purpose="assistant-request")}


def assistant_error_reply(error: Any = DEFAULT_ERROR) -> dict[str, Any]:
    """``{"error": "..."}``: spoken to the caller, call not accepted (never empty: VAPI would say
    "Unknown Error. Contact Support.")."""
    return {"error": _sentence(error, DEFAULT_ERROR)}


# --- tool-calls (§2.2) and function-call (§2.3) -------------------------------------------------


def tool_calls_error_reply(error: Any = DEFAULT_ERROR) -> dict[str, Any]:
    """``{"error": "..."}`` for a whole batch we could not even read (prefer per-call errors)."""
    return {"error": _sentence(error, DEFAULT_ERROR)}


def function_call_reply(result: Any) -> dict[str, Any]:
    """``{"result": "<string>"}`` for the legacy ``function-call`` (objects JSON-encoded)."""
    return {"result": speakable(result if result is not None else "")}


# --- transfer-destination-request (§2.4) and handoff-destination-request (§2.5) -----------------


def transfer_destination_reply(
    destination: Mapping[str, Any], *, message: Any = None
) -> dict[str, Any]:
    """``{"destination": {...}, "message"?: {"type": "request-start", "content"}}``."""
    reply: dict[str, Any] = {"destination": validate_destination(destination, purpose="transfer")}
    content = _optional_sentence(message)
    if content is not None:
        reply["message"] = {"type": "request-start", "content": content}
    return reply


def transfer_error_reply(error: Any = DEFAULT_UNAVAILABLE) -> dict[str, Any]:
    """``{"error": "..."}``: refuse the transfer; VAPI speaks the sentence."""
    return {"error": _sentence(error, DEFAULT_UNAVAILABLE)}


def handoff_destination_reply(
    destination: Mapping[str, Any], *, result: Any = None
) -> dict[str, Any]:
    """``{"destination": {"type": "assistant", ...}, "result"?}`` (vapi.md §2.5)."""
    reply: dict[str, Any] = {"destination": validate_destination(destination, purpose="handoff")}
    if result is not None:
        reply["result"] = speakable(result)
    return reply


def handoff_error_reply(error: Any = DEFAULT_UNAVAILABLE) -> dict[str, Any]:
    """``{"destination": {}, "error": "..."}``: refuse the handoff.

    The SDK marks ``destination`` required even beside ``error``, so an empty object is sent
    (⚠ VAPI's handling of this exact shape is unconfirmed; it is the schema-valid refusal).
    """
    return {"destination": {}, "error": _sentence(error, DEFAULT_UNAVAILABLE)}


def answer_transfer(
    message: ServerMessage, destinations: Destinations, *, unavailable: str = DEFAULT_UNAVAILABLE
) -> dict[str, Any]:
    """The whole ``transfer-destination-request`` answer: a configured destination or an error."""
    chosen = choose_destination(message, destinations, purpose="transfer")
    if chosen is None:
        return transfer_error_reply(unavailable)
    try:
        return transfer_destination_reply(chosen[1])
    except DestinationError:
        return transfer_error_reply(unavailable)


def answer_handoff(
    message: ServerMessage, destinations: Destinations, *, unavailable: str = DEFAULT_UNAVAILABLE
) -> dict[str, Any]:
    """The whole ``handoff-destination-request`` answer: an assistant destination or an error."""
    chosen = choose_destination(message, destinations, purpose="handoff")
    if chosen is None:
        return handoff_error_reply(unavailable)
    try:
        return handoff_destination_reply(chosen[1])
    except DestinationError:
        return handoff_error_reply(unavailable)


# --- knowledge-base-request (§2.6), campaign.predial, call.endpointing.request ------------------


def knowledge_base_reply(
    documents: Iterable[Document | Mapping[str, Any]] = (), *, message: Any = None
) -> dict[str, Any]:
    """``{"documents": [{"content", "similarity", "uuid"?}]}`` and/or a spoken ``message``.

    ``message`` skips the model: ``{"type": "custom-message", "content", "role": "assistant"}``
    (the SDK's CustomMessage plus the docs' ``role``, vapi.md §2.6). Similarities are clamped to
    [0, 1]; with no documents and no message the reply is ``{"documents": []}`` (the model
    answers on its own).
    """
    docs = [d for d in map(_document, documents) if d is not None]
    content = _optional_sentence(message)
    reply: dict[str, Any] = {}
    if docs or content is None:
        reply["documents"] = docs
    if content is not None:
        reply["message"] = {"type": "custom-message", "content": content, "role": "assistant"}
    return reply


def campaign_predial_reply(eligible: bool) -> dict[str, Any]:
    """``{"eligible": true|false}``: anything else records a pre-dial failure (vapi.md §5)."""
    return {"eligible": eligible is True}


def endpointing_reply(timeout_seconds: float = DEFAULT_ENDPOINTING_TIMEOUT_S) -> dict[str, Any]:
    """``{"timeoutSeconds": s}``: how long to wait before the user's turn counts as finished."""
    value = finite_number(timeout_seconds)
    if value is None or value < 0:
        value = DEFAULT_ENDPOINTING_TIMEOUT_S
    return {"timeoutSeconds": min(value, 60.0)}


def fallback_reply(message_type: str, sentence: Any = DEFAULT_ERROR) -> dict[str, Any]:
    """The reply when our own handling of ``message_type`` failed: never a 5xx, never silence.

    Speakable ``error`` for assistant-request, tool-calls (whole batch), transfer and handoff;
    the sentence as the ``result`` of a legacy function call; ``{"documents": []}`` for the
    knowledge base (the model answers alone rather than the caller hearing an error);
    ``eligible: false`` for campaign pre-dial (do not dial what we could not check); the default
    endpointing timeout; ``{}`` for everything else.
    """
    if message_type not in REPLY_TYPES:
        return ack()
    if message_type == "function-call":
        return function_call_reply(_sentence(sentence, DEFAULT_ERROR))
    if message_type == "transfer-destination-request":
        return transfer_error_reply(_sentence(sentence, DEFAULT_UNAVAILABLE))
    if message_type == "handoff-destination-request":
        return handoff_error_reply(_sentence(sentence, DEFAULT_UNAVAILABLE))
    if message_type == "knowledge-base-request":
        return knowledge_base_reply()
    if message_type == "campaign.predial":
        return campaign_predial_reply(False)
    if message_type == "call.endpointing.request":
        return endpointing_reply()
    return {"error": _sentence(sentence, DEFAULT_ERROR)}  # assistant-request, tool-calls


def _document(doc: Document | Mapping[str, Any]) -> dict[str, Any] | None:
    if isinstance(doc, Document):
        content, similarity, uuid = doc.content, doc.similarity, doc.uuid
    elif isinstance(doc, Mapping):
        content, similarity, uuid = doc.get("content"), doc.get("similarity"), doc.get("uuid")
    else:
        return None
    if content is None:
        return None
    score = finite_number(similarity)
    out: dict[str, Any] = {
        "content": content if isinstance(content, str) else speakable(content),
        "similarity": min(max(score, 0.0), 1.0) if score is not None else 0.0,
    }
    if isinstance(uuid, str) and uuid:
        out["uuid"] = uuid
    return out


def _sentence(value: Any, default: str) -> str:
    """Speakable, single-line, non-empty (falls back to ``default`` or the generic sentence)."""
    text = speakable(value if value is not None else "").strip()
    return text or default or DEFAULT_ERROR


def _optional_sentence(value: Any) -> str | None:
    if value is None:
        return None
    return speakable(value).strip() or None
