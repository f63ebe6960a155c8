"""The whole VAPI server protocol through the HTTP route (issue #3's must-shows): every fixture
answered in a shape VAPI's own SDK accepts, verification in each mode, duplicate deliveries
costing one job, and random or mutated bodies never producing a 5xx."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.vapi.auth import AuthConfig, sign
from devstack.emulator import Behavior
from tests.app.conftest import stack, tool_calls_message
from tests.app.vapi.payloads import body as fixture_body
from tests.app.vapi.payloads import fixture_names, load
from tests.vapi_schema import assert_valid_reply

JOB_TYPES = {"tool-calls", "function-call", "knowledge-base-request"}


async def test_every_fixture_gets_a_vapi_valid_reply() -> None:
    """Each message type, in both payload generations, gets 200 and a reply the SDK accepts;
    only tool calls, legacy function calls and knowledge-base lookups reach RunPod."""
    async with stack(RUNPOD_TOOLS="*") as s:
        for name in fixture_names():
            envelope = load(name)
            mtype = envelope["message"]["type"]
            before = len(s.emulator.jobs())
            r = await s.client.post(
                "/vapi/webhook",
                content=fixture_body(name),
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 200, name
            assert_valid_reply(mtype, r.json())
            ran_job = len(s.emulator.jobs()) > before
            if mtype not in JOB_TYPES:
                assert not ran_job, f"{name} submitted a RunPod job"


async def test_assistant_request_builds_the_template_with_public_urls() -> None:
    """assistant-request answers the template's assistant, pointed at PUBLIC_URL."""
    async with stack(PUBLIC_URL="https://voice.example.com") as s:
        r = await s.client.post("/vapi/webhook", content=fixture_body("assistant-request.current"))
        assistant = r.json()["assistant"]
        assert assistant["model"]["provider"] == "custom-llm"
        assert assistant["model"]["url"] == "https://voice.example.com/vapi"
        assert assistant["server"]["url"] == "https://voice.example.com/vapi/webhook"
        assert_valid_reply("assistant-request", r.json())


async def test_unknown_tools_get_a_per_result_error_and_no_job() -> None:
    """A tool the registry does not know is answered with an error string, without RunPod."""
    async with stack() as s:
        r = await s.client.post(
            "/vapi/webhook",
            json=tool_calls_message(
                ("k1", "lookup_rent", {"unit": "1"}), ("k2", "launch_rockets", {})
            ),
        )
        first, second = r.json()["results"]
        assert first["result"].startswith("Emulated result")
        assert second == {
            "name": "launch_rockets",
            "toolCallId": "k2",
            "error": "Unknown tool: launch_rockets",
        }
        assert len(s.emulator.jobs()) == 1
        assert_valid_reply("tool-calls", r.json())


async def test_duplicate_deliveries_cost_one_job_and_get_identical_replies() -> None:
    """The same toolCallId delivered concurrently and again later: one RunPod job, same reply."""
    async with stack(lambda _input: Behavior(run_s=0.5)) as s:
        body = tool_calls_message(("dup-1", "lookup_rent", {"unit": "4B"}))
        concurrent = await asyncio.gather(
            *(s.client.post("/vapi/webhook", json=body) for _ in range(3))
        )
        later = await s.client.post("/vapi/webhook", json=body)
        replies = [r.json() for r in (*concurrent, later)]
        assert all(reply == replies[0] for reply in replies)
        assert len(s.emulator.jobs()) == 1


async def test_duplicate_assistant_requests_share_one_answer() -> None:
    """assistant-request is keyed by call.id: a retry gets the very same assistant."""
    async with stack() as s:
        a, b = [
            (
                await s.client.post(
                    "/vapi/webhook", content=fixture_body("assistant-request.current")
                )
            ).json()
            for _ in range(2)
        ]
        assert a == b


SECRET = "vapi-shared-secret-1"
HMAC_KEY = "vapi-hmac-key-1"
BODY = json.dumps(tool_calls_message(("a1", "lookup_rent", {"unit": "4B"}))).encode()


CASES: dict[str, tuple[dict[str, str], dict[str, str], int]] = {
    # name: (gateway env, request headers, expected status)
    "secret-ok": ({"VAPI_SECRET": SECRET}, {"X-Vapi-Secret": SECRET}, 200),
    "bearer-ok": ({"VAPI_SECRET": SECRET}, {"Authorization": f"Bearer {SECRET}"}, 200),
    "secret-wrong": ({"VAPI_SECRET": SECRET}, {"X-Vapi-Secret": "guess"}, 401),
    "secret-empty-header": ({"VAPI_SECRET": SECRET}, {"X-Vapi-Secret": ""}, 401),
    "unsigned": ({"VAPI_HMAC_SECRET": HMAC_KEY}, {}, 401),
    "forged-signature": ({"VAPI_HMAC_SECRET": HMAC_KEY}, {"x-signature": "ab" * 32}, 401),
}


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
async def test_verification_modes_over_http(name: str) -> None:
    """Shared secret, bearer and HMAC: valid requests pass, others get a bare 401."""
    env, headers, status = CASES[name]
    async with stack(**env) as s:
        r = await s.client.post(
            "/vapi/webhook", content=BODY, headers={"content-type": "application/json", **headers}
        )
        assert r.status_code == status
        if status == 401:
            assert r.json() == {"error": "unauthorized"}
            assert s.emulator.jobs() == []


