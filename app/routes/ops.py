"""Operations routes: ``GET /healthz`` (process alive, no upstream calls)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def routes() -> list[Route]:
    return [Route("/healthz", healthz, methods=["GET"])]
