"""app.vapi.messages: envelope parsing, classification, end-of-call summaries (vapi.md §1, §2)."""

from __future__ import annotations

import json

import pytest

from app.vapi.messages import (
    KNOWN_TYPES,
    REPLY_TYPES,
    UNANSWERABLE_TYPES,
    BadRequest,
    classify,
    end_of_call_summary,
    is_transcript,
    parse_envelope,
    parse_timestamp,
)
from tests.app.vapi.payloads import (
    CALL_ID,
    CALLED_NUMBER,
    CALLER_NUMBER,
    TS_2024,
    TS_CURRENT,
    body,
    fixture_names,
    message,
)


def test_every_catalogued_type_has_a_fixture() -> None:
    """Each message type in vapi.md §2 has at least one request fixture."""
    covered = {message(name)["type"] for name in fixture_names()}
    assert covered >= KNOWN_TYPES


def test_generations_differ_where_the_spec_says_they_do() -> None:
    """2024 fixtures carry ISO timestamps; current ones epoch milliseconds."""
    for name in fixture_names():
        stamp = message(name).get("timestamp")
        if name.endswith(".2024"):
            assert isinstance(stamp, str), name
        elif name.endswith(".current"):
            assert isinstance(stamp, int) and stamp > 10**12, name


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_parses(name: str) -> None:
    """Every fixture parses into its type, with the call id and timestamp of its generation."""
    parsed = parse_envelope(body(name))
    raw = message(name)
    assert parsed.type == raw["type"]
    assert parsed.raw == raw
    if "call" in raw:
        assert parsed.call_id == CALL_ID
    if name.endswith(".2024"):
        assert parsed.timestamp == pytest.approx(TS_2024)
    elif "timestamp" in raw:
        assert parsed.timestamp == pytest.approx(TS_CURRENT)


@pytest.mark.parametrize(
    ("name", "phone", "caller", "control", "turns"),
    [
        ("assistant-request.2024", CALLED_NUMBER, CALLER_NUMBER, False, 0),
        ("assistant-request.current", CALLED_NUMBER, CALLER_NUMBER, True, 0),
        ("tool-calls.current", CALLED_NUMBER, CALLER_NUMBER, True, 4),
        ("tool-calls.docs-flat", None, None, False, 0),
        ("conversation-update.2024", CALLED_NUMBER, CALLER_NUMBER, False, 3),
        ("transfer-destination-request.2024", CALLED_NUMBER, CALLER_NUMBER, False, 4),
        ("session.created.current", None, None, False, 0),
    ],
    ids=[
        "assistant-request.2024",
        "assistant-request.current",
        "tool-calls.current",
        "tool-calls.docs-flat",
        "conversation-update.2024",
        "transfer-destination-request.2024",
        "session.created.current",
    ],
)
def test_parsed_fields(
    name: str, phone: str | None, caller: str | None, control: bool, turns: int
) -> None:
    """Numbers, the control URL and the conversation come from wherever the generation puts them."""
    parsed = parse_envelope(body(name))
    assert parsed.phone_number == phone
    assert parsed.customer_number == caller
    assert (parsed.control_url is not None) == control
    assert len(parsed.conversation) == turns


def test_call_id_falls_back_to_legacy_call_id() -> None:
    """``call.callId`` (2024) is read when ``call.id`` is absent."""
    parsed = parse_envelope(body("tool-calls.2024"))
    assert "id" not in message("tool-calls.2024")["call"]
    assert parsed.call_id == CALL_ID


def test_call_id_prefers_id_over_call_id() -> None:
    """``call.id`` wins over ``call.callId`` when both are sent."""
    raw = json.dumps({"message": {"type": "hang", "call": {"id": "a", "callId": "b"}}}).encode()
    assert parse_envelope(raw).call_id == "a"


def test_customer_number_falls_back_to_the_call() -> None:
    """Without a top-level ``customer``, the caller comes from ``call.customer.number``."""
    raw = {"type": "assistant-request", "call": {"id": "c", "customer": {"number": "+1555"}}}
    assert parse_envelope(json.dumps({"message": raw}).encode()).customer_number == "+1555"