@pytest.mark.parametrize("encoding", ["hex", "base64"])
@pytest.mark.parametrize("with_timestamp", [False, True], ids=["body-only", "timestamped"])
async def test_hmac_valid_tampered_and_replayed(encoding: str, with_timestamp: bool) -> None:
    """A signed body passes; the same signature on a changed body or a stale timestamp fails."""
    env = {"VAPI_HMAC_SECRET": HMAC_KEY, "VAPI_HMAC_ENCODING": encoding}
    config = AuthConfig(hmac_secret=HMAC_KEY, hmac_encoding=encoding)  # type: ignore[arg-type]
    now = time.time()
    async with stack(**env) as s:
        good = sign(BODY, config, timestamp=now if with_timestamp else None)
        post = lambda content, headers: s.client.post(  # noqa: E731
            "/vapi/webhook",
            content=content,
            headers={"content-type": "application/json", **headers},
        )
        assert (await post(BODY, good)).status_code == 200
        tampered = BODY.replace(b"4B", b"9Z")
        assert (await post(tampered, good)).status_code == 401
        if with_timestamp:
            stale = sign(BODY, config, timestamp=now - 3600)
            assert (await post(BODY, stale)).status_code == 401
        failures = s.app.state.metrics.registry.get_sample_value
        assert sum(
            failures("pete_webhook_auth_failures_total", {"reason": r}) or 0
            for r in ("bad_signature", "stale_timestamp")
        ) == (2 if with_timestamp else 1)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
TYPES = st.sampled_from(
    [
        "tool-calls",
        "assistant-request",
        "function-call",
        "status-update",
        "transfer-destination-request",
        "knowledge-base-request",
        "end-of-call-report",
        "handoff-destination-request",
        "x",
    ]
)


@st.composite
def bad_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return json.dumps(draw(JSONISH)).encode()
    message = draw(st.dictionaries(st.text(max_size=12), JSONISH, max_size=5))
    message["type"] = draw(TYPES)
    if kind == 3:
        message["toolCallList"] = draw(st.lists(JSONISH, max_size=3))
        message["toolWithToolCallList"] = draw(JSONISH)
    return json.dumps({"message": message}).encode()


async def test_fuzzed_bodies_never_get_a_5xx() -> None:
    """Thousands of random and malformed bodies: only 200/400 answers, never a 5xx."""
    seen: dict[int, int] = {}
    async with stack(lambda _input: Behavior(), RUNPOD_TOOLS="*") as s:
        bodies: list[bytes] = []

        @given(bad_bodies())
        def collect(b: bytes) -> None:
            bodies.append(b)

        settings(max_examples=2000, database=None, deadline=None)(collect)()
        for chunk in range(0, len(bodies), 100):
            replies = await asyncio.gather(
                *(
                    s.client.post(
                        "/vapi/webhook", content=b, headers={"content-type": "application/json"}
                    )
                    for b in bodies[chunk : chunk + 100]
                )
            )
            for r in replies:
                seen[r.status_code] = seen.get(r.status_code, 0) + 1
                assert r.status_code < 500, r.text
                if r.status_code == 200:
                    json.loads(r.content)
    assert sum(seen.values()) >= 2000
    assert set(seen) <= {200, 400}, seen


async def test_async_tools_are_acknowledged_at_once_and_still_run() -> None:
    """A tool marked async: true is answered immediately; its job runs in the background."""
    call = {
        "id": "as-1",
        "type": "function",
        "function": {"name": "report_maintenance", "arguments": {"unit": "2", "issue": "leak"}},
    }
    message = {
        "message": {
            "type": "tool-calls",
            "call": {"id": "call-async"},
            "toolCallList": [call],
            "toolWithToolCallList": [
                {
                    "type": "function",
                    "async": True,
                    "function": {"name": "report_maintenance"},
                    "toolCall": call,
                }
            ],
        }
    }
    async with stack(lambda _input: Behavior(run_s=3)) as s:
        started = time.monotonic()
        r = await s.client.post("/vapi/webhook", json=message)
        assert time.monotonic() - started < 0.5
        assert r.json()["results"][0]["result"] == "Request received."
        for _ in range(50):
            if s.emulator.jobs():
                break
            await asyncio.sleep(0.02)
        assert [j.input["tool"]["name"] for j in s.emulator.jobs()] == ["report_maintenance"]
