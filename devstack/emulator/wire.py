"""HTTP-level pieces shared by the emulator's routes: error bodies, auth, faults, disconnects.

* Error bodies are ``{"error": "<message>"}`` JSON for every 4xx/5xx. RunPod's real error
  bodies are undocumented (runpod.md §1.8, UNCONFIRMED); clients must not depend on them.
* Client auth accepts ``Authorization: Bearer <key>`` and the bare key (the docs' curl samples,
  runpod.md §1.1). Workers send their key raw (``RUNPOD_AI_API_KEY``, §2.11).
* :class:`DropConnection` closes the socket without any response, the way a proxy or a crashed
  front end would; :func:`malformed` answers 200 with a body that is not JSON.
* :func:`watch_disconnect` notices a client that hung up during a long hold (runsync, job-take),
  so a job is never handed to a poller that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

DROPPED = 599  # recorded in the stats for a dropped connection (never sent)


def error_json(status: int, message: str, *, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def bearer_matches(header: str | None, key: str) -> bool:
    token = (header or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return bool(token) and hmac.compare_digest(token.encode(), key.encode())


def raw_key_matches(header: str | None, key: str) -> bool:
    return hmac.compare_digest((header or "").strip().encode(), key.encode())


def malformed() -> Response:
    """A 200 whose body is not JSON (an HTML error page from something in between)."""
    return Response(
        b"<html><body><h1>200 OK</h1>upstream answered something else</body></html>",
        media_type="text/html",
    )


class DropConnection(Response):
    """Close the client's socket without sending a status line."""

    def __init__(self) -> None:
        super().__init__(status_code=DROPPED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's ``receive`` is a method of the request cycle, which owns the transport;
        # ASGI itself has no way to abort a connection without answering.
        cycle = getattr(receive, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is not None:
            transport.close()
            if hasattr(cycle, "disconnected"):
                cycle.disconnected = True  # so uvicorn does not answer a 500 on our behalf
            return
        # another server: start an answer and break it off (the client still gets no body)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
        )
        raise ConnectionAbortedError("emulated dropped connection")


@contextlib.asynccontextmanager
async def watch_disconnect(request: Request) -> AsyncIterator[asyncio.Future[None]]:
    """A future that resolves if the client disconnects while the block runs.

    Call only once the request body has been read (or for bodiless requests).
    """
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def listen() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                if not gone.done():
                    gone.set_result(None)
                return

    task = asyncio.create_task(listen())
    try:
        yield gone
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _seconds(value: float) -> str:
    # HTTP wants whole seconds; fractions are kept so tests need not sleep a full second
    return str(int(value)) if float(value).is_integer() else str(value)
