"""Logs: JSON lines off a TTY, one canonical line per request, no secret and no caller speech
(issue #6 item 4). The gateway runs as ``python -m app`` against an in-process RunPod emulator,
so what is checked is exactly what a log shipper would read from the process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.logs import Redactor
from devstack.emulator import Behavior, EmulatorConfig, create_emulator
from devstack.serve import serve
from tests.app.conftest import tool_calls_message
from tests.app.gateway_process import ROOT, GatewayProcess, gateway_process

SECRETS = {
    "VAPI_SECRET": "vapi-secret-5b1e0c7d",
    "RUNPOD_API_KEY": "rp-key-9f8e7d6c5b4a",
    "ADMIN_TOKEN": "admin-token-3c2b1a09",
    "LLM_API_KEY": "llm-key-0a1b2c3d4e",
    "METRICS_TOKEN": "metrics-token-77aa88bb",
}
PHRASE = "my cat Zanzibar ate the lease at 42 Quill Street"


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    worker: Callable[[Mapping[str, Any]], Behavior] | None = None,
) -> AsyncIterator[tuple[GatewayProcess, httpx.AsyncClient]]:
    """``python -m app`` (LOG_FORMAT=auto, stdout a file) in front of an emulated RunPod."""
    key = (env or {}).get("RUNPOD_API_KEY", "rp-key-plain")
    emulator = create_emulator(
        EmulatorConfig(api_key=key, virtual_worker=worker or (lambda _input: Behavior()))
    )
    async with serve(emulator) as runpod:
        full_env = {"RUNPOD_ENDPOINT_URL": f"{runpod}/v2/local", "RUNPOD_API_KEY": key,
                    "HEALTH_POLL_S": "60", **(env or {})}  # fmt: skip
        async with (
            gateway_process(full_env, tmp_path) as gw,
            httpx.AsyncClient(base_url=gw.base_url, timeout=20) as client,
        ):
            yield gw, client
            gw.terminate()
            assert await gw.wait(20) == 0


def all_lines(gw: GatewayProcess) -> list[str]:
    return [line for line in gw.stdout_lines() + gw.stderr_lines() if line.strip()]


async def test_every_line_of_a_gateway_run_is_one_json_object(tmp_path: Path) -> None:
    """Start, requests, a RunPod warning and shutdown: each stdout/stderr line parses as JSON."""
    async with gateway(tmp_path) as (gw, client):
        turn = tool_calls_message(("c1", "lookup_rent", {"unit": "1A"}))
        await client.post("/vapi/webhook", json=turn)
        await client.get("/no-such-page")
        await client.get("/admin/status")  # 404: no admin token configured
    lines = all_lines(gw)
    records = [json.loads(line) for line in lines]  # raises on the first non-JSON line
    assert all(isinstance(r, dict) and {"event", "level", "timestamp"} <= set(r) for r in records)
    events = [r["event"] for r in records]
    for expected in (
        "Started server process",
        "Application startup complete",
        "Uvicorn running",
        "Shutting down",
        "Application shutdown complete",
        "Finished server process",
    ):
        assert any(e.startswith(expected) for e in events), expected
    assert {"gateway_started", "gateway_stopped", "request"} <= set(events)
    assert not any('"POST /vapi/webhook HTTP/1.1"' in e for e in events), "uvicorn access line"


def test_exceptions_and_warnings_are_json_lines_too() -> None:
    """A logged exception, warnings.warn, a library logger and an uncaught error: JSON lines."""
    script = (
        "import logging, warnings\n"
        "from app.logs import configure_logging\n"
        "configure_logging('auto', 'INFO')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n"
        "    logging.getLogger('some.library').exception('library_failed')\n"
        "warnings.warn('old API', DeprecationWarning, stacklevel=1)\n"
        "raise RuntimeError('boom at top level')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", script],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    by_event = {r["event"]: r for r in records}
    assert "ZeroDivisionError" in by_event["library_failed"]["exception"]
    assert by_event["library_failed"]["logger"] == "some.library"
    assert any("old API" in r["event"] and r["logger"] == "py.warnings" for r in records)
    assert "RuntimeError: boom at top level" in by_event["uncaught_exception"]["exception"]


def test_a_tty_gets_the_console_renderer() -> None:
    """On a terminal the lines are for people (console renderer), not JSON."""
    script = (
        "import io, structlog\n"
        "from app.logs import configure_logging\n"
        "class Tty(io.StringIO):\n    def isatty(self): return True\n"
        "out = Tty()\n"
        "configure_logging('auto', 'INFO', stream=out)\n"
        "structlog.get_logger('x').info('hello_console', unit='4B')\n"
        "print(out.getvalue())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, check=True)  # fmt: skip
    assert "hello_console" in done.stdout and "unit" in done.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(done.stdout.strip().splitlines()[0])


async def test_one_canonical_line_per_request_with_its_request_id(tmp_path: Path) -> None:
    """Each request logs exactly one `request` line whose request_id the response echoes."""
    async with gateway(tmp_path) as (gw, client):
        turn = await client.post(
            "/vapi/webhook",
            json=tool_calls_message(("c1", "lookup_rent", {"unit": "1A"}), call={"id": "call-abc"}),
        )
        given = await client.post(
            "/vapi/webhook",
            json={"message": {"type": "status-update"}},
            headers={"X-Request-ID": "upstream-id-42"},
        )
        missing = await client.get("/nope")
    lines = [r for r in gw.records() if r["event"] == "request"]
    by_id = {r["request_id"]: r for r in lines}
    assert len(lines) == len(by_id) == 3  # exactly one each
    first = by_id[turn.headers["x-request-id"]]
    assert first | {"method": "POST", "path": "/vapi/webhook", "route": "/vapi/webhook",
                    "status": 200, "outcome": "ok", "call_id": "call-abc"} == first  # fmt: skip
    assert first["duration_ms"] >= 0 and first["level"] == "info"
    assert given.headers["x-request-id"] == "upstream-id-42"
    assert by_id["upstream-id-42"].get("call_id") is None, "context from the previous request"
    assert by_id[missing.headers["x-request-id"]]["route"] == "unmatched"
    assert by_id[missing.headers["x-request-id"]]["status"] == 404


async def test_no_secret_and_no_caller_speech_reach_the_logs(tmp_path: Path) -> None:
    """Turns of every kind with secrets configured log neither a secret nor the caller's words."""
    env = {**SECRETS, "LOG_LEVEL": "INFO"}
    vapi = {"x-vapi-secret": SECRETS["VAPI_SECRET"]}
    llm = {"Authorization": f"Bearer {SECRETS['LLM_API_KEY']}"}
    admin = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
    conversation = {"messagesOpenAIFormatted": [{"role": "user", "content": PHRASE}]}
    end_of_call = {"message": {"type": "end-of-call-report", "call": {"id": "call-1"},
                               "artifact": {"transcript": PHRASE, **conversation},
                               "summary": PHRASE}}  # fmt: skip

    def worker(job_input: Mapping[str, Any]) -> Behavior:
        tool = job_input.get("tool") or {}
        if tool.get("name") == "report_maintenance":
            return Behavior(status="FAILED", error="worker crashed")
        return Behavior()  # the output echoes the caller's words back

    async with gateway(tmp_path, env, worker) as (gw, client):
        replies = [
            await client.post(
                "/vapi/webhook",
                headers=vapi,
                json=tool_calls_message(
                    ("c1", "lookup_rent", {"note": PHRASE}),
                    ("c2", "report_maintenance", {"note": PHRASE}),
                    ("c3", "not_a_known_tool", {"note": PHRASE}),
                    call={"id": "call-1"},
                    artifact=conversation,
                ),
            ),
            await client.post("/vapi/webhook", headers=vapi, json=end_of_call),
            await client.post(
                "/vapi/webhook",
                headers=vapi,
                json={"message": {"type": "transcript", "transcript": PHRASE, "role": "user"}},
            ),
            await client.post(
                "/vapi/chat/completions",
                headers=llm,
                json={"model": "pete", "messages": [{"role": "user", "content": PHRASE}]},
            ),
            await client.post(
                "/v1/chat/completions",
                headers=llm,
                json={"stream": True, "messages": [{"role": "user", "content": PHRASE}]},
            ),
            await client.post("/api/chat", json={"message": PHRASE}),
            await client.get("/admin/status", headers=admin),
            await client.get("/admin/config", headers=admin),
            await client.post("/admin/warmup", headers=admin, json={"count": 1}),
            await client.get(
                "/metrics", headers={"Authorization": f"Bearer {SECRETS['METRICS_TOKEN']}"}
            ),
            await client.get("/admin/status", headers={"Authorization": "Bearer wrong"}),
        ]
    assert [r.status_code for r in replies] == [200] * 10 + [401]
    assert PHRASE in replies[0].text and PHRASE in replies[5].text  # the turns really ran
    logged = "\n".join(all_lines(gw))
    assert logged.count('"event": "request"') == len(replies) - 1  # /metrics logs at DEBUG
    for name, value in SECRETS.items():
        assert value not in logged, f"{name} leaked into the logs"
    assert PHRASE not in logged and "Zanzibar" not in logged, "caller speech leaked"


def test_the_redactor_masks_configured_secrets_anywhere_in_a_line() -> None:
    """A secret that reaches a log line anyway is masked, nested values included."""
    redact = Redactor(["s3cret-value-1", "short"])
    event = {"event": "x", "url": "http://h/?k=s3cret-value-1", "n": 3,
             "nested": {"list": ["a s3cret-value-1 b"]}, "note": "short stays"}  # fmt: skip
    assert redact(None, "info", event) == {
        "event": "x",
        "url": "http://h/?k=***",
        "n": 3,
        "nested": {"list": ["a *** b"]},
        "note": "short stays",  # under 8 characters: not treated as a secret
    }
