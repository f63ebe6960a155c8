"""``python -m app``: read settings from the environment and serve the gateway with uvicorn.

* Invalid settings: one ``config_invalid`` log line naming every bad key, exit code 2.
* ``WEB_CONCURRENCY`` = 1: one process serving :func:`app.factory.build_app`.
  ``WEB_CONCURRENCY`` > 1: uvicorn's supervisor with that many worker processes, each built by
  ``app.factory:create_app_from_env``; Prometheus multiprocess mode is switched on for them
  (``PROMETHEUS_MULTIPROC_DIR``: the operator's directory, emptied first, or a temporary one
  removed at exit), so ``/metrics`` reports every worker.
* SIGTERM (or SIGINT): uvicorn stops accepting connections, lets requests in flight finish for up
  to ``SHUTDOWN_GRACE_S`` seconds, runs the lifespan shutdown (background drain), and the process
  exits 0 (130 after SIGINT) — not by re-raising the signal, so orchestrators see a clean stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from types import FrameType

import structlog
import uvicorn

from app.factory import build_app, secret_values
from app.logs import configure_logging
from app.metrics import reset_multiprocess_dir
from app.settings import ConfigError, Settings

log = structlog.get_logger("app")

FACTORY = "app.factory:create_app_from_env"
EXIT_CODES = {signal.SIGTERM: 0, signal.SIGINT: 130}


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        configure_logging()
        log.error("config_invalid", problems=exc.problems)
        return 2
    configure_logging(settings.log_format, settings.log_level, secrets=secret_values(settings))
    # uvicorn re-raises the stop signal once it has shut down gracefully; these handlers turn
    # it into a clean exit instead of a death by signal.
    for sig in EXIT_CODES:
        signal.signal(sig, _exit_cleanly)
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,  # app.requestlog writes one line per request instead
        "proxy_headers": True,
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
    }
    if settings.web_concurrency == 1:
        uvicorn.run(build_app(settings), **options)
        return 0
    created = _prepare_multiprocess_metrics()
    try:
        uvicorn.run(FACTORY, factory=True, workers=settings.web_concurrency, **options)
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)
    return 0


def _prepare_multiprocess_metrics() -> str | None:
    """Point the workers at an empty multiprocess directory; return it if we made it."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    created = None
    if not path:
        path = created = tempfile.mkdtemp(prefix="pete-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # inherited by the spawned workers
    reset_multiprocess_dir(path)
    log.info("metrics_multiprocess", directory=path)
    return created


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_CODES.get(signal.Signals(signum), 0))


if __name__ == "__main__":
    sys.exit(main())
