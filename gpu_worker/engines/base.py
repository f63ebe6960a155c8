"""What every engine speaks: the :class:`Engine` Protocol, its chunk type and errors, and the
shared HTTP plumbing (async httpx, a timeout on every request, errors turned into one
:class:`EngineError` whose message is safe to return to a caller: never a prompt).

An engine streams a reply as :class:`Chunk` values: text deltas, then exactly one ``done`` chunk
carrying the model, usage, finish reason and tool calls (OpenAI shape, string ``arguments``).
Closing the iterator (``aclose``, or cancelling the task reading it) closes the HTTP stream, so a
cancelled job stops the engine's work (runpod.md §2.9).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

QUICK_TIMEOUT_S = 2.0  # health probes: an engine that takes longer is not ready yet
ErrorKind = Literal["unreachable", "timeout", "http", "malformed", "cut", "model", "failed"]


class EngineError(Exception):
    """The engine could not give an answer; ``str()`` is a one-line reason for the caller."""

    def __init__(self, message: str, kind: ErrorKind = "failed") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRequest:
    messages: tuple[dict[str, Any], ...]
    model: str
    max_tokens: int
    temperature: float | None = None
    tools: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    text: str = ""
    done: bool = False
    model: str | None = None
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()


class Engine(Protocol):
    """An LLM server the worker talks to over loopback HTTP."""

    kind: str
    base_url: str

    async def ready(self) -> None:
        """Return once the engine answers; raise :class:`EngineError` if it does not."""

    async def list_models(self) -> list[str]: ...

    async def ensure_model(self, model: str) -> str:
        """Make ``model`` servable (Ollama pulls it) and return its name ("" = the served one)."""

    def chat(self, request: EngineRequest) -> AsyncIterator[Chunk]:
        """Stream one reply: text chunks, then one ``done`` chunk."""

    async def openai_json(self, method: str, route: str, body: dict[str, Any] | None) -> Any:
        """One non-streamed call to the engine's OpenAI-compatible API (``route`` under /v1)."""

    def openai_stream(self, route: str, body: dict[str, Any]) -> AsyncIterator[str]:
        """The raw SSE text of a streamed OpenAI-compatible call, in arbitrary chunks."""

    async def aclose(self) -> None: ...


class HTTPEngine:
    """Shared plumbing: one pooled client, timeouts, error translation, the OpenAI passthrough."""

    kind = "http"

    def __init__(
        self,
        *,
        base_url: str,
        openai_base: str,
        read_timeout_s: float,
        api_key: str = "",
        max_connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.openai_base = openai_base.rstrip("/")
        self.read_timeout_s = read_timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=5.0, write=10.0, pool=10.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=16),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def openai_json(self, method: str, route: str, body: dict[str, Any] | None) -> Any:
        return await self._json(method, self.openai_base + route, body, what=route)

    async def openai_stream(self, route: str, body: dict[str, Any]) -> AsyncIterator[str]:
        try:
            async with self.client.stream("POST", self.openai_base + route, json=body) as resp:
                await self._check(resp, route)
                async for text in resp.aiter_text():
                    yield text
        except httpx.HTTPError as exc:
            raise self._translate(exc, route) from None

    async def _json(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        what: str,
        quick: bool = False,
    ) -> Any:
        extra = {"timeout": QUICK_TIMEOUT_S} if quick else {}
        try:
            response = await self.client.request(method, url, json=body, **extra)
        except httpx.HTTPError as exc:
            raise self._translate(exc, what) from None
        await self._check(response, what)
        try:
            return response.json()
        except ValueError:
            raise EngineError(f"engine sent malformed JSON ({what})", "malformed") from None

    async def _lines(self, url: str, body: dict[str, Any], *, what: str) -> AsyncIterator[str]:
        """Non-empty lines of a streamed POST (NDJSON or SSE)."""
        try:
            async with self.client.stream("POST", url, json=body) as response:
                await self._check(response, what)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield line
        except httpx.HTTPError as exc:
            raise self._translate(exc, what) from None

    @staticmethod
    async def _check(response: httpx.Response, what: str) -> None:
        if response.status_code < 400:
            return
        await response.aread()
        raise EngineError(
            f"engine answered HTTP {response.status_code} ({what}): {_detail(response)}", "http"
        )

    def _translate(self, exc: httpx.HTTPError, what: str) -> EngineError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return EngineError(f"engine unreachable at {self.base_url} ({what})", "unreachable")
        if isinstance(exc, httpx.ReadTimeout):
            return EngineError(
                f"engine sent nothing for {self.read_timeout_s:g} s ({what})", "timeout"
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return EngineError(f"engine connection broke mid-response ({what})", "cut")
        return EngineError(f"engine request failed: {type(exc).__name__} ({what})")


def parse_json_line(line: str, what: str) -> dict[str, Any]:
    """One NDJSON line / SSE ``data:`` payload as an object, or :class:`EngineError`."""
    try:
        value = json.loads(line)
    except ValueError:
        raise EngineError(f"engine sent malformed JSON ({what})", "malformed") from None
    if not isinstance(value, dict):
        raise EngineError(f"engine sent a non-object JSON value ({what})", "malformed")
    error = value.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else error
        raise EngineError(f"engine error ({what}): {str(message)[:200]}", "http")
    return value


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    message = error or (body.get("message") if isinstance(body, dict) else None)
    return str(message or body)[:200]
