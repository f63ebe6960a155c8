"""app.vapi.toolcalls: every tool-call shape in, one string result per call out (§2.2, §3)."""

from __future__ import annotations

from typing import Any

import pytest

from app.vapi.toolcalls import (
    ToolCall,
    ToolResult,
    extract_function_call,
    extract_tool_calls,
    parse_arguments,
    speakable,
    tool_results_reply,
)
from tests.app.vapi.payloads import CALL_ID, message
from tests.vapi_schema import assert_valid_reply

RENT = ("call_fzEwCjWnJsuwoeGQGbITcnpw", "lookup_rent", {"unit": "4B"})
MAINT = (
    "call_Q9OmXr2bT6yLkP0aZ1cVd3Ef",
    "report_maintenance",
    {"unit": "4B", "issue": "kitchen sink is leaking", "urgency": "urgent"},
)
DOCS = ("toolu_01DTPAzUm5Gk3zxrpJ969oMF", "lookup_rent", {"unit": "4B"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tool-calls.2024", [RENT]),
        ("tool-calls.current", [RENT, MAINT]),
        ("tool-calls.docs-flat", [DOCS]),
        ("tool-calls.docs-events", [DOCS]),
        ("tool-calls.sdk-string-arguments", [RENT]),
    ],
)
def test_every_fixture_shape(name: str, expected: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Ids, names and arguments come out the same from every payload generation and docs shape."""
    calls = extract_tool_calls(message(name))
    assert [(c.id, c.name, c.arguments) for c in calls] == expected
    assert all(c.problem is None for c in calls)


def test_tool_config_is_attached_to_its_call() -> None:
    """The matching toolWithToolCallList entry rides along (async flag, messages, server)."""
    calls = extract_tool_calls(message("tool-calls.current"))
    assert [c.tool["function"]["name"] for c in calls] == ["lookup_rent", "report_maintenance"]
    assert not any(c.is_async for c in calls)


def test_only_tool_with_tool_call_list() -> None:
    """When only toolWithToolCallList is sent, calls come from its toolCall objects."""
    raw = message("tool-calls.current")
    del raw["toolCallList"]
    calls = extract_tool_calls(raw)
    assert [(c.id, c.name) for c in calls] == [RENT[:2], MAINT[:2]]
    assert calls[0].tool["type"] == "function"


def test_async_flag_must_be_true_exactly() -> None:
    """Only ``async: true`` marks a call async (a string "false" is not true)."""
    for flag, expected in ((True, True), ("false", False), (1, False), (None, False)):
        raw = {
            "toolWithToolCallList": [
                {"async": flag, "function": {"name": "f"}, "toolCall": {"id": "c1"}}
            ]
        }
        assert extract_tool_calls(raw)[0].is_async is expected


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"id": "c", "function": {"name": "f", "arguments": "{not json"}}, "not valid JSON"),
        ({"id": "c", "function": {"name": "f", "arguments": "[1, 2]"}}, "must be an object"),
        ({"id": "c", "function": {"name": "f", "arguments": 5}}, "must be an object"),
        ({"id": "c", "function": {"name": "f", "arguments": "[" * 50_000}}, "not valid JSON"),
        ({"id": "c", "function": {"arguments": {}}}, "without a function name"),
        ({"id": "c", "function": {"name": 42}}, "without a function name"),
    ],
    ids=["bad-json", "json-array", "number", "deep-json", "no-name", "non-string-name"],
)
def test_unusable_calls_carry_a_problem(item: dict[str, Any], problem: str) -> None:
    """A call that cannot run is still returned (to answer its id) with a problem to report."""
    (call,) = extract_tool_calls({"toolCallList": [item]})
    assert call.id == "c"
    assert call.problem is not None and problem in call.problem
    assert call.arguments == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, {}),
        ("", {}),
        ("   ", {}),
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),
    ],
    ids=["none", "empty", "blank", "json-string", "object"],
)
def test_parse_arguments(raw: Any, expected: dict[str, Any]) -> None:
    """Arguments arrive as an object or a JSON string (SDK says str, real payloads send objects)."""
    assert parse_arguments(raw) == (expected, None)


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"toolCallList": []},
        {"toolCallList": 5},
        {"toolCallList": "abc"},
        {"toolCallList": [1, "x", None]},
        {"toolWithToolCallList": 7},
        {"toolWithToolCallList": [{"toolCall": [1]}]},
        {"toolCallList": [{"id": "c", "_tool": 5, "function": {"name": "f"}}]},
    ],
    ids=[
        "nothing",
        "empty",
        "number",
        "string",
        "non-objects",
        "wrapped-number",
        "wrapped-list",
        "bogus-tool-key",
    ],
)
def test_garbage_never_raises(raw: dict[str, Any]) -> None:
    """Odd containers give fewer calls, never an exception."""
    calls = extract_tool_calls(raw)
    assert all(isinstance(c, ToolCall) for c in calls)


def test_missing_ids_get_positional_ids() -> None:
    """A call without an id still gets a stable, distinct id."""
    calls = extract_tool_calls({"toolCallList": [{"name": "a"}, {"name": "b", "id": 17}]})
    assert [c.id for c in calls] == ["call_0", "17"]


@pytest.mark.parametrize("name", ["function-call.2024", "function-call.flask"])
def test_legacy_function_call(name: str) -> None:
    """``functionCall.parameters`` is read as a JSON string or an object (vapi.md §2.3)."""
    call = extract_function_call(message(name))
    assert call is not None
    assert (call.id, call.name, call.arguments) == (CALL_ID, "lookup_rent", {"unit": "4B"})


def test_function_call_absent() -> None:
    """No functionCall object means no call."""
    assert extract_function_call({"type": "function-call"}) is None
    assert extract_function_call({"functionCall": "lookup_rent"}) is None


# --- results --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("two\nlines", "two lines"),
        ("crlf\r\n  and   tabs\t", "crlf and tabs"),
        ("unicode\u2028separator", "unicode separator"),
        ({"balance": 1250, "due": "Sept 1"}, '{"balance":1250,"due":"Sept 1"}'),
        ([1, "two"], '[1,"two"]'),
        (None, "null"),
        (3.5, "3.5"),
        ({"text": "a\nb"}, '{"text":"a\\nb"}'),
        (b"bytes", "\"b'bytes'\""),
        ({(1, 2): "tuple key"}, "{(1, 2): 'tuple key'}"),
    ],
    ids=[
        "text",
        "newline",
        "crlf",
        "unicode-line-separator",
        "object",
        "array",
        "none",
        "number",
        "escaped-newline-stays",
        "bytes",
        "unencodable-key",
    ],
)
def test_speakable(value: Any, expected: str) -> None:
    """Results are strings on one line: objects JSON-encoded, line breaks folded."""
    assert speakable(value) == expected


def test_results_reply_keeps_order_ids_and_names() -> None:
    """One result per call, same order, exact toolCallId, result xor error, all strings."""
    calls = extract_tool_calls(message("tool-calls.current"))
    reply = tool_results_reply(
        [
            ToolResult(calls[0], result={"balance": 1250}),
            ToolResult(calls[1], error="Maintenance system is down"),
        ]
    )
    assert reply == {
        "results": [
            {"name": "lookup_rent", "toolCallId": RENT[0], "result": '{"balance":1250}'},
            {
                "name": "report_maintenance",
                "toolCallId": MAINT[0],
                "error": "Maintenance system is down",
            },
        ]
    }
    assert_valid_reply("tool-calls", reply)


def test_results_reply_with_spoken_messages() -> None:
    """A spoken message is request-complete beside a result and request-failed beside an error."""
    call = ToolCall(id="c1", name="f", arguments={})
    reply = tool_results_reply(
        [
            ToolResult(call, result="ok", message="All done."),
            ToolResult(call, error="down", message="Sorry, that failed.\nTry later."),
        ]
    )
    assert [r["message"] for r in reply["results"]] == [
        {"type": "request-complete", "content": "All done."},
        {"type": "request-failed", "content": "Sorry, that failed. Try later."},
    ]
    assert_valid_reply("tool-calls", reply)


def test_missing_result_is_an_empty_string() -> None:
    """A result of None is sent as "" (a string), never null."""
    reply = tool_results_reply([ToolResult(ToolCall(id="c", name="f", arguments={}))])
    assert reply["results"][0]["result"] == ""
    assert_valid_reply("tool-calls", reply)


@pytest.mark.parametrize("name", ["tool-calls.2024", "tool-calls.current", "tool-calls.docs-flat"])
def test_problem_calls_answer_as_errors(name: str) -> None:
    """Answering every extracted call (problems as errors) yields a reply VAPI accepts."""
    raw = message(name)
    calls = extract_tool_calls(raw)
    reply = tool_results_reply(
        [ToolResult(c, error=c.problem) if c.problem else ToolResult(c, result="ok") for c in calls]
    )
    assert_valid_reply("tool-calls", reply)
