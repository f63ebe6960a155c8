"""Devstack fixtures: the RunPod emulator served in-process on a loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devstack.emulator import Emulator, EmulatorConfig, create_emulator
from devstack.serve import serve

API_KEY = "test-key"


@dataclass(frozen=True, slots=True)
class Served:
    root: str  # http://127.0.0.1:<port>
    url: str  # root + /v2/<endpoint>
    emulator: Emulator
    client: httpx.AsyncClient  # base_url=url, with the Bearer key


ServeEmulator = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve_emulator() -> AsyncIterator[ServeEmulator]:
    """``await serve_emulator(**EmulatorConfig fields)``: a running emulator and a client for it.

    Test defaults: key ``test-key``, policy bounds off (sub-10 s ttl), short worker holds.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def start(**config: Any) -> Served:
            config.setdefault("api_key", API_KEY)
            config.setdefault("clamp_policy", False)
            config.setdefault("take_hold_s", 1.0)
            config.setdefault("stop_hold_s", 1.0)
            app = create_emulator(EmulatorConfig(**config))
            root = await stack.enter_async_context(serve(app))
            endpoint = app.state.emulator.config.endpoint_ids[0]
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"{root}/v2/{endpoint}",
                    headers={"Authorization": f"Bearer {API_KEY}"},
                    timeout=30,
                )
            )
            return Served(root, f"{root}/v2/{endpoint}", app.state.emulator, client)

        yield start
