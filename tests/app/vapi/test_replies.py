"""app.vapi.replies: every reply body VAPI reads, checked against SDK 3.0.0 (vapi.md §2)."""

from __future__ import annotations

from typing import Any

import pytest

from app.vapi.messages import KNOWN_TYPES, REPLY_TYPES, parse_envelope
from app.vapi.replies import (
    DEFAULT_ERROR,
    DEFAULT_UNAVAILABLE,
    DestinationError,
    Document,
    ack,
    answer_handoff,
    answer_transfer,
    assistant_destination_reply,
    assistant_error_reply,
    assistant_id_reply,
    assistant_reply,
    campaign_predial_reply,
    endpointing_reply,
    fallback_reply,
    function_call_reply,
    handoff_destination_reply,
    handoff_error_reply,
    knowledge_base_reply,
    load_destinations,
    tool_calls_error_reply,
    transfer_destination_reply,
    transfer_error_reply,
)
from tests.app.vapi.payloads import CALLED_NUMBER, body
from tests.vapi_schema import assert_valid_reply

NUMBER = {"type": "number", "number": "+12025550100", "message": "Connecting you now."}
NUMBER_FULL = {
    "type": "number",
    "number": "+12025550100",
    "extension": "101",
    "callerId": "+12025550142",
    "description": "The leasing office",
    "message": {"type": "custom-message", "content": "One moment."},
    "transferPlan": {"mode": "blind-transfer"},
}
SIP = {
    "type": "sip",
    "sipUri": "sip:frontdesk@pbx.example.com",
    "sipHeaders": {"X-Account": "gold"},
}
ASSISTANT = {"type": "assistant", "assistantName": "billing-bot", "message": "Passing you over."}
HANDOFF = {"type": "assistant", "assistantId": "asst-123", "description": "maintenance desk"}


# --- one test per builder, each reply validated by the SDK ------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        assistant_reply({"firstMessage": "Hi", "model": {"provider": "openai", "model": "gpt-4o"}}),
        assistant_reply(
            {"firstMessage": "Hi", "model": {"provider": "openai", "model": "gpt-4o"}},
            overrides={"variableValues": {"name": "Ryan"}},
        ),
        assistant_id_reply("asst-123"),
        assistant_id_reply("asst-123", overrides={"variableValues": {"name": "Ryan"}}),
        assistant_destination_reply(NUMBER),
        assistant_destination_reply(NUMBER_FULL),
        assistant_destination_reply({**SIP, "message": ""}),
        assistant_error_reply("Sorry, not enough credits on your account, please refill."),
        assistant_error_reply(),
    ],
    ids=[
        "assistant",
        "assistant-overrides",
        "assistant-id",
        "assistant-id-overrides",
        "destination-number",
        "destination-number-full",
        "destination-sip-silent",
        "error",
        "default-error",
    ],
)
def test_assistant_request_replies(reply: dict[str, Any]) -> None:
    """Every assistant-request reply shape from vapi.md §2.1 validates."""
    assert_valid_reply("assistant-request", reply)


def test_assistant_request_destination_refuses_assistants() -> None:
    """An assistant-request destination can only be a number or sip (SDK union)."""
    with pytest.raises(DestinationError):
        assistant_destination_reply(ASSISTANT)


@pytest.mark.parametrize(
    "error", ["", "   ", None, "\n"], ids=["empty", "blank", "none", "newline"]
)
def test_errors_are_never_empty(error: Any) -> None:
    """An empty error would make VAPI say "Unknown Error. Contact Support.": use ours instead."""
    assert assistant_error_reply(error) == {"error": DEFAULT_ERROR}
    assert tool_calls_error_reply(error) == {"error": DEFAULT_ERROR}
    assert transfer_error_reply(error) == {"error": DEFAULT_UNAVAILABLE}
    assert handoff_error_reply(error)["error"] == DEFAULT_UNAVAILABLE


def test_error_sentences_are_one_line() -> None:
    """Spoken error sentences have their line breaks folded."""
    assert assistant_error_reply("Sorry.\nTry later.") == {"error": "Sorry. Try later."}


def test_tool_calls_error_reply() -> None:
    """A whole-batch tool-calls error is a speakable string."""
    assert_valid_reply("tool-calls", tool_calls_error_reply("whole batch failed"))


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("Your email has been sent.", "Your email has been sent."),
        ({"sent": True}, '{"sent":true}'),
        (None, ""),
        ("a\nb", "a b"),
    ],
    ids=["text", "object", "none", "newline"],
)
def test_function_call_reply(result: Any, expected: str) -> None:
    """Legacy function-call replies are ``{"result": <string>}`` (vapi.md §2.3)."""
    reply = function_call_reply(result)
    assert reply == {"result": expected}
    assert_valid_reply("function-call", reply)


@pytest.mark.parametrize(
    ("destination", "message"),
    [(NUMBER, None), (NUMBER_FULL, "Transferring you now"), (SIP, None), (ASSISTANT, "Hold on")],
    ids=["number", "number-full-with-message", "sip", "assistant"],
)
def test_transfer_destination_reply(destination: dict[str, Any], message: str | None) -> None:
    """number, sip and assistant destinations validate, with an optional request-start message."""
    reply = transfer_destination_reply(destination, message=message)
    assert reply["destination"]["type"] == destination["type"]
    if message:
        assert reply["message"] == {"type": "request-start", "content": message}
    assert_valid_reply("transfer-destination-request", reply)


def test_transfer_error_reply() -> None:
    """Refusing a transfer is a spoken error."""
    assert_valid_reply("transfer-destination-request", transfer_error_reply("Closed right now."))


