"""app.vapi.destinations: transfer targets validated once, picked per request (§2.4, §2.5)."""

from __future__ import annotations

from typing import Any

import pytest

from app.vapi.destinations import (
    DestinationError,
    choose_destination,
    load_destinations,
    validate_destination,
)
from app.vapi.messages import parse_envelope
from tests.app.vapi.payloads import CALLED_NUMBER, body

NUMBER = {"type": "number", "number": "+12025550100", "message": "Connecting you now."}
SIP = {
    "type": "sip",
    "sipUri": "sip:frontdesk@pbx.example.com",
    "sipHeaders": {"X-Account": "gold"},
}
ASSISTANT = {"type": "assistant", "assistantName": "billing-bot", "message": "Passing you over."}
HANDOFF = {"type": "assistant", "assistantId": "asst-123", "description": "maintenance desk"}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("office", "must be a mapping"),
        ({"type": "phone", "number": "+12025550100"}, "type"),
        ({"type": "number"}, "number: required"),
        ({"type": "number", "number": "555-0100"}, "E.164"),
        ({"type": "number", "number": "+12025550100", "extension": "ext 5"}, "extension"),
        ({"type": "number", "number": "+12025550100", "nubmer": "+1"}, "unknown field"),
        ({"type": "sip", "sipUri": "https://example.com"}, "sipUri"),
        ({"type": "sip", "sipUri": "sip:a@b", "sipHeaders": "X: y"}, "sipHeaders"),
        ({"type": "assistant"}, "assistantName"),
        ({"type": "number", "number": "+12025550100", "message": {"content": 5}}, "message"),
        ({"type": "number", "number": "+12025550100", "callerId": 5}, "callerId"),
    ],
    ids=[
        "not-a-mapping",
        "unknown-type",
        "no-number",
        "not-e164",
        "bad-extension",
        "typo",
        "sip-not-sip",
        "sip-headers-text",
        "assistant-without-name",
        "message-content-number",
        "caller-id-number",
    ],
)
def test_invalid_destinations_are_refused(spec: Any, problem: str) -> None:
    """A destination VAPI would reject is refused with a message naming the field."""
    with pytest.raises(DestinationError, match=problem):
        validate_destination(spec, purpose="transfer")


def test_e164_check_can_be_disabled() -> None:
    """numberE164CheckEnabled: false allows non-E.164 numbers, as in VAPI."""
    spec = {"type": "number", "number": "5550100", "numberE164CheckEnabled": False}
    assert validate_destination(spec)["number"] == "5550100"


def test_load_destinations() -> None:
    """A name→destination table loads when every entry is valid, else names the bad entry."""
    table = load_destinations({"default": NUMBER, "desk": SIP, "billing": ASSISTANT, "h": HANDOFF})
    assert set(table) == {"default", "desk", "billing", "h"}
    with pytest.raises(DestinationError, match=r"destinations\.bad"):
        load_destinations({"default": NUMBER, "bad": {"type": "number"}})
    with pytest.raises(DestinationError):
        load_destinations(["not", "a", "mapping"])
    assert load_destinations(None) == {}


TABLE = load_destinations(
    {
        "default": NUMBER,
        "maintenance": {"type": "number", "number": "+12025550111"},
        CALLED_NUMBER: SIP,
        "billing": ASSISTANT,
    }
)


@pytest.mark.parametrize(
    ("name", "table", "expected"),
    [
        ("transfer-destination-request.current", TABLE, "maintenance"),
        ("transfer-destination-request.2024", TABLE, CALLED_NUMBER),
        ("transfer-destination-request.2024", {"default": NUMBER}, "default"),
        ("handoff-destination-request.current", {**TABLE, "maintenance": HANDOFF}, "maintenance"),
        ("handoff-destination-request.current", TABLE, None),
    ],
    ids=[
        "transfer-argument",
        "called-number",
        "default",
        "handoff-parameter",
        "handoff-needs-assistant",
    ],
)
def test_choose_destination(name: str, table: dict[str, Any], expected: str | None) -> None:
    """The requested name wins, then the called number, then ``default``; types must fit."""
    message = parse_envelope(body(name))
    purpose = "handoff" if message.type.startswith("handoff") else "transfer"
    chosen = choose_destination(message, table, purpose=purpose)
    assert (chosen[0] if chosen else None) == expected
