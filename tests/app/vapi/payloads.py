"""Request fixtures (tests/fixtures/vapi/) and hypothesis strategies for the VAPI tests.

Fixture files are ``<message type or slug>.<variant>.json``; variant ``2024`` is the older payload
generation (ISO timestamp, ``toolCalls``, top-level transcript, ``call.callId``), ``current`` the
SDK 3.0.0 one (epoch-ms timestamp, ``artifact.*``), anything else a shape seen in docs/examples.

The ``vapi`` hypothesis profile keeps the whole fuzz suite within a few seconds while still
sending thousands of payloads; ``VAPI_FUZZ_EXAMPLES=5000`` runs a deeper pass. No example
database is written (other engineers share the tree).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vapi"
CALL_ID = "6b38c32e-5a2d-4b7e-9c1a-3f0d2e8a9b10"
CALLED_NUMBER = "+12025550142"
CALLER_NUMBER = "+12025550123"
TS_CURRENT = 1754400000.123  # 1754400000123 ms in the current fixtures
TS_2024 = 1721933627.736  # "2024-07-25T18:53:47.736Z" in the 2024 fixtures

settings.register_profile(
    "vapi",
    max_examples=int(os.environ.get("VAPI_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("vapi")


def fixture_names() -> list[str]:
    """Every fixture file's stem, sorted (``tool-calls.2024``, ...)."""
    return sorted(p.name.removesuffix(".json") for p in FIXTURES.glob("*.json"))


@cache
def _text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text(encoding="utf-8")


def body(name: str) -> bytes:
    """The raw request body of a fixture."""
    return _text(name).encode("utf-8")


def load(name: str) -> dict[str, Any]:
    """A fresh decoded copy of a fixture's envelope."""
    return json.loads(_text(name))


def message(name: str) -> dict[str, Any]:
    """A fresh decoded copy of a fixture's ``message`` object."""
    return load(name)["message"]


def names_of_type(*types: str) -> list[str]:
    return [n for n in fixture_names() if message(n)["type"] in types]


# --- strategies ---------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=12,
)
"""Arbitrary JSON-decoded values (NaN and infinities included: ``json.loads`` accepts them)."""

_interesting_keys = st.sampled_from(
    [
        "type",
        "message",
        "call",
        "id",
        "callId",
        "timestamp",
        "phoneNumber",
        "customer",
        "number",
        "artifact",
        "messagesOpenAIFormatted",
        "toolCallList",
        "toolCalls",
        "toolWithToolCallList",
        "toolCall",
        "function",
        "name",
        "arguments",
        "parameters",
        "async",
        "_tool",
        "functionCall",
        "monitor",
        "controlUrl",
        "endedReason",
        "startedAt",
        "endedAt",
        "cost",
        "costs",
        "analysis",
        "summary",
        "transcript",
        "messages",
        "recordingUrl",
        "successEvaluation",
        "durationSeconds",
        "tool_calls",
        "destination",
    ]
)
keys = _interesting_keys | st.text(max_size=10)


def _mutate_once(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """Replace, drop or add one thing somewhere inside ``value``."""
    if isinstance(value, dict) and value and depth < 8 and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["descend", "replace", "drop", "add"]))
        out = dict(value)
        if action == "descend":
            out[key] = _mutate_once(draw, value[key], depth + 1)
        elif action == "replace":
            out[key] = draw(json_values)
        elif action == "drop":
            del out[key]
        else:
            out[draw(keys)] = draw(json_values)
        return out
    if isinstance(value, list) and value and depth < 8 and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        out_list = list(value)
        action = draw(st.sampled_from(["descend", "replace", "drop", "duplicate"]))
        if action == "descend":
            out_list[i] = _mutate_once(draw, value[i], depth + 1)
        elif action == "replace":
            out_list[i] = draw(json_values)
        elif action == "drop":
            del out_list[i]
        else:
            out_list.insert(i, value[i])
        return out_list
    return draw(json_values)


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> dict[str, Any]:
    """A fixture envelope with one to four random mutations anywhere inside it."""
    value: Any = load(draw(st.sampled_from(fixture_names())))
    for _ in range(draw(st.integers(1, 4))):
        value = _mutate_once(draw, value)
    return value if isinstance(value, dict) else {"message": value}


@st.composite
def mutated_messages(draw: st.DrawFn, *types: str) -> dict[str, Any]:
    """A fixture's ``message`` object (of one of ``types``, default any) with random mutations."""
    value: Any = message(draw(st.sampled_from(names_of_type(*types) if types else fixture_names())))
    for _ in range(draw(st.integers(1, 4))):
        value = _mutate_once(draw, value)
    return value if isinstance(value, dict) else {"type": "tool-calls", "toolCallList": value}


def encode(value: Any) -> bytes:
    """JSON bytes, as VAPI would send them (NaN allowed: hostile senders do that)."""
    return json.dumps(value).encode("utf-8")
