"""app.vapi.assistant: templates load, validate and answer assistant-request (vapi.md §2.1)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.vapi.assistant import (
    AssistantTemplate,
    TemplateError,
    build_assistant_reply,
    deep_merge,
    load_template,
    normalise_number,
    parse_template,
)
from app.vapi.messages import from_message, parse_envelope
from tests.app.vapi.payloads import body
from tests.vapi_schema import assert_valid_reply

ASSISTANTS = Path(__file__).resolve().parents[3] / "app" / "assistants"
PUBLIC = "https://gateway.example.com"
DEFAULT = load_template(ASSISTANTS / "default.yaml")
EXAMPLE = load_template(ASSISTANTS / "example.json", variables={"VAPI_ASSISTANT_ID": "asst-42"})


def _request(called: str | None = None, caller: str | None = None) -> Any:
    raw: dict[str, Any] = {"type": "assistant-request", "call": {"id": "c1"}}
    if called:
        raw["phoneNumber"] = {"id": "pn-1", "number": called}
    if caller:
        raw["customer"] = {"number": caller}
    return from_message(raw)


MINIMAL: dict[str, Any] = {
    "assistant": {
        "firstMessage": "Hello",
        "model": {"provider": "custom-llm", "url": "{PUBLIC_URL}/vapi", "model": "m"},
        "server": {"url": "{PUBLIC_URL}/vapi/webhook"},
    }
}


# --- the shipped templates ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["assistant-request.2024", "assistant-request.current"])
def test_default_template_answers_both_generations(name: str) -> None:
    """The demo template's reply to a real assistant-request validates against the SDK."""
    reply = build_assistant_reply(DEFAULT, parse_envelope(body(name)), PUBLIC)
    assert_valid_reply("assistant-request", reply)
    assistant = reply["assistant"]
    assert assistant["model"]["provider"] == "custom-llm"
    assert assistant["model"]["url"] == f"{PUBLIC}/vapi"
    assert assistant["server"]["url"] == f"{PUBLIC}/vapi/webhook"


def test_default_template_fills_every_placeholder() -> None:
    """No ``{NAME}`` placeholder survives into the reply."""
    reply = build_assistant_reply(DEFAULT, _request(), PUBLIC + "/")
    text = json.dumps(reply)
    assert not re.search(r"(?<!\{)\{[A-Z][A-Z0-9_]*\}(?!\})", text)
    assert "Harbor View Property Management" in reply["assistant"]["firstMessage"]
    assert reply["assistant"]["model"]["url"] == f"{PUBLIC}/vapi"  # trailing slash dropped


def test_default_template_has_the_demo_tools() -> None:
    """The demo exposes lookup_rent, report_maintenance, transferCall (with numbers) and endCall."""
    tools = DEFAULT.base["assistant"]["model"]["tools"]
    names = [t.get("function", {}).get("name", t["type"]) for t in tools]
    assert names == ["lookup_rent", "report_maintenance", "transferCall", "endCall"]
    transfer = tools[2]["destinations"]
    assert [d["number"] for d in transfer] == ["+12025550100", "+12025550111"]
    assert set(DEFAULT.destinations) == {"default", "office", "maintenance"}


@pytest.mark.parametrize(
    ("called", "caller", "check"),
    [
        (None, None, lambda r: r["assistant"]["firstMessage"].startswith("Thanks for calling")),
        ("+12025550142", None, lambda r: "maintenance line" in r["assistant"]["firstMessage"]),
        ("+1 202 555 0142", None, lambda r: "maintenance line" in r["assistant"]["firstMessage"]),
        ("+12025550100", "+12025550177", lambda r: r["destination"]["number"] == "+12025550100"),
        ("+12025550142", "+12025550177", lambda r: "destination" in r),
    ],
    ids=["base", "maintenance-line", "number-punctuation", "caller-to-office", "caller-beats-line"],
)
def test_default_template_overrides(called: str | None, caller: str | None, check: Any) -> None:
    """Per-number and per-caller overrides apply, the caller's last; replies stay valid."""
    reply = build_assistant_reply(DEFAULT, _request(called, caller), PUBLIC)
    assert check(reply)
    assert_valid_reply("assistant-request", reply)


def test_override_keeps_the_rest_of_the_assistant() -> None:
    """A firstMessage override deep-merges: model, tools and voice are kept."""
    reply = build_assistant_reply(DEFAULT, _request("+12025550142"), PUBLIC)
    base = build_assistant_reply(DEFAULT, _request(), PUBLIC)
    assert reply["assistant"]["model"] == base["assistant"]["model"]
    assert reply["assistant"]["voice"] == base["assistant"]["voice"]