@pytest.mark.parametrize(
    "destination",
    [HANDOFF, ASSISTANT, {"type": "assistant", "assistant": {"name": "inline"}}],
    ids=["by-id", "by-name", "inline"],
)
def test_handoff_destination_reply(destination: dict[str, Any]) -> None:
    """Handoffs go to an assistant by name, id or inline config; transfer-only keys are dropped."""
    reply = handoff_destination_reply(destination, result="Handing off to maintenance.")
    assert "message" not in reply["destination"]
    assert reply["result"] == "Handing off to maintenance."
    assert_valid_reply("handoff-destination-request", reply)


def test_handoff_error_reply_keeps_the_required_destination() -> None:
    """Refusing a handoff still sends the SDK-required ``destination`` (empty) with the error."""
    reply = handoff_error_reply("Nobody is available.")
    assert reply == {"destination": {}, "error": "Nobody is available."}
    assert_valid_reply("handoff-destination-request", reply)


@pytest.mark.parametrize(
    ("documents", "message", "expected"),
    [
        (
            [Document("Return policy is 30 days.", 0.92, "doc-1")],
            None,
            {
                "documents": [
                    {"content": "Return policy is 30 days.", "similarity": 0.92, "uuid": "doc-1"}
                ]
            },
        ),
        (
            [{"content": "Pets under 25 lb are allowed.", "similarity": 1.7}],
            None,
            {"documents": [{"content": "Pets under 25 lb are allowed.", "similarity": 1.0}]},
        ),
        (
            [{"content": {"rule": "no pets"}, "similarity": float("nan")}],
            None,
            {"documents": [{"content": '{"rule":"no pets"}', "similarity": 0.0}]},
        ),
        ([{"similarity": 0.5}, "junk"], None, {"documents": []}),
        ([], None, {"documents": []}),
        (
            [],
            "You have 30 days to return items.",
            {
                "message": {
                    "type": "custom-message",
                    "content": "You have 30 days to return items.",
                    "role": "assistant",
                }
            },
        ),
    ],
    ids=["document", "clamped", "object-content-nan-score", "junk-skipped", "nothing", "message"],
)
def test_knowledge_base_reply(
    documents: list[Any], message: str | None, expected: dict[str, Any]
) -> None:
    """Documents (content + similarity in [0, 1]) and/or a custom spoken message (vapi.md §2.6)."""
    reply = knowledge_base_reply(documents, message=message)
    assert reply == expected
    assert_valid_reply("knowledge-base-request", reply)


@pytest.mark.parametrize(
    "eligible", [True, False, "yes", None], ids=["true", "false", "str", "none"]
)
def test_campaign_predial_reply(eligible: Any) -> None:
    """``eligible`` is always a real boolean: only ``True`` dials."""
    reply = campaign_predial_reply(eligible)
    assert reply == {"eligible": eligible is True}
    assert_valid_reply("campaign.predial", reply)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.8, 0.8), (0, 0.0), (-1, 0.5), (float("nan"), 0.5), (1e9, 60.0), ("1", 0.5)],
    ids=["value", "zero", "negative", "nan", "huge", "string"],
)
def test_endpointing_reply(value: Any, expected: float) -> None:
    """``timeoutSeconds`` is a finite, non-negative, bounded float."""
    reply = endpointing_reply(value)
    assert reply == {"timeoutSeconds": expected}
    assert_valid_reply("call.endpointing.request", reply)


def test_ack_is_a_fresh_empty_object() -> None:
    """Informational messages get ``{}``; each call returns a new dict."""
    first = ack()
    first["x"] = 1
    assert ack() == {}


@pytest.mark.parametrize("message_type", sorted(KNOWN_TYPES | {"future.type"}))
def test_fallback_reply_is_valid_for_every_type(message_type: str) -> None:
    """When our handling fails, every type still gets a reply VAPI accepts (never a 5xx)."""
    reply = fallback_reply(message_type, "Sorry, one moment please.")
    assert_valid_reply(message_type, reply)
    if message_type not in REPLY_TYPES:
        assert reply == {}


def test_fallback_sentence_is_spoken_where_vapi_speaks() -> None:
    """The fallback sentence is the spoken error/result where VAPI speaks one."""
    sentence = "Sorry, one moment please."
    assert fallback_reply("assistant-request", sentence) == {"error": sentence}
    assert fallback_reply("tool-calls", sentence) == {"error": sentence}
    assert fallback_reply("function-call", sentence) == {"result": sentence}
    assert fallback_reply("transfer-destination-request", sentence) == {"error": sentence}
    assert fallback_reply("campaign.predial", sentence) == {"eligible": False}


# --- answering transfer and handoff requests from a destinations table -------------------------

TABLE = load_destinations(
    {
        "default": NUMBER,
        "maintenance": {"type": "number", "number": "+12025550111"},
        CALLED_NUMBER: SIP,
        "billing": ASSISTANT,
    }
)


@pytest.mark.parametrize(
    "name", ["transfer-destination-request.2024", "transfer-destination-request.current"]
)
def test_answer_transfer(name: str) -> None:
    """A configured destination answers; an empty table answers a spoken error."""
    message = parse_envelope(body(name))
    assert_valid_reply(message.type, answer_transfer(message, TABLE))
    assert answer_transfer(message, {}) == {"error": DEFAULT_UNAVAILABLE}


def test_answer_handoff() -> None:
    """Handoff picks an assistant destination, or refuses with the schema-valid error."""
    message = parse_envelope(body("handoff-destination-request.current"))
    reply = answer_handoff(message, {"maintenance": HANDOFF})
    assert reply["destination"]["assistantId"] == "asst-123"
    assert_valid_reply(message.type, reply)
    refusal = answer_handoff(message, TABLE, unavailable="No one can take this.")
    assert refusal == {"destination": {}, "error": "No one can take this."}
    assert_valid_reply(message.type, refusal)