def test_phone_number_id_falls_back_to_the_call() -> None:
    """Without a ``phoneNumber`` object the called number's id comes from ``call.phoneNumberId``."""
    raw = {"type": "assistant-request", "call": {"id": "c", "phoneNumberId": "pn-1"}}
    parsed = parse_envelope(json.dumps({"message": raw}).encode())
    assert (parsed.phone_number, parsed.phone_number_id) == (None, "pn-1")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"\xff\xfe\x00garbage", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
        (b"1" * 5000, "invalid_json"),
        (b"[]", "not_an_object"),
        (b'"message"', "not_an_object"),
        (b"null", "not_an_object"),
        (b"{}", "missing_message"),
        (b'{"message": null}', "missing_message"),
        (b'{"message": []}', "missing_message"),
        (b'{"message": "tool-calls"}', "missing_message"),
        (b'{"message": {}}', "missing_type"),
        (b'{"message": {"type": ""}}', "missing_type"),
        (b'{"message": {"type": 7}}', "invalid_type"),
        (b'{"message": {"type": ["tool-calls"]}}', "invalid_type"),
        (b'{"message": {"type": "a\\nb"}}', "invalid_type"),
        (b'{"message": {"type": "' + b"x" * 101 + b'"}}', "invalid_type"),
    ],
    ids=[
        "empty",
        "truncated",
        "not-utf8",
        "deep-nesting",
        "huge-integer",
        "array",
        "string",
        "null",
        "no-message",
        "message-null",
        "message-array",
        "message-string",
        "no-type",
        "empty-type",
        "number-type",
        "list-type",
        "control-char-type",
        "overlong-type",
    ],
)
def test_bad_envelopes_are_bad_requests(raw: bytes, reason: str) -> None:
    """Anything that is not ``{"message": {"type": str}}`` is a BadRequest with a stable reason."""
    with pytest.raises(BadRequest) as caught:
        parse_envelope(raw)
    assert caught.value.reason == reason
    as_json = json.loads(json.dumps(caught.value.as_dict()))
    assert as_json == {"error": "bad_request", "reason": reason, "detail": str(caught.value)}


def test_unknown_types_parse_and_are_informational() -> None:
    """A type we have never seen still parses, and is answered like any informational message."""
    parsed = parse_envelope(b'{"message": {"type": "brand-new.event"}}')
    assert parsed.type == "brand-new.event"
    assert not parsed.expects_reply
    assert parsed.classification == "informational"


@pytest.mark.parametrize("message_type", sorted(KNOWN_TYPES))
def test_classification(message_type: str) -> None:
    """Exactly the vapi.md §0 item 4 types (minus raw-PCM voice-request) are reply types."""
    expected = message_type in {
        "assistant-request",
        "tool-calls",
        "function-call",
        "transfer-destination-request",
        "handoff-destination-request",
        "knowledge-base-request",
        "campaign.predial",
        "call.endpointing.request",
    }
    assert (classify(message_type) == "reply") is expected
    assert (message_type in REPLY_TYPES) is expected


def test_voice_request_is_acknowledged_not_answered() -> None:
    """voice-request wants raw PCM we cannot produce: acknowledged and marked unanswerable."""
    assert classify("voice-request") == "informational"
    assert "voice-request" in UNANSWERABLE_TYPES