def test_example_json_needs_its_assistant_id() -> None:
    """example.json refuses to load until VAPI_ASSISTANT_ID is given, naming the placeholder."""
    with pytest.raises(
        TemplateError, match=r"assistantId: unknown placeholder \{VAPI_ASSISTANT_ID\}"
    ):
        load_template(ASSISTANTS / "example.json")


@pytest.mark.parametrize(
    ("called", "caller", "expected"),
    [
        (None, None, {"assistantId": "asst-42"}),
        ("+12025550160", None, {"assistantId": "asst-42"}),
        ("+12025550161", None, {"destination": {"type": "sip"}}),
        (None, "+12025550199", {"error": "Sorry, this line can't take your call."}),
    ],
    ids=["base", "greeting-line", "sip-line", "refused-caller"],
)
def test_example_json(called: str | None, caller: str | None, expected: dict[str, Any]) -> None:
    """assistantId, destination and error entries each produce their reply shape."""
    reply = build_assistant_reply(EXAMPLE, _request(called, caller), PUBLIC)
    for key, value in expected.items():
        if isinstance(value, dict):
            assert reply[key].items() >= value.items()
        else:
            assert str(reply[key]).startswith(value)
    assert_valid_reply("assistant-request", reply)


def test_example_override_merges_assistant_overrides() -> None:
    """The greeting line adds firstMessage to the base assistantOverrides, keeping the rest."""
    reply = build_assistant_reply(EXAMPLE, _request("+12025550160"), PUBLIC)
    overrides = reply["assistantOverrides"]
    assert overrides["firstMessage"] == "Harbor View leasing, how can I help?"
    assert overrides["variableValues"] == {"company": "Harbor View Property Management"}


def test_phone_number_id_can_key_an_override() -> None:
    """Overrides may be keyed by the VAPI phone number's id as well as its number."""
    template = parse_template(
        {**MINIMAL, "overrides": {"phoneNumbers": {"pn-1": {"error": "Closed today."}}}}
    )
    assert build_assistant_reply(template, _request("+19999999999"), PUBLIC) == {
        "error": "Closed today."
    }


# --- precedence, placeholders, merging ----------------------------------------------------------


def test_precedence_follows_vapi() -> None:
    """error > destination > assistantId > assistant (vapi.md §2.1)."""
    full = {
        **MINIMAL,
        "assistantId": "asst-1",
        "destination": {"type": "number", "number": "+12025550100"},
        "error": "Closed.",
    }
    steps = [("error", "error"), ("destination", "destination"), ("assistantId", "assistantId")]
    for key, expected in steps:
        reply = build_assistant_reply(parse_template(full), _request(), PUBLIC)
        assert expected in reply
        full = {k: v for k, v in full.items() if k != key}
    assert "assistant" in build_assistant_reply(parse_template(full), _request(), PUBLIC)


def test_null_in_an_override_removes_a_key() -> None:
    """``null`` in an override deletes the base value (here: fall back from assistantId)."""
    template = parse_template(
        {
            **MINIMAL,
            "assistantId": "asst-1",
            "overrides": {"customers": {"+12025550123": {"assistantId": None}}},
        }
    )
    assert "assistantId" in build_assistant_reply(template, _request(), PUBLIC)
    reply = build_assistant_reply(template, _request(caller="+12025550123"), PUBLIC)
    assert "assistant" in reply and "assistantId" not in reply


def test_variables_fill_placeholders_and_leave_vapi_templates_alone() -> None:
    """``{NAME}`` is ours, ``{{customer.number}}`` VAPI's; load-time values beat file defaults."""
    data = copy.deepcopy(MINIMAL)
    data["variables"] = {"GREETING": "Hello", "WHO": "file"}
    data["assistant"]["firstMessage"] = "{GREETING} {WHO}, calling from {{customer.number}}?"
    template = parse_template(data, variables={"WHO": "settings"})
    reply = build_assistant_reply(template, _request(), PUBLIC)
    assert reply["assistant"]["firstMessage"] == "Hello settings, calling from {{customer.number}}?"


def test_deep_merge() -> None:
    """Mappings merge, lists and scalars replace, None deletes; inputs are not modified."""
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": 2}
    override = {"a": {"c": [3], "x": 0}, "d": None, "e": {"f": 1}}
    assert deep_merge(base, override) == {"a": {"b": 1, "c": [3], "x": 0}, "e": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": 2}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+1 (202) 555-0142", "+12025550142"),
        ("+1.202.555.0142", "+12025550142"),
        ("12025550142", "12025550142"),
        ("pn-1", "pn-1"),
        ("4a5a04dc-2f3e", "4a5a04dc-2f3e"),
    ],
    ids=["spaces-and-parens", "dots", "no-plus", "id", "uuid-like-id"],
)
def test_normalise_number(value: str, expected: str) -> None:
    """Phone numbers lose their punctuation; ids pass through."""
    assert normalise_number(value) == expected


