"""``create_emulator(config)``: the RunPod control-plane emulator as one Starlette app.

It serves both sides of RunPod for each configured endpoint id: the client API (client_api.py,
runpod.md §1) and the worker job API the real SDK polls (worker_api.py, §3.6), plus
``/_emulator/*`` inspection (admin_api.py). The live :class:`~devstack.emulator.state.Emulator`
is ``app.state.emulator``. Unmatched paths and methods answer JSON 404/405; an unexpected error
answers JSON 500 and is logged.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from devstack.emulator.admin_api import admin_routes
from devstack.emulator.client_api import client_routes
from devstack.emulator.config import EmulatorConfig
from devstack.emulator.state import Emulator
from devstack.emulator.wire import error_json
from devstack.emulator.worker_api import worker_routes

log = structlog.get_logger("devstack.emulator")


def create_emulator(config: EmulatorConfig | None = None) -> Starlette:
    emulator = Emulator(config or EmulatorConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            emulator.close()  # cancels virtual jobs and timers

    app = Starlette(
        routes=[*client_routes(), *worker_routes(), *admin_routes()],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.emulator = emulator
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_json(exc.status_code, str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("emulator_error", path=request.url.path, exc_info=exc)
    return error_json(500, "internal emulator error")
