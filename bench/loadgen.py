"""The load generator: aiohttp on uvloop, in its own process (pinned by the caller with taskset).

``python -m bench.loadgen`` reads one JSON spec per line on stdin and answers each with JSON lines
on stdout: ``{"type": "progress", "done": n}`` about once a second, ``{"type": "window", "edge":
"start" | "end"}`` around the measured part (after the warm-up), then one
``{"type": "result", ...}``. Keeping one process for a whole run avoids paying interpreter start-up
per measurement; each spec gets a fresh connection pool.

Spec keys: ``kind`` (``toolcalls`` a signed VAPI webhook; ``direct`` a ``/runsync`` body straight
to the emulator; ``chat`` / ``chat_stream`` an OpenAI chat request), ``url``, ``headers``,
``hmac_secret``, ``body`` (direct/chat), ``fallbacks`` (sentences that mark a fallback reply),
``mode`` (``closed``: ``concurrency`` workers back to back; ``open``: a fixed arrival ``rate``),
``requests`` and/or ``duration_s`` (both bound the run; ``max_s`` is a hard stop), ``warmup``
(closed mode: requests sent first and not recorded), ``timeout_s`` per request, ``prefix`` (ids).

Open-loop latencies are measured from each request's *scheduled* send time as well as from its
actual one, so a generator that falls behind cannot hide queueing (coordinated omission).
Closed-loop latency is the client-observed time from ``post`` to the last body byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from app.vapi.auth import AuthConfig, sign
from bench.payloads import stamp, tool_calls_template

Progress = Callable[[int], None]


@dataclass
class Record:
    """Per-request columns (parallel lists keep the JSON small)."""

    t: list[float] = field(default_factory=list)  # send time, s from the start of the run
    lat: list[float] = field(default_factory=list)  # ms, send -> last byte
    sched: list[float] = field(default_factory=list)  # ms, scheduled send -> last byte (open)
    cls: list[str] = field(default_factory=list)  # model | fallback | filler | error kind
    ttft: list[float | None] = field(default_factory=list)  # ms to first content (streams)

    def add(self, t: float, lat: float, cls: str, ttft: float | None, sched: float | None) -> None:
        self.t.append(round(t, 4))
        self.lat.append(round(lat, 3))
        self.cls.append(cls)
        self.ttft.append(None if ttft is None else round(ttft, 3))
        if sched is not None:
            self.sched.append(round(sched, 3))


class Request:
    """Builds and sends one request of the spec's kind; returns (class, ttft_ms)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind = spec["kind"]
        self.url = spec["url"]
        self.headers = {"content-type": "application/json", **spec.get("headers", {})}
        self.fallbacks = set(spec.get("fallbacks", ()))
        self.filler = spec.get("filler", "One moment.").strip()
        # a fresh nonce per spec: a repeated id would be answered from the idempotency store
        self.prefix = f"{spec.get('prefix', 'b')}-{secrets.token_hex(4)}"
        secret = spec.get("hmac_secret")
        self.auth = AuthConfig(hmac_secret=secret) if secret else None
        self.template = tool_calls_template() if self.kind == "toolcalls" else None
        self.fixed = json.dumps(spec.get("body") or {}, separators=(",", ":")).encode()
        self.timeout = aiohttp.ClientTimeout(total=spec.get("timeout_s", 30.0))
        self.n = 0

    def next_body(self) -> tuple[bytes, dict[str, str]]:
        self.n += 1
        if self.template is None:
            return self.fixed, self.headers
        body = stamp(self.template, self.n, self.prefix)
        if self.auth is None:
            return body, self.headers
        return body, {**self.headers, **sign(body, self.auth)}

    async def send(
        self, session: aiohttp.ClientSession, prepared: tuple[bytes, dict[str, str]], started: float
    ) -> tuple[str, float | None]:
        """Send a body from :meth:`next_body` (built before the clock starts)."""
        body, headers = prepared
        try:
            async with session.post(
                self.url, data=body, headers=headers, timeout=self.timeout
            ) as resp:
                if self.kind == "chat_stream":
                    return await self._stream(resp, started)
                raw = await resp.read()
                if resp.status != 200:
                    return f"http_{resp.status}", None
                return self._classify(raw), None
        except TimeoutError:
            return "timeout", None
        except aiohttp.ClientError as exc:
            return f"conn_{type(exc).__name__}", None

    def _classify(self, raw: bytes) -> str:
        try:
            data = json.loads(raw)
        except ValueError:
            return "bad_body"
        if self.kind == "direct":
            return "model" if data.get("status") == "COMPLETED" else f"job_{data.get('status')}"
        if self.kind == "chat":
            text = (data.get("choices") or [{}])[0].get("message", {}).get("content") or ""
            return "fallback" if text in self.fallbacks else ("model" if text else "empty")
        results = data.get("results") or []
        if not results:
            return "empty"
        first = results[0]
        if "error" in first:
            return "tool_error"
        return "fallback" if first.get("result") in self.fallbacks else "model"

    async def _stream(
        self, resp: aiohttp.ClientResponse, started: float
    ) -> tuple[str, float | None]:
        if resp.status != 200:
            await resp.read()
            return f"http_{resp.status}", None
        ttft: float | None = None
        first = ""
        text: list[str] = []
        async for line in resp.content:
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                break
            with contextlib.suppress(ValueError, IndexError, AttributeError, TypeError):
                delta = json.loads(payload)["choices"][0].get("delta") or {}
                content = delta.get("content")
                if content:
                    if ttft is None:
                        ttft = (time.perf_counter() - started) * 1000
                        first = content
                    text.append(content)
        whole = "".join(text).strip()
        if not whole:
            return "empty", ttft
        if first.strip() == self.filler:
            return "filler", ttft
        return ("fallback" if whole in self.fallbacks else "model"), ttft