@pytest.mark.parametrize(
    "message_type",
    ["transcript", 'transcript[transcriptType="final"]'],
    ids=["transcript", "transcript-final"],
)
def test_both_transcript_spellings_are_transcripts(message_type: str) -> None:
    """The filtered final-transcript type is still a transcript (vapi.md §2.8)."""
    assert is_transcript(message_type)
    assert classify(message_type) == "informational"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-07-25T18:53:47.736Z", 1721933627.736),
        ("2024-07-25T18:53:47.736+00:00", 1721933627.736),
        ("2024-07-25T20:53:47.736+02:00", 1721933627.736),
        ("2024-07-25T18:53:47", 1721933627.0),
        (1721933627, 1721933627.0),
        (1721933627.736, 1721933627.736),
        (1721933627736, 1721933627.736),
        ("1721933627736", 1721933627.736),
        ("1721933627", 1721933627.0),
        (None, None),
        (True, None),
        ("", None),
        ("yesterday", None),
        (float("nan"), None),
        (float("inf"), None),
        (-5, None),
        (0, None),
        (10**20, None),
        (10**400, None),
        ({"seconds": 1}, None),
        ("9" * 500, None),
    ],
    ids=[
        "iso-z",
        "iso-offset-0",
        "iso-offset-2",
        "iso-naive-is-utc",
        "epoch-s",
        "epoch-s-float",
        "epoch-ms",
        "epoch-ms-string",
        "epoch-s-string",
        "none",
        "bool",
        "empty",
        "words",
        "nan",
        "inf",
        "negative",
        "zero",
        "microseconds-and-beyond",
        "too-big-for-float",
        "object",
        "long-digits",
    ],
)
def test_parse_timestamp(value: object, expected: float | None) -> None:
    """Timestamps in every observed format become epoch seconds; anything else becomes None."""
    result = parse_timestamp(value)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


# --- end-of-call summary --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["end-of-call-report.2024", "end-of-call-report.current"])
def test_end_of_call_summary_reads_both_generations(name: str) -> None:
    """The summary has the same keys and facts whether VAPI sent the 2024 or current layout."""
    summary = end_of_call_summary(message(name))
    assert summary["call_id"] == CALL_ID
    assert summary["ended_reason"] == "customer-ended-call"
    assert summary["call_type"] == "inboundPhoneCall"
    assert summary["message_count"] == 3
    assert summary["has_transcript"] is True
    assert summary["has_summary"] is True
    assert summary["has_recording"] is True
    assert summary["layout"] == ("legacy" if name.endswith("2024") else "artifact")


def test_end_of_call_summary_durations_and_costs() -> None:
    """Duration comes from startedAt/endedAt; costs are totalled per type."""
    current = end_of_call_summary(message("end-of-call-report.current"))
    assert current["duration_s"] == pytest.approx(80.123)
    assert current["cost"] == pytest.approx(0.12)
    assert current["costs"] == {
        "transport": 0.01,
        "stt": 0.02,
        "model": 0.05,
        "tts": 0.03,
        "vapi": 0.01,
    }
    assert current["success_evaluation"] is True
    legacy = end_of_call_summary(message("end-of-call-report.2024"))
    assert legacy["duration_s"] == pytest.approx(101.29)
    assert legacy["cost"] == pytest.approx(0.0875)


def test_end_of_call_summary_falls_back_to_duration_fields() -> None:
    """Without start/end times the report's own durationSeconds/durationMs are used."""
    assert end_of_call_summary({"durationMs": 1500})["duration_s"] == 1.5
    assert end_of_call_summary({"durationSeconds": 7})["duration_s"] == 7.0
    assert end_of_call_summary({})["duration_s"] is None


@pytest.mark.parametrize(
    "name", ["end-of-call-report.2024", "end-of-call-report.current", "status-update.forwarding"]
)
def test_end_of_call_summary_contains_no_caller_text(name: str) -> None:
    """No transcript, summary, message text, recording URL or phone number reaches the summary."""
    raw = message(name)
    text = json.dumps(end_of_call_summary(raw))
    for secret in [
        "rent balance",
        "4B",
        "storage.vapi.ai",
        CALLER_NUMBER,
        CALLED_NUMBER,
        "Harbor View",
    ]:
        assert secret not in text


def test_end_of_call_summary_is_json_serialisable() -> None:
    """The summary is plain JSON for the structured log line."""
    summary = end_of_call_summary(message("end-of-call-report.current"))
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("False", False), (True, True), (8, 8.0), ("A+ great call", None)],
    ids=["true-string", "false-string", "bool", "score", "free-text"],
)
def test_success_evaluation_keeps_only_non_text_verdicts(value: object, expected: object) -> None:
    """Only bool or numeric evaluations are kept: free text could quote the caller."""
    summary = end_of_call_summary({"analysis": {"successEvaluation": value}})
    assert summary["success_evaluation"] == expected
