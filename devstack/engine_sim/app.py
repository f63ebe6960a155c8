"""The simulator app (routes, control endpoints) and its command line.

Control, for tests and demos: ``GET|POST /_sim/config`` (read, or change fields such as ``fault``,
``ttft_ms``; unknown keys are a 400), ``POST /_sim/reset`` (the start config, one model, zero
counts), ``GET /_sim/stats`` (counts by route, streams completed / cut / abandoned).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.engine_sim import ollama, openai
from devstack.engine_sim.core import (
    FAULTS,
    LABEL,
    EngineSimConfig,
    SimState,
    SimulatedCut,
    read_body,
    tagged,
)

log = logging.getLogger("devstack.engine_sim")


async def sim_config(request: Request) -> Response:
    state: SimState = request.app.state.sim
    if request.method == "POST":
        body = await read_body(request, state)
        unknown = sorted(set(body) - {f.name for f in dataclasses.fields(EngineSimConfig)})
        if unknown:
            return JSONResponse({"error": f"unknown config keys: {', '.join(unknown)}"}, 400)
        if "fault" in body and body["fault"] not in FAULTS:
            return JSONResponse({"error": f"fault must be one of {', '.join(FAULTS)}"}, 400)
        state.config = dataclasses.replace(state.config, **body)
        state.models.add(tagged(state.config.model))
    return JSONResponse(dataclasses.asdict(state.config))


async def sim_reset(request: Request) -> Response:
    state: SimState = request.app.state.sim
    state.reset(request.app.state.initial_config)
    return JSONResponse(dataclasses.asdict(state.config))


async def sim_stats(request: Request) -> Response:
    state: SimState = request.app.state.sim
    stats = {"counts": dict(state.counts), "active": state.active, "models": sorted(state.models)}
    return JSONResponse(stats)


class _HideCuts(logging.Filter):
    """uvicorn logs the exception that drops a ``cut`` connection; it is scripted, not a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedCut))


def create_engine_sim(config: EngineSimConfig | None = None) -> Starlette:
    """The simulator app; ``app.state.sim`` is its live :class:`SimState`."""
    config = config or EngineSimConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.warning("%s: answering as model %r (fault=%s)", LABEL, config.model, config.fault)
        yield

    routes = [
        Route("/", ollama.root, methods=["GET"]),
        Route("/api/version", ollama.version, methods=["GET"]),
        Route("/api/tags", ollama.tags, methods=["GET"]),
        Route("/api/show", ollama.show, methods=["POST"]),
        Route("/api/pull", ollama.pull, methods=["POST"]),
        Route("/api/chat", ollama.chat, methods=["POST"]),
        Route("/api/generate", ollama.generate, methods=["POST"]),
        Route("/v1/models", openai.models, methods=["GET"]),
        Route("/v1/chat/completions", openai.chat_completions, methods=["POST"]),
        Route("/health", openai.health, methods=["GET"]),
        Route("/_sim/config", sim_config, methods=["GET", "POST"]),
        Route("/_sim/reset", sim_reset, methods=["POST"]),
        Route("/_sim/stats", sim_stats, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.initial_config = config
    app.state.sim = SimState(config=config, models={tagged(config.model)})
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideCuts) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_HideCuts())
    return app


def main(argv: list[str] | None = None) -> None:
    """``python -m devstack.engine_sim``: serve the simulator with uvicorn."""
    parser = argparse.ArgumentParser(prog="python -m devstack.engine_sim", description=LABEL)
    defaults = EngineSimConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11435)
    parser.add_argument("--model", default=defaults.model)
    parser.add_argument("--ttft-ms", type=float, default=defaults.ttft_ms)
    parser.add_argument("--tokens-per-s", type=float, default=defaults.tokens_per_s)
    parser.add_argument("--reply-tokens", type=int, default=defaults.reply_tokens)
    parser.add_argument("--fault", choices=FAULTS, default=defaults.fault)
    parser.add_argument("--fault-after", type=int, default=defaults.fault_after)
    parser.add_argument("--slow-ttft-ms", type=float, default=defaults.slow_ttft_ms)
    args = parser.parse_args(argv)
    config = EngineSimConfig(
        model=args.model,
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        reply_tokens=args.reply_tokens,
        fault=args.fault,
        fault_after=args.fault_after,
        slow_ttft_ms=args.slow_ttft_ms,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log.warning("%s: listening on http://%s:%d", LABEL, args.host, args.port)
    import uvicorn

    uvicorn.run(create_engine_sim(config), host=args.host, port=args.port, access_log=False)
