"""Schemathesis against a real gateway (issue #7, fuzzing): zero 5xx, zero unhandled exceptions.

The gateway runs as ``python -m app`` (JSON logs on stdout, read afterwards) on loopback, in front
of the in-process RunPod emulator whose virtual worker answers at once; budgets are short so a
turn is quick. Schemathesis loads the document from the gateway's own ``GET /openapi.json`` and
fuzzes every operation in it, positive and negative data, with the valid credential of each
operation (VAPI shared secret, admin token, LLM key, metrics token), checking status code,
content type, response schema and headers against the document and that nothing is a 5xx
(:mod:`bench.fuzz`, shared with ``python -m bench --only fuzz``, which runs the same at a large
budget). A second pass sends the protected operations without credentials: 401 with a JSON body.

Budget: ``FUZZ_MAX_EXAMPLES`` examples per operation and mode (default 12). Each pass runs in an
interpreter of its own (``python -m bench.fuzz``), derandomized, so the same document and gateway
send the same requests on every run, whatever else the pytest session imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.openapi import openapi_document
from bench import fuzz
from devstack.emulator import Behavior, EmulatorConfig, create_emulator
from devstack.serve import serve
from gpu_worker.contract import ContractError, build_job_input
from tests.app.conftest import stack
from tests.app.gateway_process import GatewayProcess, gateway_process
from tests.app.test_openapi import documented_operations

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
API_KEY = "rp-fuzz-key"

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def fuzzed_gateway(tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    """``python -m app`` with :func:`bench.fuzz.gateway_env`, RunPod = emulator, fast worker.

    On exit the gateway is stopped (SIGTERM, clean exit asserted) so its log is complete.
    """
    emulator = create_emulator(
        EmulatorConfig(api_key=API_KEY, virtual_worker=lambda _input: Behavior())
    )
    async with serve(emulator) as runpod:
        env = {**fuzz.gateway_env(), "RUNPOD_ENDPOINT_URL": f"{runpod}/v2/local",
               "RUNPOD_API_KEY": API_KEY}  # fmt: skip
        async with gateway_process(env, tmp_path) as gw:
            await wait_ready(gw)
            yield gw
            gw.terminate()
            assert await gw.wait(20) == 0


async def wait_ready(gw: GatewayProcess) -> None:
    """Until /readyz says ready (RunPod /health answered), so no probe sees a starting 503."""
    import httpx

    async with httpx.AsyncClient(base_url=gw.base_url, timeout=2) as client:
        for _ in range(200):
            if (await client.get("/readyz")).status_code == 200:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the gateway never became ready")


def logged_problems(gw: GatewayProcess) -> list[dict[str, object]]:
    return fuzz.log_problems(gw.stdout_lines() + gw.stderr_lines())


def pretty(records: list[dict[str, object]]) -> str:
    return json.dumps(records[:3], indent=1, default=str)[-6000:]


def documented_labels() -> set[str]:
    return {f"{m.upper()} {path}" for path, m in documented_operations(openapi_document())}


async def test_every_operation_fuzzed_with_credentials_gives_no_5xx_and_no_exception(
    tmp_path: Path,
) -> None:
    """Positive and negative data on every operation: each response conforms to the document
    (status, content type, schema, headers), none is a 5xx, and the gateway logged no error."""
    async with fuzzed_gateway(tmp_path) as gw:
        report = await asyncio.to_thread(fuzz.run_isolated, gw.base_url, max_examples=MAX_EXAMPLES)
    assert set(report["operation_labels"]) == documented_labels()
    assert all(sum(report["by_operation"][label].values()) for label in documented_labels())
    assert not report["problems"], "\n".join(report["problems"])
    assert report["server_errors"] == 0 and report["transport_errors"] == 0
    assert not (logged := logged_problems(gw)), pretty(logged)
    # the fuzzer got past the parsers: accepted requests and rejected ones on the body routes
    for label in ("POST /vapi/webhook", "POST /v1/chat/completions", "POST /api/chat"):
        statuses = report["by_operation"][label]
        assert statuses.get("200") and statuses.get("400", 0) + statuses.get("422", 0), label


async def test_protected_operations_without_credentials_are_401_json(tmp_path: Path) -> None:
    """Valid requests to every protected operation, with a wrong or no credential: 401, JSON."""
    async with fuzzed_gateway(tmp_path) as gw:
        probe = await asyncio.to_thread(
            fuzz.run_isolated,
            gw.base_url,
            max_examples=max(2, MAX_EXAMPLES // 4),
            unauthenticated=True,
        )
    assert not probe["not_401_json"], "\n".join(probe["samples"])
    assert probe["requests"] and set(probe["by_status"]) == {"401"}
    assert not (logged := logged_problems(gw)), pretty(logged)


def test_log_problems_flags_errors_exceptions_and_non_json_lines() -> None:
    """The log scan the fuzz tests rely on: error/critical, any exception field, non-JSON."""
    lines = [
        '{"level": "info", "event": "request"}',
        '{"level": "warning", "event": "webhook_rejected"}',
        '{"level": "error", "event": "Exception in ASGI application"}',
        '{"level": "info", "event": "x", "exception": "Traceback ..."}',
        "Traceback (most recent call last):",
        "",
    ]
    assert [p.get("event") for p in fuzz.log_problems(lines)] == [
        "Exception in ASGI application",
        "x",
        "non-JSON log line",
    ]


# ------------------------------------------------------------------ what the fuzzer found, pinned

ADMIN = {"Authorization": f"Bearer {fuzz.SECRETS['ADMIN_TOKEN']}"}
LLM = {"Authorization": f"Bearer {fuzz.SECRETS['LLM_API_KEY']}"}
USER = {"role": "user", "content": "hi"}


async def test_found_an_unhashable_role_is_422_not_500() -> None:
    """A message whose role is a list made the custom-LLM route raise TypeError (HTTP 500)."""
    async with stack(**fuzz.gateway_env()) as s:
        r = await s.client.post(
            "/v1/chat/completions", json={"messages": [{"role": ["user"]}]}, headers=LLM
        )
    assert r.status_code == 422 and r.json()["error"]["param"] == "messages[0]"
    with pytest.raises(ContractError):  # the worker's parser: ContractError, not TypeError
        build_job_input(type="chat", messages=[{"role": ["user"], "content": "x"}])


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"stream": "true"}, "stream"),
        ({"model": 7}, "model"),
        ({"call": 3}, "call"),
        ({"tools": ""}, "tools"),
        ({"tools": [False]}, "tools[0].function.name"),
        ({"max_tokens": 5, "max_completion_tokens": 0}, "max_completion_tokens"),
        ({"messages": [{**USER, "tool_calls": {"id": "x"}}]}, "messages[0].tool_calls"),
        ({"messages": [{**USER, "tool_call_id": 5}]}, "messages[0].tool_call_id"),
    ],
)
async def test_found_llm_fields_of_the_wrong_type_are_422(extra: dict, param: str) -> None:
    """Documented fields of the wrong type were silently ignored ("stream": "true" answered a
    non-streamed completion); now 422 naming the field, with null still meaning absent."""
    async with stack(**fuzz.gateway_env()) as s:
        r = await s.client.post(
            "/v1/chat/completions", json={"messages": [USER], **extra}, headers=LLM
        )
        ok = await s.client.post(
            "/v1/chat/completions",
            json={"messages": [USER], "stream": None, "model": None, "call": None},
            headers=LLM,
        )
    assert r.status_code == 422 and r.json()["error"]["param"] == param, r.text
    assert ok.status_code == 200 and ok.json()["object"] == "chat.completion"


async def test_found_cancelling_an_unknown_job_is_404_not_502() -> None:
    """RunPod answers 404 for an unknown job; the cancel route said 502 (a 5xx for a typo)."""
    async with stack(**fuzz.gateway_env()) as s:
        r = await s.client.post("/admin/jobs/no-such-job/cancel", headers=ADMIN)
    assert r.status_code == 404 and "error" in r.json()


async def test_found_admin_bodies_checked_as_documented() -> None:
    """A whitespace body was taken for "no body", and count was unchecked for other actions."""
    async with stack(**fuzz.gateway_env()) as s:
        blank = await s.client.post("/admin/warmup", content=b"\n", headers=ADMIN)
        count = await s.client.post(
            "/admin/action", json={"action": "config", "count": 11}, headers=ADMIN
        )
        empty = await s.client.post("/admin/warmup", headers=ADMIN)
    assert blank.status_code == 400
    assert count.status_code == 422 and count.json()["field"] == "count"
    assert empty.status_code == 200 and empty.json()["requested"] == 1


@pytest.mark.parametrize("role", [{"x": 1}, ["user"]], ids=["dict", "list"])
async def test_found_a_malformed_role_in_the_conversation_still_gets_the_tool_answer(
    role: object,
) -> None:
    """A tool-calls message whose artifact.messagesOpenAIFormatted has an item with an
    unhashable role made app/tools.py clean_history raise TypeError: the dispatcher's last
    resort logged it and the caller heard the fallback sentence instead of the tool's answer.
    The item must just be dropped from the history like any other unknown role."""
    message = {
        "message": {
            "type": "tool-calls",
            "call": {"id": "call-fuzz"},
            "toolCallList": [{"id": "t1", "type": "function",
                              "function": {"name": "lookup_rent", "arguments": {}}}],
            "artifact": {"messagesOpenAIFormatted": [{"role": role, "content": "hi"}, USER]},
        }
    }  # fmt: skip
    async with stack(**fuzz.gateway_env()) as s:
        r = await s.client.post(
            "/vapi/webhook", json=message, headers={"x-vapi-secret": fuzz.SECRETS["VAPI_SECRET"]}
        )
    assert r.status_code == 200
    assert r.json()["results"][0]["result"].startswith("Emulated result of lookup_rent"), r.text
