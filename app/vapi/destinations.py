"""Transfer destinations: validate them once, pick one per request (vapi.md §2.1, §2.4, §2.5).

A destination is the plain VAPI object (``{"type": "number", "number": "+1..."}``, ``sip`` with
``sipUri``, ``assistant`` with ``assistantName``; handoffs also ``assistantId`` or an inline
``assistant``). :func:`load_destinations` validates a ``{name: destination}`` table at start-up
(normally the template's ``destinations:``), :func:`validate_destination` checks one against the
types VAPI accepts for a purpose and returns a copy with only the keys that purpose defines, and
:func:`choose_destination` picks the table entry a ``transfer-destination-request`` or
``handoff-destination-request`` asks for. Invalid input raises :class:`DestinationError` (a
``ValueError``) whose message names the field.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Final, Literal

from app.vapi.messages import ServerMessage
from app.vapi.toolcalls import parse_arguments

Purpose = Literal["assistant-request", "transfer", "handoff"]
Destinations = Mapping[str, Mapping[str, Any]]
"""Destination name → validated VAPI destination object (``{"type": "number", ...}``)."""

DEFAULT_DESTINATION_KEY: Final = "default"

# E.164: "+", country code 1-9, up to 15 digits (VAPI checks this unless numberE164CheckEnabled
# is false, OAS TransferDestinationNumber).
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_COMMON_KEYS: Final = frozenset({"type", "message", "description", "name", "transferPlan"})
_KEYS: Final[dict[str, frozenset[str]]] = {  # TransferDestination{Number,Sip,Assistant} (OAS)
    "number": _COMMON_KEYS | {"number", "extension", "callerId", "numberE164CheckEnabled"},
    "sip": _COMMON_KEYS | {"sipUri", "sipHeaders", "callerId"},
    "assistant": _COMMON_KEYS | {"assistantName", "transferMode"},
}
_HANDOFF_KEYS: Final = frozenset(  # HandoffDestinationAssistant (OAS)
    {
        "type",
        "assistantName",
        "assistantId",
        "assistant",
        "assistantOverrides",
        "variableExtractionPlan",
        "contextEngineeringPlan",
        "description",
    }
)
_ALLOWED_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "assistant-request": ("number", "sip"),
    "transfer": ("number", "sip", "assistant"),
    "handoff": ("assistant",),
}


class DestinationError(ValueError):
    """A destination VAPI would reject; the message names the field and what is wrong."""


def choose_destination(
    message: ServerMessage, destinations: Destinations, *, purpose: Purpose = "transfer"
) -> tuple[str, Mapping[str, Any]] | None:
    """The configured destination for this request, by the first name that matches.

    Names tried in order: the handoff tool's ``parameters.destination``; the ``destination``
    argument of the conversation's last ``transferCall``; the called VAPI number; its id;
    ``"default"``. Entries whose type does not fit ``purpose`` are skipped.
    """
    allowed = _ALLOWED_TYPES[purpose]
    for name in _candidate_names(message):
        spec = destinations.get(name)
        if isinstance(spec, Mapping) and spec.get("type") in allowed:
            return name, spec
    return None


def load_destinations(raw: Any, *, where: str = "destinations") -> dict[str, dict[str, Any]]:
    """Validate a ``{name: destination}`` mapping once (at start-up); raises DestinationError."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise DestinationError(f"{where}: must be a mapping of name to destination")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not name:
            raise DestinationError(f"{where}: destination names must be non-empty strings")
        handoff_only = (
            isinstance(spec, Mapping)
            and spec.get("type") == "assistant"
            and (not spec.get("assistantName"))
        )
        purpose: Purpose = "handoff" if handoff_only else "transfer"
        validate_destination(spec, purpose=purpose, where=f"{where}.{name}")
        out[name] = dict(spec)
    return out


