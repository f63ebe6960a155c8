"""Inspection and control for tests and benches, under ``/_emulator/`` (no auth, loopback only).

* ``GET /_emulator/jobs[?status=S&endpoint=E]``: every retained job with its input, status,
  timestamps (epoch seconds), delay/execution ms, worker, ``cancelled``, attempt, behaviour and
  status history; ``GET /_emulator/jobs/{id}`` one of them.
* ``GET /_emulator/workers``: each endpoint's workers (open polls, held jobs, pings).
* ``GET /_emulator/stats``: request counts, response codes and in-flight requests per operation,
  and the **peak** number of concurrent in-flight requests per operation.
* ``GET /_emulator/config`` the effective settings; ``POST /_emulator/config`` changes them at
  run time with the JSON form of config.py (e.g. ``{"faults": {...}}``, ``{"faults": null}``).
* ``POST /_emulator/reset``: forget jobs, workers and counts.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.emulator.state import Emulator
from devstack.emulator.wire import error_json


def _emulator(request: Request) -> Emulator:
    return request.app.state.emulator


async def list_jobs(request: Request) -> Response:
    jobs = _emulator(request).inspect_jobs()
    if status := request.query_params.get("status"):
        jobs = [job for job in jobs if job["status"] == status]
    if endpoint := request.query_params.get("endpoint"):
        jobs = [job for job in jobs if job["endpoint_id"] == endpoint]
    return JSONResponse({"jobs": jobs})


async def one_job(request: Request) -> Response:
    job_id = request.path_params["job_id"]
    for job in _emulator(request).inspect_jobs():
        if job["id"] == job_id:
            return JSONResponse(job)
    return error_json(404, "request does not exist")


async def workers(request: Request) -> Response:
    return JSONResponse({"workers": _emulator(request).inspect_workers()})


async def stats(request: Request) -> Response:
    return JSONResponse(_emulator(request).stats())


async def config(request: Request) -> Response:
    emulator = _emulator(request)
    if request.method == "POST":
        try:
            emulator.reconfigure(json.loads(await request.body()))
        except (ValueError, TypeError) as exc:
            return error_json(400, str(exc))
    return JSONResponse(emulator.config.public_view())


async def reset(request: Request) -> Response:
    _emulator(request).reset()
    return JSONResponse({"status": "reset"})


def admin_routes() -> list[Route]:
    return [
        Route("/_emulator/jobs", list_jobs, methods=["GET"]),
        Route("/_emulator/jobs/{job_id}", one_job, methods=["GET"]),
        Route("/_emulator/workers", workers, methods=["GET"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
    ]
