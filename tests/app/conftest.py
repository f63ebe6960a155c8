"""Gateway test harness: a real gateway and a real (emulated) RunPod, both on loopback.

``stack(virtual_worker, **env)`` serves the RunPod emulator with a scripted in-process worker
and a gateway pointed at it, and yields a :class:`Stack` with an httpx client for the gateway and
the emulator's live state for assertions (which jobs ran, which were cancelled).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from devstack.emulator import Behavior, Emulator, EmulatorConfig, create_emulator
from devstack.serve import serve
from tests.vapi_schema import assert_valid_reply

API_KEY = "rp-test-key"


@dataclass
class Stack:
    client: httpx.AsyncClient
    gateway_url: str
    runpod_url: str
    emulator: Emulator
    app: Any


def tool_calls_message(*calls: tuple[str, str, Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "message": {
            "type": "tool-calls",
            "call": {"id": "call-test"},
            "toolCallList": [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                for cid, name, args in calls
            ],
            **extra,
        }
    }


async def validate_vapi_reply(response: httpx.Response) -> None:
    """Every 200 the webhook route gives in any test must be a reply VAPI's own SDK accepts."""
    request = response.request
    if request.url.path != "/vapi/webhook" or response.status_code != 200:
        return
    await response.aread()
    try:
        message_type = json.loads(request.content)["message"]["type"]
    except (ValueError, KeyError, TypeError):
        message_type = None
    if isinstance(message_type, str):
        assert_valid_reply(message_type, response.json())


@functools.cache
def warm_validator() -> None:
    """Build the tool-calls reply model before any test starts its clock: the response hook
    runs inside the timed ``client.post``, and the model's first use (SDK import, pydantic
    validators) blocks the loop ~130 ms, which made a lone budget test miss by that much."""
    assert_valid_reply(
        "tool-calls", {"results": [{"name": "warm", "toolCallId": "warm", "result": "ok"}]}
    )


@contextlib.asynccontextmanager
async def stack(
    virtual_worker: Callable[[Mapping[str, Any]], Behavior] | None = None,
    *,
    emulator_config: Mapping[str, Any] | None = None,
    no_worker: bool = False,
    **env: str,
) -> AsyncIterator[Stack]:
    """``no_worker=True``: no virtual worker either, so jobs queue like a cold endpoint."""
    warm_validator()
    emulator_app = create_emulator(
        EmulatorConfig(
            endpoint_ids=("local",),
            api_key=API_KEY,
            virtual_worker=None if no_worker else virtual_worker or (lambda _i: Behavior()),
            **dict(emulator_config or {}),
        )
    )
    async with serve(emulator_app) as runpod_base:
        runpod_url = f"{runpod_base}/v2/local"
        settings = Settings.from_env(
            {"RUNPOD_ENDPOINT_URL": runpod_url, "RUNPOD_API_KEY": API_KEY, **env}
        )
        app = create_app(settings, registry=CollectorRegistry())
        async with (
            serve(app) as gateway_url,
            httpx.AsyncClient(
                base_url=gateway_url, timeout=30, event_hooks={"response": [validate_vapi_reply]}
            ) as client,
        ):
            yield Stack(client, gateway_url, runpod_url, emulator_app.state.emulator, app)


@pytest.fixture
def make_stack() -> Callable[..., contextlib.AbstractAsyncContextManager[Stack]]:
    return stack