async def run_closed(spec: dict[str, Any], progress: Progress) -> dict[str, Any]:
    req = Request(spec)
    concurrency = int(spec["concurrency"])
    limit = int(spec.get("requests") or 1 << 40)
    duration = float(spec.get("duration_s") or spec.get("max_s") or 600)
    max_s = float(spec.get("max_s") or duration + 60)
    record = Record()
    connector = aiohttp.TCPConnector(limit=0, force_close=False, enable_cleanup_closed=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = int(spec.get("warmup", 0))
        if warm:
            sem = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with sem:
                    await req.send(session, req.next_body(), time.perf_counter())

            await asyncio.gather(*(one() for _ in range(warm)))
        issued = 0
        _emit({"type": "window", "edge": "start"})
        t0 = time.perf_counter()
        stop_at = t0 + duration

        async def worker() -> None:
            nonlocal issued
            while issued < limit and time.perf_counter() < stop_at:
                issued += 1
                prepared = req.next_body()
                started = time.perf_counter()
                cls, ttft = await req.send(session, prepared, started)
                done = time.perf_counter()
                record.add(started - t0, (done - started) * 1000, cls, ttft, None)

        ticker = asyncio.create_task(_tick(record, progress))
        try:
            async with asyncio.timeout(max_s):
                await asyncio.gather(*(worker() for _ in range(concurrency)))
        except TimeoutError:
            pass
        finally:
            ticker.cancel()
        elapsed = time.perf_counter() - t0
        _emit({"type": "window", "edge": "end"})
    result = _result(spec, record, elapsed)
    result["t0_abs"] = t0
    return result


async def run_open(spec: dict[str, Any], progress: Progress) -> dict[str, Any]:
    req = Request(spec)
    rate = float(spec["rate"])
    duration = float(spec["duration_s"])
    total = int(spec.get("requests") or rate * duration)
    max_inflight = int(spec.get("max_inflight", 10_000))
    timeout_s = float(spec.get("timeout_s", 30.0))
    record = Record()
    dropped = 0
    connector = aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks: set[asyncio.Task[None]] = set()
        _emit({"type": "window", "edge": "start"})
        t0 = time.perf_counter()

        async def one(scheduled: float) -> None:
            prepared = req.next_body()
            started = time.perf_counter()
            cls, ttft = await req.send(session, prepared, started)
            done = time.perf_counter()
            record.add(started - t0, (done - started) * 1000, cls, ttft, (done - scheduled) * 1000)

        ticker = asyncio.create_task(_tick(record, progress))
        for i in range(total):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            if len(tasks) >= max_inflight:
                dropped += 1
                continue
            task = asyncio.create_task(one(scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks), timeout=timeout_s + 5)
        ticker.cancel()
        elapsed = time.perf_counter() - t0
        _emit({"type": "window", "edge": "end"})
    result = _result(spec, record, elapsed)
    result["dropped"] = dropped
    result["offered_rate"] = rate
    return result


async def _tick(record: Record, progress: Progress) -> None:
    while True:
        await asyncio.sleep(1.0)
        progress(len(record.lat))


def _result(spec: dict[str, Any], record: Record, elapsed: float) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for c in record.cls:
        counts[c] = counts.get(c, 0) + 1
    return {
        "type": "result",
        "kind": spec["kind"],
        "mode": spec.get("mode", "closed"),
        "elapsed_s": round(elapsed, 4),
        "count": len(record.lat),
        "classes": counts,
        "t": record.t,
        "lat": record.lat,
        "sched": record.sched,
        "cls": record.cls,
        "ttft": record.ttft,
    }


async def measure(spec: dict[str, Any], progress: Progress) -> dict[str, Any]:
    # The cyclic GC would pause the generator mid-run (its own stall measured as the server's
    # latency); runs are bounded and reference counting frees the rest, so collect in between.
    gc.collect()
    gc.disable()
    try:
        if spec.get("mode", "closed") == "open":
            return await run_open(spec, progress)
        return await run_closed(spec, progress)
    finally:
        gc.enable()


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main() -> int:
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        for line in sys.stdin:
            if not line.strip():
                continue
            spec = json.loads(line)
            try:
                result = runner.run(measure(spec, lambda n: _emit({"type": "progress", "done": n})))
            except Exception as exc:  # report, do not die: the orchestrator decides
                result = {"type": "result", "failed": f"{type(exc).__name__}: {exc}"}
            _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
