"""Property tests: random and mutated payloads never break the protocol layer (vapi.md §1–§4).

Each test feeds hundreds of payloads (``VAPI_FUZZ_EXAMPLES``, default 200): random bytes, random
JSON, and real fixtures with random parts replaced, dropped or added. The only exceptions allowed
are the documented ones (``BadRequest`` from parse_envelope, ``DestinationError`` from builders
given a bad destination), and every reply produced must be one VAPI accepts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from app.vapi.assistant import build_assistant_reply, load_template
from app.vapi.auth import AuthConfig, sign, verify
from app.vapi.messages import (
    KNOWN_TYPES,
    BadRequest,
    ServerMessage,
    end_of_call_summary,
    from_message,
    parse_envelope,
)
from app.vapi.replies import (
    DestinationError,
    answer_handoff,
    answer_transfer,
    assistant_destination_reply,
    assistant_error_reply,
    campaign_predial_reply,
    endpointing_reply,
    fallback_reply,
    function_call_reply,
    handoff_destination_reply,
    knowledge_base_reply,
    load_destinations,
    transfer_destination_reply,
)
from app.vapi.toolcalls import (
    ToolCall,
    ToolResult,
    extract_function_call,
    extract_tool_calls,
    tool_results_reply,
)
from tests.app.vapi.payloads import (
    FUZZ,
    encode,
    json_values,
    keys,
    load,
    mutated_fixtures,
    mutated_messages,
)
from tests.vapi_schema import assert_valid_reply

DEFAULT = load_template(Path(__file__).resolve().parents[3] / "app" / "assistants" / "default.yaml")
DESTINATIONS = load_destinations(
    {
        "default": {"type": "number", "number": "+12025550100"},
        "maintenance": {"type": "assistant", "assistantName": "maintenance-bot"},
        "+12025550142": {"type": "sip", "sipUri": "sip:desk@pbx.example.com"},
    }
)
NOW = 1_754_400_000.0
MARKER = "CALLER-SAID-THIS"


def _check_parsed(parsed: ServerMessage) -> None:
    assert isinstance(parsed.type, str) and parsed.type
    for value in (parsed.call_id, parsed.phone_number, parsed.customer_number, parsed.control_url):
        assert value is None or isinstance(value, str)
    assert parsed.timestamp is None or 0 < parsed.timestamp < 1e11
    assert all(isinstance(m, dict) for m in parsed.conversation)


def _parse_or_bad_request(raw: bytes) -> ServerMessage | None:
    try:
        parsed = parse_envelope(raw)
    except BadRequest as exc:
        assert exc.reason in {
            "invalid_json",
            "not_an_object",
            "missing_message",
            "missing_type",
            "invalid_type",
        }
        json.dumps(exc.as_dict())
        return None
    _check_parsed(parsed)
    return parsed


# --- parse_envelope -----------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_parse_or_are_bad_requests(raw: bytes) -> None:
    """Any bytes at all: a ServerMessage or a BadRequest, nothing else."""
    _parse_or_bad_request(raw)


@FUZZ
@given(json_values | st.dictionaries(keys, json_values, max_size=4).map(lambda d: {"message": d}))
def test_random_json_parses_or_is_a_bad_request(value: Any) -> None:
    """Any JSON document: a ServerMessage or a BadRequest."""
    _parse_or_bad_request(encode(value))


@FUZZ
@given(mutated_fixtures())
def test_mutated_fixtures_parse_or_are_bad_requests(value: dict[str, Any]) -> None:
    """Real payloads with random damage: a ServerMessage or a BadRequest."""
    _parse_or_bad_request(encode(value))


@FUZZ
@given(st.sampled_from(["tool-calls.current", "end-of-call-report.current"]), st.binary(max_size=8))
def test_truncated_and_extended_bodies(name: str, tail: bytes) -> None:
    """A body cut anywhere or with junk appended: a ServerMessage or a BadRequest."""
    raw = encode(load(name))
    _parse_or_bad_request(raw[: len(raw) // 2] + tail)
    _parse_or_bad_request(raw + tail)


# --- tool calls ---------------------------------------------------------------------------------


@FUZZ
@given(mutated_messages("tool-calls"), st.lists(json_values, max_size=6))
def test_mutated_tool_calls_always_get_a_valid_reply(
    message: dict[str, Any], outputs: list[Any]
) -> None:
    """Whatever calls come out of a damaged message, answering them gives a valid reply."""
    calls = extract_tool_calls(message)
    assert all(isinstance(c, ToolCall) and isinstance(c.id, str) and c.id for c in calls)
    if not calls:
        return
    results = []
    for i, call in enumerate(calls):
        output = outputs[i] if i < len(outputs) else None
        if call.problem or i % 3 == 2:
            results.append(ToolResult(call, error=call.problem or output))
        else:
            results.append(ToolResult(call, result=output, message=output if i % 2 else None))
    assert_valid_reply("tool-calls", tool_results_reply(results))


@FUZZ
@given(mutated_messages("function-call", "tool-calls"), json_values)
def test_mutated_function_calls_always_get_a_valid_reply(message: dict[str, Any], out: Any) -> None:
    """Legacy function calls: extraction never raises and the result is always a string."""
    call = extract_function_call(message)
    assert call is None or isinstance(call.arguments, dict)
    assert_valid_reply("function-call", function_call_reply(out))


# --- end-of-call summary ------------------------------------------------------------------------

_CALLER_TEXT_PATHS = [
    ("transcript",),
    ("summary",),
    ("messages",),
    ("artifact", "transcript"),
    ("artifact", "messages"),
    ("artifact", "messagesOpenAIFormatted"),
    ("analysis", "summary"),
    ("analysis", "structuredData"),
    ("analysis", "successEvaluation"),
    ("customer", "number"),
]


@st.composite
def reports_with_caller_text(draw: st.DrawFn) -> dict[str, Any]:
    base: Any = draw(mutated_messages())
    report = dict(base)
    report["type"] = "end-of-call-report"
    for path in draw(st.lists(st.sampled_from(_CALLER_TEXT_PATHS), min_size=1, max_size=5)):
        target = report
        for key in path[:-1]:
            child = target.get(key)
            target[key] = dict(child) if isinstance(child, dict) else {}
            target = target[key]
        target[path[-1]] = draw(
            st.sampled_from(
                [
                    MARKER,
                    f"AI: hi. User: {MARKER}",
                    [{"role": "user", "message": MARKER}],
                    {"x": MARKER},
                ]
            )
        )
    return report


@FUZZ
@given(reports_with_caller_text())
def test_end_of_call_summary_never_raises_nor_leaks(report: dict[str, Any]) -> None:
    """Any report: a JSON-safe summary without a word of what the caller said."""
    summary = end_of_call_summary(report)
    text = json.dumps(summary, allow_nan=False)
    assert MARKER not in text


@FUZZ
@given(json_values)
def test_end_of_call_summary_of_anything(value: Any) -> None:
    """Even a non-object gives a summary dict."""
    assert isinstance(end_of_call_summary(value), dict)


# --- reply builders -----------------------------------------------------------------------------


@FUZZ
@given(json_values)
def test_text_builders_always_produce_valid_replies(value: Any) -> None:
    """Error, result, predial and endpointing builders accept any value and stay valid."""
    assert_valid_reply("assistant-request", assistant_error_reply(value))
    assert_valid_reply("function-call", function_call_reply(value))
    assert_valid_reply("campaign.predial", campaign_predial_reply(value))
    assert_valid_reply("call.endpointing.request", endpointing_reply(value))
    assert_valid_reply("knowledge-base-request", knowledge_base_reply(message=value))


_documents = st.dictionaries(st.sampled_from(["content", "similarity", "uuid"]), json_values)


@FUZZ
@given(st.lists(json_values | _documents, max_size=5))
def test_knowledge_base_documents_of_any_shape(documents: list[Any]) -> None:
    """Random document lists give a valid knowledge-base reply (junk entries are dropped)."""
    assert_valid_reply("knowledge-base-request", knowledge_base_reply(documents))


_destination_keys = st.sampled_from(
    ["type", "number", "sipUri", "assistantName", "assistantId", "message", "extension", "callerId"]
)
destinations = st.fixed_dictionaries(
    {"type": st.sampled_from(["number", "sip", "assistant", "other"])},
    optional={
        "number": st.sampled_from(["+12025550100", "555", ""]) | st.text(max_size=8),
        "sipUri": st.sampled_from(["sip:a@b.example", "http://x"]),
        "assistantName": st.text(max_size=8),
        "assistantId": st.text(max_size=8),
        "message": json_values,
        "extension": st.sampled_from(["101", "x1"]),
    },
) | st.dictionaries(_destination_keys, json_values, max_size=4)


@FUZZ
@given(destinations, json_values)
def test_destination_builders_are_valid_or_refuse(spec: dict[str, Any], extra: Any) -> None:
    """A destination either builds a reply VAPI accepts or is refused with DestinationError."""
    for build, message_type in (
        (lambda: transfer_destination_reply(spec, message=extra), "transfer-destination-request"),
        (lambda: handoff_destination_reply(spec, result=extra), "handoff-destination-request"),
        (lambda: assistant_destination_reply(spec), "assistant-request"),
    ):
        try:
            reply = build()
        except DestinationError:
            continue
        assert_valid_reply(message_type, reply)


@FUZZ
@given(mutated_messages())
def test_transfer_and_handoff_answers_are_always_valid(message: dict[str, Any]) -> None:
    """Picking a configured destination for any message never raises and is always valid."""
    message["type"] = "transfer-destination-request"
    parsed = from_message(message)
    assert_valid_reply("transfer-destination-request", answer_transfer(parsed, DESTINATIONS))
    assert_valid_reply("handoff-destination-request", answer_handoff(parsed, DESTINATIONS))


@FUZZ
@given(mutated_messages())
def test_assistant_reply_is_valid_for_any_request(message: dict[str, Any]) -> None:
    """The demo template answers any (damaged) assistant-request with a valid reply."""
    message["type"] = "assistant-request"
    reply = build_assistant_reply(DEFAULT, from_message(message), "https://gw.example.com")
    assert_valid_reply("assistant-request", reply)


@FUZZ
@given(st.sampled_from(sorted(KNOWN_TYPES)) | st.text(max_size=20), json_values)
def test_fallback_reply_is_valid_for_any_type(message_type: str, sentence: Any) -> None:
    """The failure reply for any type and any sentence is one VAPI accepts."""
    assert_valid_reply(message_type, fallback_reply(message_type, sentence))


# --- verify -------------------------------------------------------------------------------------

CONFIGS = [
    AuthConfig(secret="s3cr3t"),
    AuthConfig(hmac_secret="k"),
    AuthConfig(hmac_secret="k", hmac_encoding="base64", hmac_prefix="sha256="),
    AuthConfig(hmac_secret="k", hmac_include_timestamp=True, hmac_algorithm="sha512"),
    AuthConfig(secret="s3cr3t", hmac_secret="k"),
]
header_names = st.sampled_from(
    [
        "x-vapi-secret",
        "Authorization",
        "x-signature",
        "X-Vapi-Signature",
        "x-timestamp",
        "content-type",
    ]
) | st.text(max_size=12)
header_values = (
    st.text(max_size=40)
    | st.sampled_from(["Bearer ", "Bearer s3cr3t!", "sha256=", "00" * 32, "1754400000"])
    | st.binary(min_size=32, max_size=32).map(bytes.hex)
)


@FUZZ
@given(
    st.sampled_from(CONFIGS),
    st.dictionaries(header_names, header_values, max_size=5),
    st.binary(max_size=200),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_random_headers_never_pass_and_never_raise(
    config: AuthConfig, headers: dict[str, str], raw: bytes, now: float
) -> None:
    """Random headers are rejected with a known label (forging is infeasible), never an error."""
    result = verify(headers, raw, config, now)
    assert not result.ok
    assert result.reason in {
        "missing_credentials",
        "bad_secret",
        "bad_signature",
        "malformed_signature",
        "missing_timestamp",
        "malformed_timestamp",
        "stale_timestamp",
    }


@FUZZ
@given(st.sampled_from(CONFIGS[1:4]), st.binary(max_size=200), st.binary(min_size=1, max_size=200))
def test_signed_bodies_pass_only_unchanged(config: AuthConfig, raw: bytes, other: bytes) -> None:
    """A signature made for one body verifies for that body and for no other."""
    headers = sign(raw, config, timestamp=NOW)
    assert verify(headers, raw, config, NOW).ok
    assume(other != raw)
    assert not verify(headers, other, config, NOW).ok
