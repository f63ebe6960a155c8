"""The upstream client (app/upstream.py), both implementations, against real loopback sockets.

What the RunPod client relies on: whole replies with case-insensitive headers, JSON bodies sent as
``application/json``, per-call timeouts, and failures mapped to httpx's classes so that
``never_sent`` is true exactly when no byte can have reached the server (runpod.md §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from app.runpod_wire import never_sent
from app.upstream import AiohttpUpstream, HttpxUpstream, Upstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(params=["aiohttp", "httpx"])
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Upstream]:
    client: Upstream = (
        AiohttpUpstream(max_connections=4)
        if request.param == "aiohttp"
        else HttpxUpstream(max_connections=4)
    )
    try:
        yield client
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        # Handlers may still sit in their sleep: do not wait for them.


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return head[0], headers, body


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each request with what it received, keeping the connection alive."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            line, headers, body = await read_request(reader)
            payload = json.dumps(
                {"line": line, "type": headers.get("content-type"), "auth": headers.get("x-key")}
            ).encode()
            writer.write(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n"
                + b"Content-Type: application/json"
                + f"\r\nContent-Length: {len(payload) + len(body)}\r\n\r\n".encode()
                + payload
                + body
            )
            await writer.drain()


async def test_json_round_trip_with_headers_and_keep_alive(upstream: Upstream) -> None:
    async with raw_server(echo) as url:
        for _ in range(3):  # the same pooled connection serves several requests
            reply = await upstream.request(
                "POST", url + "/run", json_body={"input": {"text": "héllo"}},
                headers={"X-Key": "k"}, timeout_s=5,
            )  # fmt: skip
            assert reply.status_code == 429
            assert reply.headers.get("retry-after") == "2"
            assert reply.headers.get("Retry-After") == "2"
            echoed, sent = reply.content.split(b"}", 1)
            meta = json.loads(echoed + b"}")
            assert meta == {
                "line": "POST /run HTTP/1.1",
                "type": "application/json",
                "auth": "k",
            }
            assert json.loads(sent) == {"input": {"text": "héllo"}}
        reply = await upstream.request("GET", url + "/status/x", timeout_s=5)
        assert reply.json() == {"line": "GET /status/x HTTP/1.1", "type": None, "auth": None}
        reply = await upstream.request("POST", url + "/run", json_body="x", timeout_s=5)
        assert reply.text.endswith('"x"')
        with pytest.raises(ValueError):
            reply.json()  # two JSON documents back to back are not one


async def test_connection_refused_is_connect_error_never_sent(upstream: Upstream) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(httpx.ConnectError) as caught:
        await upstream.request("POST", f"http://127.0.0.1:{port}/run", json_body={}, timeout_s=2)
    assert never_sent(caught.value)


async def test_slow_reply_is_read_timeout_and_maybe_sent(upstream: Upstream) -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(slow) as url:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException) as caught:
            await upstream.request("POST", url + "/runsync", json_body={}, timeout_s=0.3)
        assert time.monotonic() - started < 1.0
        assert isinstance(caught.value, httpx.ReadTimeout)
        assert not never_sent(caught.value)


async def test_dropped_connection_is_transport_error_maybe_sent(upstream: Upstream) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async with raw_server(drop) as url:
        with pytest.raises(httpx.TransportError) as caught:
            await upstream.request("POST", url + "/runsync", json_body={}, timeout_s=2)
        assert not isinstance(caught.value, httpx.TimeoutException)
        assert not never_sent(caught.value)


async def test_connect_that_never_completes_is_connect_timeout_never_sent(
    upstream: Upstream,
) -> None:
    # A listening socket whose accept queue is full: Linux drops further SYNs, so the next
    # connect hangs until the client's own timeout.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(address)
        fillers.append(filler)
    await asyncio.sleep(0.05)
    try:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException) as caught:
            await upstream.request(
                "POST", f"http://127.0.0.1:{address[1]}/run", json_body={}, timeout_s=0.3
            )
        assert time.monotonic() - started < 1.5
        assert isinstance(caught.value, httpx.ConnectTimeout)
        assert never_sent(caught.value)
    finally:
        for s in (*fillers, listener):
            s.close()