def validate_destination(
    spec: Any, *, purpose: Purpose = "transfer", where: str = "destination"
) -> dict[str, Any]:
    """A copy of ``spec`` if VAPI accepts it for ``purpose``; else :class:`DestinationError`."""
    if not isinstance(spec, Mapping):
        raise DestinationError(f"{where}: must be a mapping")
    kind = spec.get("type")
    allowed: Collection[str] = _ALLOWED_TYPES[purpose]
    if kind not in allowed:
        raise DestinationError(f"{where}.type: must be one of {', '.join(allowed)} for {purpose}")
    known = _KEYS[kind] | (_HANDOFF_KEYS if kind == "assistant" else frozenset())
    unknown = sorted(str(k) for k in spec if k not in known)
    if unknown:
        raise DestinationError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if kind == "number":
        _check_number(spec, where)
    elif kind == "sip":
        uri = spec.get("sipUri")
        if not isinstance(uri, str) or not uri.lower().startswith(("sip:", "sips:")):
            raise DestinationError(f"{where}.sipUri: must be a sip: or sips: URI")
        _optional(spec, "sipHeaders", Mapping, where)
    else:
        _check_assistant(spec, purpose, where)
    _check_message(spec.get("message"), where)
    for key in ("description", "name", "callerId", "transferMode"):
        _optional(spec, key, str, where)
    for key in (
        "transferPlan",
        "assistant",
        "assistantOverrides",
        "variableExtractionPlan",
        "contextEngineeringPlan",
    ):
        _optional(spec, key, Mapping, where)
    keep = _HANDOFF_KEYS if purpose == "handoff" else _KEYS[kind]
    return {k: v for k, v in spec.items() if k in keep}


def _check_number(spec: Mapping[str, Any], where: str) -> None:
    number = spec.get("number")
    if not isinstance(number, str) or not number:
        raise DestinationError(f"{where}.number: required, a phone number string")
    if spec.get("numberE164CheckEnabled") is not False and not _E164.fullmatch(number):
        raise DestinationError(f"{where}.number: must be E.164 like +14155550100")
    extension = spec.get("extension")
    if extension is not None and not (isinstance(extension, str) and extension.isdigit()):
        raise DestinationError(f"{where}.extension: must be a string of digits")
    _optional(spec, "numberE164CheckEnabled", bool, where)


def _check_assistant(spec: Mapping[str, Any], purpose: Purpose, where: str) -> None:
    keys = (
        ("assistantName", "assistantId", "assistant")
        if purpose == "handoff"
        else ("assistantName",)
    )
    present = [k for k in keys if spec.get(k) not in (None, "")]
    if not present:
        raise DestinationError(f"{where}: needs {' or '.join(keys)}")
    for key in ("assistantName", "assistantId"):
        _optional(spec, key, str, where)


def _check_message(message: Any, where: str) -> None:
    if message is None or isinstance(message, str):
        return
    if (
        isinstance(message, Mapping)
        and isinstance(message.get("content"), str)
        and message.get("type", "custom-message") == "custom-message"
    ):
        return
    raise DestinationError(f"{where}.message: a string or {{type: custom-message, content}}")


def _optional(spec: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> None:
    value = spec.get(key)
    if value is not None and not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise DestinationError(f"{where}.{key}: must be a {name}")


def _candidate_names(message: ServerMessage) -> list[str]:
    names: list[str] = []
    parameters = message.raw.get("parameters")
    if isinstance(parameters, Mapping) and isinstance(parameters.get("destination"), str):
        names.append(parameters["destination"])
    requested = _last_transfer_argument(message)
    if requested:
        names.append(requested)
    names += [n for n in (message.phone_number, message.phone_number_id) if n]
    names.append(DEFAULT_DESTINATION_KEY)
    return names


def _last_transfer_argument(message: ServerMessage) -> str | None:
    for entry in reversed(message.conversation):
        calls = entry.get("tool_calls")
        for call in reversed(calls) if isinstance(calls, list) else ():
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping) and fn.get("name") == "transferCall":
                arguments, _ = parse_arguments(fn.get("arguments"))
                value = arguments.get("destination")
                return value if isinstance(value, str) and value else None
    return None