# --- validation at load -------------------------------------------------------------------------


def _broken(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    target = data
    *parents, last = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    if value is _DELETE:
        target.pop(last, None)
    else:
        target[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "must be a mapping"),
        ({}, "needs one of assistant, assistantId, destination, error"),
        ({**MINIMAL, "asistant": {}}, "unknown key"),
        (_broken("assistant.model", _DELETE), "model: needs a provider"),
        (_broken("assistant.model.url", _DELETE), "model.url: required for custom-llm"),
        (_broken("assistant.model.model", ""), "model.model: required"),
        (_broken("assistant.model.url", "ftp://x"), "model.url: must be an http"),
        (_broken("assistant.firstMessage", 5), "firstMessage: must be a string"),
        (_broken("assistant.model.tools", [{"function": {}}]), "a tool needs a type"),
        (
            _broken("assistant.model.tools", [{"type": "function", "function": {"name": "a b"}}]),
            "function.name",
        ),
        (
            _broken(
                "assistant.model.tools",
                [{"type": "transferCall", "destinations": [{"type": "number", "number": "x"}]}],
            ),
            "E.164",
        ),
        (_broken("assistant.serverMessages", ["tool-calls", "typo"]), "serverMessages"),
        (_broken("assistant.voice", {"voiceId": "Elliot"}), "voice.provider"),
        (_broken("assistant.server", {"url": 5}), "server.url"),
        (_broken("assistant.firstMessage", "Hi {MISSING}"), r"unknown placeholder \{MISSING\}"),
        ({**MINIMAL, "assistantId": ""}, "assistantId: must be a non-empty string"),
        ({**MINIMAL, "destination": {"type": "assistant", "assistantName": "x"}}, "destination"),
        ({**MINIMAL, "destinations": {"d": {"type": "number"}}}, r"destinations\.d"),
        ({**MINIMAL, "overrides": {"numbers": {}}}, "unknown section"),
        ({**MINIMAL, "overrides": {"phoneNumbers": {"+1": {"voice": {}}}}}, "unknown key"),
        (
            {**MINIMAL, "overrides": {"phoneNumbers": {12025550142: {"error": "x"}}}},
            "quote phone numbers",
        ),
        (
            {
                **MINIMAL,
                "overrides": {
                    "phoneNumbers": {
                        "+12025550142": {"error": "a"},
                        "+1 202 555 0142": {"error": "b"},
                    }
                },
            },
            "duplicates",
        ),
        (
            {**MINIMAL, "overrides": {"customers": {"+1": {"assistant": {"model": None}}}}},
            r"customers\.\+1: assistant\.model: needs a provider",
        ),
        ({**MINIMAL, "variables": {"lower": "x"}}, "UPPER_CASE"),
        ({**MINIMAL, "variables": {"PUBLIC_URL": "x"}}, "filled per reply"),
    ],
    ids=[
        "not-a-mapping",
        "empty",
        "typo-top-level",
        "no-model",
        "custom-llm-without-url",
        "custom-llm-without-model",
        "model-url-scheme",
        "first-message-number",
        "tool-without-type",
        "bad-tool-name",
        "bad-transfer-destination",
        "unknown-server-message",
        "voice-without-provider",
        "server-url-number",
        "unknown-placeholder",
        "empty-assistant-id",
        "assistant-destination-on-request",
        "bad-named-destination",
        "unknown-override-section",
        "override-unknown-key",
        "unquoted-yaml-number",
        "duplicate-after-normalising",
        "override-breaks-the-merged-assistant",
        "lower-case-variable",
        "public-url-variable",
    ],
)
def test_invalid_templates_fail_at_load(data: Any, problem: str) -> None:
    """Every broken template is refused at load with a message naming the path."""
    with pytest.raises(TemplateError, match=problem):
        parse_template(data, source="t.yaml")


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    """Missing files, unknown suffixes and unparsable YAML/JSON are TemplateErrors with the path."""
    cases = {
        "missing.yaml": None,
        "assistant.toml": "x = 1",
        "broken.yaml": "assistant: [unclosed",
        "broken.json": "{",
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(TemplateError, match=re.escape(str(path))):
            load_template(path)


def test_yaml_and_json_load_the_same_template(tmp_path: Path) -> None:
    """The same data in YAML and JSON gives the same template."""
    (tmp_path / "a.json").write_text(json.dumps(MINIMAL))
    (tmp_path / "a.yml").write_text(json.dumps(MINIMAL))  # JSON is valid YAML
    one, two = load_template(tmp_path / "a.json"), load_template(tmp_path / "a.yml")
    assert isinstance(one, AssistantTemplate)
    assert one.base == two.base
