"""The VAPI server-message envelope: parse, classify, summarise (vapi.md §1, §2, §0 items 1 and 4).

Contract:

* :func:`parse_envelope` takes the raw request body (``bytes``) and returns a
  :class:`ServerMessage`, or raises :class:`BadRequest` (a ``ValueError``) with a short ``reason``
  label and a JSON-able :meth:`BadRequest.as_dict`. No other exception escapes, whatever the
  bytes (random bytes, deep nesting, huge numbers, non-objects: all are ``BadRequest``).
* Both payload generations are read (vapi.md §1, §2.7, §8): ``timestamp`` as an ISO-8601 string
  (2024), epoch seconds or epoch milliseconds (current); ``call.id`` then ``call.callId`` (2024);
  the conversation from ``artifact.messagesOpenAIFormatted`` then top-level
  ``messagesOpenAIFormatted``.
* :data:`REPLY_TYPES` are the types whose reply *body* VAPI uses and that we can answer in JSON
  (vapi.md §0 item 4, minus ``voice-request``, whose reply is raw PCM). Every other type,
  including ``transcript[transcriptType="final"]``, ``chat.*``, ``session.*``, ``call.*`` and
  types we have never seen, is informational: the route answers ``{}`` at once (§0 item 1).
* :func:`end_of_call_summary` turns an ``end-of-call-report`` (either generation) into one
  log-safe dict: identifiers, reasons, durations, costs and counts, never caller speech
  (no transcript, summary, message text, recording URL or phone number).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

MessageType = Literal[
    "assistant-request",
    "tool-calls",
    "function-call",
    "transfer-destination-request",
    "handoff-destination-request",
    "knowledge-base-request",
    "campaign.predial",
    "call.endpointing.request",
    "voice-request",
    "status-update",
    "end-of-call-report",
    "transcript",
    'transcript[transcriptType="final"]',
    "conversation-update",
    "hang",
    "speech-update",
    "user-interrupted",
    "model-output",
    "voice-input",
    "phone-call-control",
    "transfer-update",
    "language-change-detected",
    "language-changed",
    "assistant.speechStarted",
    "assistant.started",
    "chat.created",
    "chat.deleted",
    "session.created",
    "session.updated",
    "session.deleted",
    "call.deleted",
    "call.delete.failed",
    "call.artifact.upload",
]
"""Every ``message.type`` vapi.md §1/§2 lists. Unknown types are still parsed (as plain ``str``)."""

KNOWN_TYPES: Final[frozenset[str]] = frozenset(get_args(MessageType))

REPLY_TYPES: Final[frozenset[str]] = frozenset(
    {
        "assistant-request",
        "tool-calls",
        "function-call",
        "transfer-destination-request",
        "handoff-destination-request",
        "knowledge-base-request",
        "campaign.predial",
        "call.endpointing.request",
    }
)
"""Types whose JSON reply body VAPI reads (vapi.md §0 item 4). Everything else gets ``{}``."""

UNANSWERABLE_TYPES: Final[frozenset[str]] = frozenset({"voice-request"})
"""VAPI expects a reply body we cannot give in JSON (raw PCM, vapi.md §2 table). Acked ``{}``;
only sent to ``assistant.voice.server.url``, which our templates never point at us."""

Classification = Literal["reply", "informational"]

BadRequestReason = Literal[
    "invalid_json", "not_an_object", "missing_message", "missing_type", "invalid_type"
]

MAX_TYPE_LENGTH: Final = 100
# Epoch values above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is March 1973.
_MS_THRESHOLD: Final = 1e11


class BadRequest(ValueError):
    """The body is not a VAPI envelope. ``reason`` is a stable label; the message is for humans."""

    def __init__(self, reason: BadRequestReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: BadRequestReason = reason
        self.detail = detail

    def as_dict(self) -> dict[str, str]:
        """The JSON body of the 400 reply: ``{"error": "bad_request", "reason", "detail"}``."""
        return {"error": "bad_request", "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """One parsed ``body["message"]``. ``raw`` is the message object exactly as VAPI sent it."""

    type: str
    raw: Mapping[str, Any] = field(repr=False)
    call_id: str | None = None
    timestamp: float | None = None
    phone_number: str | None = None  # the called VAPI number (``phoneNumber.number``, else id)
    phone_number_id: str | None = None
    customer_number: str | None = None  # the caller (PII: never log at INFO)
    control_url: str | None = field(default=None, repr=False)  # live call control (a capability)
    conversation: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    @property
    def expects_reply(self) -> bool:
        """True when VAPI reads our reply body (vapi.md §0 item 4)."""
        return self.type in REPLY_TYPES

    @property
    def classification(self) -> Classification:
        """``"reply"`` or ``"informational"``: see :func:`classify`."""
        return classify(self.type)


def classify(message_type: str) -> Classification:
    """``"reply"`` for :data:`REPLY_TYPES`, ``"informational"`` for everything else."""
    return "reply" if message_type in REPLY_TYPES else "informational"


def is_transcript(message_type: str) -> bool:
    """``transcript`` and the filtered ``transcript[transcriptType="final"]`` (vapi.md §2.8)."""
    return message_type.startswith("transcript")


def parse_envelope(body: bytes) -> ServerMessage:
    """``{"message": {"type": ...}}`` → :class:`ServerMessage`; anything else: BadRequest."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadRequest("invalid_json", "body nests too deeply") from None
    except (ValueError, TypeError):  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise BadRequest("invalid_json", "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("not_an_object", "body must be a JSON object")
    message = data.get("message")
    if message is None:
        raise BadRequest("missing_message", "body has no 'message' object")
    if not isinstance(message, dict):
        raise BadRequest("missing_message", "'message' must be a JSON object")
    mtype = message.get("type")
    if mtype is None or mtype == "":
        raise BadRequest("missing_type", "message.type is missing")
    if not isinstance(mtype, str) or len(mtype) > MAX_TYPE_LENGTH or not mtype.isprintable():
        raise BadRequest("invalid_type", "message.type must be a short printable string")
    return from_message(message)


def from_message(message: Mapping[str, Any]) -> ServerMessage:
    """A :class:`ServerMessage` from an already-decoded message object (``type`` must be a str)."""
    call = _mapping(message.get("call"))
    phone = _mapping(message.get("phoneNumber"))
    customer = _mapping(message.get("customer")) or _mapping(call.get("customer"))
    return ServerMessage(
        type=str(message.get("type", "")),
        raw=message,
        call_id=_ident(call.get("id")) or _ident(call.get("callId")),
        timestamp=parse_timestamp(message.get("timestamp")),
        phone_number=_ident(phone.get("number")) or _ident(phone.get("id")),
        phone_number_id=_ident(phone.get("id")) or _ident(call.get("phoneNumberId")),
        customer_number=_ident(customer.get("number")),
        control_url=_text(_mapping(call.get("monitor")).get("controlUrl")),
        conversation=conversation_of(message),
    )


def conversation_of(message: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """``artifact.messagesOpenAIFormatted``, else top-level ``messagesOpenAIFormatted``, else ()."""
    for raw in (
        _mapping(message.get("artifact")).get("messagesOpenAIFormatted"),
        message.get("messagesOpenAIFormatted"),
    ):
        if isinstance(raw, list):
            return tuple(m for m in raw if isinstance(m, Mapping))
    return ()


def parse_timestamp(value: Any) -> float | None:
    """Epoch seconds from an ISO-8601 string, epoch seconds or epoch ms (number or digit string)."""
    if isinstance(value, bool) or value is None:
        return None
    seconds: float | None
    if isinstance(value, int | float):
        seconds = finite_number(value)
    elif isinstance(value, str) and 0 < len(value) <= 64:
        text = value.strip()
        seconds = _finite_text(text)
        if seconds is None:
            seconds = _iso_seconds(text)
    else:
        return None
    if seconds is None or seconds <= 0:
        return None
    if seconds > _MS_THRESHOLD:
        seconds /= 1000.0
    return seconds if seconds <= _MS_THRESHOLD else None


def end_of_call_summary(message: Mapping[str, Any]) -> dict[str, Any]:
    """One log-safe record of an ``end-of-call-report`` (vapi.md §2.7), with no caller speech.

    Reads the current layout (``artifact.*``, ``analysis.*``) and the 2024 one (top-level
    ``transcript``/``summary``/``messages``/``recordingUrl``). Keys: ``call_id``, ``ended_reason``,
    ``call_type``, ``started_at``/``ended_at`` (epoch s), ``duration_s``, ``cost``, ``costs``
    (per-type totals), ``message_count``, ``has_transcript``, ``has_summary``,
    ``has_recording``, ``success_evaluation`` (only when a bool or number), ``layout``.
    """
    if not isinstance(message, Mapping):
        return {"layout": "invalid"}
    call = _mapping(message.get("call"))
    artifact = _mapping(message.get("artifact"))
    analysis = _mapping(message.get("analysis"))
    started = parse_timestamp(message.get("startedAt")) or parse_timestamp(call.get("startedAt"))
    ended = parse_timestamp(message.get("endedAt")) or parse_timestamp(call.get("endedAt"))
    messages = artifact.get("messages")
    if not isinstance(messages, list):
        messages = message.get("messages")
    summary: dict[str, Any] = {
        "call_id": _ident(call.get("id")) or _ident(call.get("callId")),
        "ended_reason": _label(message.get("endedReason")) or _label(call.get("endedReason")),
        "call_type": _label(call.get("type")),
        "started_at": started,
        "ended_at": ended,
        "duration_s": _duration(message, started, ended),
        "cost": finite_number(message.get("cost")),
        "costs": _cost_totals(message.get("costs")),
        "message_count": len(messages) if isinstance(messages, list) else 0,
        "has_transcript": _present(artifact.get("transcript"), message.get("transcript")),
        "has_summary": _present(analysis.get("summary"), message.get("summary")),
        "has_recording": _present(
            artifact.get("recordingUrl"),
            artifact.get("stereoRecordingUrl"),
            _mapping(artifact.get("recording")),
            message.get("recordingUrl"),
            message.get("stereoRecordingUrl"),
        ),
        "success_evaluation": _evaluation(analysis.get("successEvaluation")),
        "layout": "artifact" if artifact else "legacy",
    }
    return summary


def _duration(
    message: Mapping[str, Any], started: float | None, ended: float | None
) -> float | None:
    if started is not None and ended is not None and ended >= started:
        return round(ended - started, 3)
    for key, scale in (("durationSeconds", 1.0), ("durationMs", 0.001)):
        value = finite_number(message.get(key))
        if value is not None and value >= 0:
            return round(value * scale, 3)
    return None


def _cost_totals(costs: Any) -> dict[str, float]:
    totals: dict[str, float] = {}
    for item in costs if isinstance(costs, list) else ():
        if not isinstance(item, Mapping):
            continue
        kind = _label(item.get("type"))
        cost = finite_number(item.get("cost"))
        if kind is not None and cost is not None and (kind in totals or len(totals) < 20):
            totals[kind] = round(totals.get(kind, 0.0) + cost, 6)
    return totals


def _evaluation(value: Any) -> bool | float | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return finite_number(value)


def _present(*values: Any) -> bool:
    return any(bool(v) for v in values if isinstance(v, str | Mapping | list))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ident(value: Any) -> str | None:
    """An id or number: a non-empty string (bounded), or an integer rendered as one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if abs(value) < 10**30 else None
    return _text(value, limit=200)


def _text(value: Any, *, limit: int = 2048) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= limit:
        return value
    return None


def _label(value: Any) -> str | None:
    """A short enum-like string from VAPI (endedReason, call type): safe to log, bounded."""
    if isinstance(value, str) and value and value.isprintable():
        return value[:120]
    return None


def finite_number(value: Any) -> float | None:
    """A real, finite int/float (never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _finite_text(text: str) -> float | None:
    if not text or not all(c.isdigit() or c == "." for c in text) or not text.isascii():
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _iso_seconds(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
