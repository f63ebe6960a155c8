"""``python -m gpu_worker``: fail fast at start, then hand over to the RunPod SDK loop.

Order (runpod.md §2.10, §2.11; STYLE.md §12):

1. default ``RUNPOD_LOG_LEVEL`` to INFO *before* the SDK is imported (its DEBUG default logs
   every job input and output, i.e. prompts);
2. read :class:`~gpu_worker.settings.Settings`: every bad key in one message, exit 2;
3. wait for the engine (bounded by ``ENGINE_START_TIMEOUT_S``, which also bounds 4 and 5), pull the
   model if the engine lacks it, warm it with one tiny request; if any of that fails, exit 1 with
   the reason, before a single job is taken;
4. ``runpod.serverless.start`` with the async-generator handler, ``MAX_CONCURRENCY`` and
   ``return_aggregate_stream``. Without ``RUNPOD_WEBHOOK_GET_JOB`` (or with ``--test_input``) the
   SDK runs one local job; it does not drain generators there, so that mode gets
   :func:`gpu_worker.handler.collect`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import MutableMapping, Sequence

import structlog

from gpu_worker.engines import Engine, EngineError, EngineRequest, create_engine
from gpu_worker.logs import configure_logging
from gpu_worker.settings import ConfigError, Settings

log = structlog.get_logger("gpu_worker")
EXIT_CONFIG = 2
EXIT_ENGINE = 1


class StartupError(RuntimeError):
    """The engine never became usable within the start-up bound."""


async def prepare_engine(settings: Settings, engine: Engine | None = None) -> str:
    """Wait for the engine, make the model servable, warm it; returns the served model name."""
    own = engine is None
    engine = engine or create_engine(settings)
    state = {"step": "waiting for the engine", "problem": "no answer yet"}
    try:
        async with asyncio.timeout(settings.engine_start_timeout_s):
            await _wait_ready(engine, state)
            state["step"] = f"making model {settings.model or '(served)'!r} available"
            model = await engine.ensure_model(settings.model)
            state["step"] = f"warming {model!r}"
            started = time.monotonic()
            warm = EngineRequest(
                messages=({"role": "user", "content": "ping"},), model=model, max_tokens=1
            )
            async for _ in engine.chat(warm):
                pass
            log.info("engine_warm", model=model, warm_ms=round((time.monotonic() - started) * 1000))
            return model
    except TimeoutError:
        raise StartupError(
            f"engine at {settings.engine_url} not ready after {settings.engine_start_timeout_s:g} s"
            f" while {state['step']} (last problem: {state['problem']})"
        ) from None
    except EngineError as exc:
        problem = f"engine at {settings.engine_url} failed while {state['step']}: {exc}"
        raise StartupError(problem) from None
    finally:
        if own:
            await engine.aclose()


async def _wait_ready(engine: Engine, state: dict[str, str]) -> None:
    delay = 0.1
    while True:
        try:
            await engine.ready()
            return
        except EngineError as exc:
            state["problem"] = str(exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def main(argv: Sequence[str] | None = None, environ: MutableMapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    argv = sys.argv[1:] if argv is None else argv
    environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        print(f"gpu_worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_format, settings.log_level)
    log.info(
        "worker_starting",
        engine=settings.engine_kind,
        engine_url=settings.engine_url,
        model=settings.model or None,
        max_concurrency=settings.max_concurrency,
    )
    try:
        model = asyncio.run(prepare_engine(settings))
    except StartupError as exc:
        log.error("worker_start_failed", problem=str(exc))
        print(f"gpu_worker: {exc}", file=sys.stderr)
        return EXIT_ENGINE

    import runpod  # after RUNPOD_LOG_LEVEL is set: the SDK reads it at import

    from gpu_worker.handler import Worker, collect, handler, install
    from gpu_worker.sdk_fixes import fix_occupancy_double_count

    if fix_occupancy_double_count():
        log.info("sdk_fix_applied", fix="job_scaler_occupancy_double_count")

    install(Worker(settings, create_engine(settings), model=model))
    local = not environ.get("RUNPOD_WEBHOOK_GET_JOB") or any("--test_input" in a for a in argv)
    concurrency = settings.max_concurrency
    log.info("worker_ready", model=model, max_concurrency=concurrency, local_test=local)
    runpod.serverless.start(
        {
            "handler": collect if local else handler,
            "concurrency_modifier": lambda _current: concurrency,
            "return_aggregate_stream": True,
        }
    )
    return 0
