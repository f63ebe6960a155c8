"""The worker side of RunPod: the job API the real SDK's production loop talks to (runpod.md §3.6).

Matches what ``runpod`` 1.12.0 sends (``serverless/modules/rp_job.py``, ``rp_http.py``,
``rp_scale.py``, ``rp_ping.py``), with the URLs built from the ``RUNPOD_WEBHOOK_*`` templates:

* ``GET job-take/{worker}?...&job_in_progress=0|1`` long-polls up to ``take_hold_s`` and answers one
  job ``{"id", "input"}`` as ``application/json``, or 204. ``GET job-take-batch/{worker}?...
  &batch_size=N`` answers a JSON list of up to N jobs, or 204. A job is handed over the moment it
  is takeable, to the oldest open poll.
* ``POST job-done/{worker}/{job}?...&isStream=true|false``: the body is JSON text sent as
  ``application/x-www-form-urlencoded``. ``{"output": ...}`` completes, a truthy ``"error"``
  fails, ``{"status": "IN_PROGRESS", "output": ...}`` is a progress update (§2.7), ``stopPod``
  is recorded. 404 when the job is gone (ttl), 200 otherwise (late results are counted, ignored).
* ``POST job-stream/{worker}/{job}?...`` with ``{"output": chunk}`` appends one stream chunk.
* ``GET job-stop/{worker}?...`` long-polls up to ``stop_hold_s`` and answers
  ``{"jobsToStop": [ids]}`` or 204 (§2.9).
* ``GET ping/{worker}?job_id=..&runpod_version=..[&status=unhealthy&check=..&reason=..]`` → 200.

Workers authenticate with their raw key; any key is accepted unless ``worker_api_key`` is set.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulator.endpoint import Endpoint
from devstack.emulator.jobs import Job
from devstack.emulator.state import Emulator
from devstack.emulator.wire import error_json, raw_key_matches, watch_disconnect

Handler = Callable[[Request, Emulator, Endpoint, str], Awaitable[Response]]
MAX_BATCH = 1000


def worker_op(op: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            emulator: Emulator = request.app.state.emulator
            with emulator.traffic.track(op):
                response = await _guarded(handler, request, emulator)
            emulator.traffic.record(op, response.status_code)
            return response

        return route

    return decorate


async def _guarded(handler: Handler, request: Request, emulator: Emulator) -> Response:
    key = emulator.config.worker_api_key
    if key is not None and not raw_key_matches(request.headers.get("authorization"), key):
        return error_json(401, "Unauthorized: bad worker key")
    endpoint_id = request.path_params["endpoint_id"]
    if endpoint_id not in emulator.endpoints:
        return error_json(404, f"endpoint {endpoint_id} not found")
    endpoint = emulator.endpoint(endpoint_id)
    return await handler(request, emulator, endpoint, request.path_params["worker_id"])


def _job_payload(job: Job) -> dict[str, Any]:
    return {"id": job.id, "input": job.input}


@worker_op("job-take")
async def job_take(
    request: Request, emulator: Emulator, endpoint: Endpoint, worker_id: str
) -> Response:
    async with watch_disconnect(request) as gone:
        jobs = await endpoint.take(
            worker_id, 1, emulator.config.take_hold_s, gone, request.query_params
        )
    if not jobs:
        return Response(status_code=204)
    return JSONResponse(_job_payload(jobs[0]))


@worker_op("job-take-batch")
async def job_take_batch(
    request: Request, emulator: Emulator, endpoint: Endpoint, worker_id: str
) -> Response:
    raw = request.query_params.get("batch_size", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH:
        return error_json(400, f"batch_size must be an integer in 1..{MAX_BATCH}")
    async with watch_disconnect(request) as gone:
        jobs = await endpoint.take(
            worker_id, int(raw), emulator.config.take_hold_s, gone, request.query_params
        )
    if not jobs:
        return Response(status_code=204)
    return JSONResponse([_job_payload(job) for job in jobs])


@worker_op("job-done")
async def job_done(
    request: Request, emulator: Emulator, endpoint: Endpoint, worker_id: str
) -> Response:
    return await _record(request, worker_id, endpoint.done)


@worker_op("job-stream")
async def job_stream(
    request: Request, emulator: Emulator, endpoint: Endpoint, worker_id: str
) -> Response:
    return await _record(request, worker_id, endpoint.stream)


async def _record(
    request: Request, worker_id: str, record: Callable[[str, str, dict[str, Any]], int]
) -> Response:
    """A worker's result or stream piece for one job: 400 without a JSON object, else the
    endpoint's verdict (200, or 404 for a job this worker does not hold)."""
    body = await _json_body(request)
    if body is None:
        return error_json(400, "body must be a JSON object")
    code = record(worker_id, request.path_params["job_id"], body)
    return JSONResponse({}) if code == 200 else error_json(code, "job not found")


@worker_op("job-stop")
async def job_stop(
    request: Request, emulator: Emulator, endpoint: Endpoint, worker_id: str
) -> Response:
    async with watch_disconnect(request) as gone:
        stops = await endpoint.stop_signals(worker_id, emulator.config.stop_hold_s, gone)
    if not stops:
        return Response(status_code=204)
    return JSONResponse({"jobsToStop": stops})


@worker_op("ping")
async def ping(
    request: Request, emulator: Emulator, endpoint: Endpoint, worker_id: str
) -> Response:
    endpoint.ping(worker_id, dict(request.query_params))
    return JSONResponse({})


async def _json_body(request: Request) -> dict[str, Any] | None:
    # The SDK posts JSON text labelled application/x-www-form-urlencoded, so the content type
    # is ignored and the body parsed as JSON whatever it says.
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def worker_routes() -> list[Route]:
    base = "/v2/{endpoint_id}"
    return [
        Route(f"{base}/job-take/{{worker_id}}", job_take, methods=["GET"]),
        Route(f"{base}/job-take-batch/{{worker_id}}", job_take_batch, methods=["GET"]),
        Route(f"{base}/job-done/{{worker_id}}/{{job_id}}", job_done, methods=["POST"]),
        Route(f"{base}/job-stream/{{worker_id}}/{{job_id}}", job_stream, methods=["POST"]),
        Route(f"{base}/job-stop/{{worker_id}}", job_stop, methods=["GET"]),
        Route(f"{base}/ping/{{worker_id}}", ping, methods=["GET"]),
    ]
