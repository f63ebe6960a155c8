"""The client side of a queue-based endpoint, ``/v2/{endpoint_id}/...`` (runpod.md §1.1–§1.8).

Every route: auth (401), endpoint lookup (404), optional rate/concurrency limit (429), then:

* ``POST /run`` → ``{"id", "status": "IN_QUEUE"}``.
* ``POST /runsync?wait=ms`` holds up to ``wait`` (default 90000, clamped to 1000..300000; a
  non-integer is a 400) and returns the job object if it ended, else ``{"id", "status"}``.
  A FAILED runsync answers ``runsync_failed_status`` (200 by default; UNCONFIRMED, §1.6).
* ``GET /status/{id}[?ttl=ms]`` → job object; ``GET /status-sync/{id}?wait=ms`` (js-sdk only,
  §1.3) holds like runsync with ``wait`` clamped to 1000..90000.
* ``GET /stream/{id}`` → ``{"id", "status", "stream": [{"output": chunk}, ...]}`` with only the
  chunks no earlier call returned, held up to ``stream_hold_ms`` while there is nothing new.
* ``POST /cancel/{id}``, ``POST /retry/{id}`` (400 unless FAILED/TIMED_OUT), ``POST /purge-queue``
  → ``{"removed": n, "status": "completed"}``, ``GET /health``.

Bad bodies (not JSON, not an object, ``input`` missing or not an object, bad ``policy``) are 400;
unknown job ids are 404. Submit faults come from the job's :class:`Behavior` (behavior.py).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulator.endpoint import Endpoint
from devstack.emulator.jobs import SubmitKind
from devstack.emulator.state import Emulator
from devstack.emulator.wire import (
    DropConnection,
    bearer_matches,
    error_json,
    malformed,
    watch_disconnect,
)

Handler = Callable[[Request, Emulator, Endpoint], Awaitable[Response]]
RUNSYNC_WAIT_MS = (90_000, 1_000, 300_000)  # default, min, max (runpod.md §1.2)
STATUS_SYNC_WAIT_MS = (90_000, 1_000, 90_000)  # js-sdk's clamp
NOT_FOUND = "request does not exist"


def client_op(op: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            emulator: Emulator = request.app.state.emulator
            with emulator.traffic.track(op):
                response = await _guarded(op, handler, request, emulator)
            emulator.traffic.record(op, response.status_code)
            return response

        return route

    return decorate


async def _guarded(op: str, handler: Handler, request: Request, emulator: Emulator) -> Response:
    if not bearer_matches(request.headers.get("authorization"), emulator.config.api_key):
        return error_json(401, "Unauthorized: missing or invalid API key")
    endpoint_id = request.path_params["endpoint_id"]
    if endpoint_id not in emulator.endpoints:
        return error_json(404, f"endpoint {endpoint_id} not found")
    limit = emulator.config.limits.get(op)
    if not emulator.limiter.admit(endpoint_id, op, limit):
        retry_after = limit.retry_after_s if limit is not None else None
        return error_json(429, f"rate limit exceeded for {op}", retry_after=retry_after)
    try:
        return await handler(request, emulator, emulator.endpoint(endpoint_id))
    finally:
        if limit is not None:
            emulator.limiter.release(endpoint_id, op)


# ---------------------------------------------------------------------- submit


@client_op("run")
async def run(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    return await _submit(request, emulator, endpoint, "run")


@client_op("runsync")
async def runsync(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    return await _submit(request, emulator, endpoint, "runsync")


async def _submit(
    request: Request, emulator: Emulator, endpoint: Endpoint, kind: SubmitKind
) -> Response:
    cfg = emulator.config
    wait_ms = None
    if kind == "runsync":
        wait_ms = _wait_ms(request, RUNSYNC_WAIT_MS)
        if wait_ms is None:
            return error_json(400, "wait must be an integer number of milliseconds")
    raw = await request.body()
    if len(raw) > (cfg.max_runsync_bytes if kind == "runsync" else cfg.max_run_bytes):
        return error_json(400, "request body too large")
    body, problem = _parse_submit(raw)
    if problem:
        return error_json(400, problem)
    job_input = body["input"]
    try:
        behavior, source = emulator.resolve_behavior(
            job_input, request.headers.get("x-emulator-behavior")
        )
    except ValueError as exc:
        return error_json(400, f"X-Emulator-Behavior: {exc}")
    if behavior.submit_status is not None and emulator.submit_fault_applies(behavior, job_input):
        return error_json(
            behavior.submit_status,
            f"emulated {behavior.submit_status} on submit",
            retry_after=behavior.retry_after,
        )
    job = endpoint.submit(
        kind=kind,
        job_input=job_input,
        policy=body.get("policy") or {},
        webhook=body.get("webhook"),
        behavior=behavior,
        source=source,
    )
    if behavior.drop_connection:
        return DropConnection()
    if behavior.malformed:
        return malformed()
    if wait_ms is None:
        return JSONResponse({"id": job.id, "status": job.status})
    async with watch_disconnect(request) as gone:
        await endpoint.wait_terminal(job, wait_ms / 1000, gone)
    return _held_reply(job.id, endpoint, cfg.runsync_failed_status)


def _parse_submit(raw: bytes) -> tuple[dict[str, Any], str | None]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {}, "request body is not valid JSON"
    if not isinstance(body, dict):
        return {}, "request body must be a JSON object"
    if "input" not in body:
        return {}, "missing required field: input"
    if not isinstance(body["input"], dict):
        return {}, "input must be a JSON object"
    policy = body.get("policy")
    if policy is not None:
        if not isinstance(policy, dict):
            return {}, "policy must be a JSON object"
        for key in ("ttl", "executionTimeout"):
            value = policy.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                return {}, f"policy.{key} must be a positive number of milliseconds"
    webhook = body.get("webhook")
    if webhook is not None and not isinstance(webhook, str):
        return {}, "webhook must be a string"
    return body, None


def _held_reply(job_id: str, endpoint: Endpoint, failed_status: int) -> Response:
    job = endpoint.jobs.get(job_id)
    if job is None:
        return error_json(404, NOT_FOUND)  # its ttl ran out while we held
    if not job.terminal:
        return JSONResponse({"id": job.id, "status": job.status})
    code = failed_status if job.status == "FAILED" else 200
    return JSONResponse(job.view(time.monotonic()), status_code=code)


def _wait_ms(request: Request, bounds: tuple[int, int, int]) -> int | None:
    default, low, high = bounds
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return default
    try:
        return min(max(int(raw), low), high)
    except ValueError:
        return None


# ---------------------------------------------------------------------- job reads


@client_op("status")
async def status(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    job = endpoint.jobs.get(request.path_params["job_id"])
    if job is None:
        return error_json(404, NOT_FOUND)
    if job.status_errors_left > 0:
        job.status_errors_left -= 1
        return error_json(job.behavior.status_error_code, "emulated error on status")
    ttl = request.query_params.get("ttl")
    if ttl is not None:
        if not ttl.isdigit() or int(ttl) <= 0:
            return error_json(400, "ttl must be a positive integer number of milliseconds")
        endpoint.set_ttl(job, int(ttl))
    return JSONResponse(job.view(time.monotonic()))


@client_op("status-sync")
async def status_sync(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    job = endpoint.jobs.get(request.path_params["job_id"])
    if job is None:
        return error_json(404, NOT_FOUND)
    wait_ms = _wait_ms(request, STATUS_SYNC_WAIT_MS)
    if wait_ms is None:
        return error_json(400, "wait must be an integer number of milliseconds")
    async with watch_disconnect(request) as gone:
        await endpoint.wait_terminal(job, wait_ms / 1000, gone)
    job = endpoint.jobs.get(job.id)
    if job is None:
        return error_json(404, NOT_FOUND)
    return JSONResponse(job.view(time.monotonic()))


@client_op("stream")
async def stream(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    job = endpoint.jobs.get(request.path_params["job_id"])
    if job is None:
        return error_json(404, NOT_FOUND)
    hold_s = emulator.config.stream_hold_ms / 1000
    if hold_s > 0 and job.stream_cursor == len(job.stream):
        async with watch_disconnect(request) as gone:
            await endpoint.wait_change(job, hold_s, gone)
    out: dict[str, Any] = {"id": job.id, "status": job.status, **job.timings(time.monotonic())}
    out["stream"] = job.take_stream()
    if job.error is not None:
        out["error"] = job.error
    return JSONResponse(out)


# ---------------------------------------------------------------------- job control


@client_op("cancel")
async def cancel(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    job = endpoint.jobs.get(request.path_params["job_id"])
    if job is None:
        return error_json(404, NOT_FOUND)
    endpoint.cancel(job)
    return JSONResponse({"id": job.id, "status": job.status})


@client_op("retry")
async def retry(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    job = endpoint.jobs.get(request.path_params["job_id"])
    if job is None:
        return error_json(404, NOT_FOUND)
    if job.status not in ("FAILED", "TIMED_OUT"):
        return error_json(
            400, f"only FAILED or TIMED_OUT jobs can be retried (job is {job.status})"
        )
    if job.behavior_source == "header":
        behavior, source = job.behavior, "header"  # keep what the test scripted
    else:
        behavior, source = emulator.resolve_behavior(job.input, None)
    endpoint.retry(job, behavior, source)
    return JSONResponse({"id": job.id, "status": job.status})


@client_op("purge-queue")
async def purge_queue(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    return JSONResponse({"removed": endpoint.purge(), "status": "completed"})


@client_op("health")
async def health(request: Request, emulator: Emulator, endpoint: Endpoint) -> Response:
    return JSONResponse(endpoint.health())


def client_routes() -> list[Route]:
    base = "/v2/{endpoint_id}"
    return [
        Route(f"{base}/run", run, methods=["POST"]),
        Route(f"{base}/runsync", runsync, methods=["POST"]),
        Route(f"{base}/status/{{job_id}}", status, methods=["GET"]),
        Route(f"{base}/status-sync/{{job_id}}", status_sync, methods=["GET"]),
        Route(f"{base}/stream/{{job_id}}", stream, methods=["GET"]),
        Route(f"{base}/cancel/{{job_id}}", cancel, methods=["POST"]),
        Route(f"{base}/retry/{{job_id}}", retry, methods=["POST"]),
        Route(f"{base}/purge-queue", purge_queue, methods=["POST"]),
        Route(f"{base}/health", health, methods=["GET"]),
    ]
