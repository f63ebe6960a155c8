"""The gateway's upstream HTTP client: one small interface, aiohttp underneath by default.

Every call the gateway makes out (RunPod's endpoint API, VAPI's Live Call Control) goes through
:class:`Upstream` — ``request(method, url, json_body=, headers=, timeout_s=) -> Reply`` — with a
per-call timeout taken from the turn's deadline. Two implementations, chosen by
``RUNPOD_HTTP_TRANSPORT``:

* ``aiohttp`` (default): :class:`AiohttpUpstream`, aiohttp's client used directly;
* ``httpx``: :class:`HttpxUpstream`, httpx with its own pool (pure Python, no C extensions).

Why not httpx's API over an aiohttp transport (httpx-aiohttp, our previous default): measured in
``make bench`` (docs/benchmarks/results.md, throughput), building httpx's ``Request``/``Response``
and ``Headers`` on top of aiohttp cost ~20 % of the gateway's CPU per turn for nothing the turn
path uses; httpx's own pool scans every connection for every queued request and profiled at 75 %
of CPU in a 1,000-turn burst (docs/benchmarks/transport-profile.md). httpx stays the client of
the tests and of the tools around the gateway.

Failures are raised as httpx's exception classes whichever library carried the bytes, because the
RunPod client's retry rule depends on them (runpod.md §5: resubmit only when nothing was sent):
``httpx.ConnectError``/``httpx.ConnectTimeout`` — the connection was never made, no byte left us;
``httpx.ReadTimeout`` — a timeout after the request may have been sent; any other
``httpx.TransportError`` — the connection broke (possibly after sending).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx

JSON_HEADERS = {"Content-Type": "application/json"}
# aiohttp's connect timer fires this much before the call's own, so a connect that never
# completes is told apart from a reply that never came (both timers due at once: a race).
CONNECT_LEAD_S = 0.005


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole HTTP response: status, case-insensitive headers, body bytes."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Upstream(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        *,
        timeout_s: float,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request and read the whole response within ``timeout_s`` seconds."""
        ...

    async def aclose(self) -> None: ...


def json_payload(
    json_body: Any, headers: Mapping[str, str] | None
) -> tuple[bytes | None, Mapping[str, str] | None]:
    """The body bytes and headers to send: compact UTF-8 JSON with its Content-Type, or no body."""
    if json_body is None:
        return None, headers
    data = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
    return data, {**JSON_HEADERS, **headers} if headers else JSON_HEADERS


class AiohttpUpstream:
    """aiohttp's pooled client behind :class:`Upstream` (create it inside the running loop)."""

    def __init__(self, *, max_connections: int, keepalive_s: float = 30.0) -> None:
        connector = aiohttp.TCPConnector(
            limit=max_connections, limit_per_host=0, keepalive_timeout=keepalive_s
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # Proxy variables are read once here, not on every request (aiohttp's trust_env
            # looks them up per request).
            trust_env=bool(urllib.request.getproxies()),
            timeout=aiohttp.ClientTimeout(total=30.0),
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        timeout_s: float,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        data, headers = json_payload(json_body, headers)
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(
                    total=timeout_s,
                    sock_connect=max(0.001, timeout_s - CONNECT_LEAD_S),
                    # aiohttp rounds timeouts over 5 s up to a whole second: not ours.
                    ceil_threshold=float("inf"),
                ),
            ) as response:
                content = await response.read()
                return Reply(response.status, response.headers, content)
        except aiohttp.ClientConnectorError as exc:  # refused, DNS, TLS handshake
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timeout") from exc
        except TimeoutError as exc:  # the total timeout, or a socket read timeout
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.UnsupportedProtocol(f"invalid URL: {exc}") from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(f"server disconnected: {exc}") from exc
        except aiohttp.ClientError as exc:  # reset, payload, protocol errors
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self._session.close()


class HttpxUpstream:
    """httpx's own client behind :class:`Upstream` (``RUNPOD_HTTP_TRANSPORT=httpx``)."""

    def __init__(self, *, max_connections: int, keepalive_s: float = 30.0) -> None:
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_s,
        )
        self._client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0))

    async def request(
        self,
        method: str,
        url: str,
        *,
        timeout_s: float,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        content, headers = json_payload(json_body, headers)
        response = await self._client.request(
            method, url, content=content, headers=headers, timeout=timeout_s
        )
        return Reply(response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


def build_upstream(transport: str, *, max_connections: int) -> Upstream:
    """The configured client; call inside the running event loop, ``aclose()`` when done."""
    if transport == "aiohttp":
        return AiohttpUpstream(max_connections=max_connections)
    if transport == "httpx":
        return HttpxUpstream(max_connections=max_connections)
    raise ValueError(f"unknown upstream transport {transport!r}")
