"""``python -m app``: read settings from the environment and serve the gateway with uvicorn."""

from __future__ import annotations

import os
import sys

import uvicorn

from app.logs import configure_logging
from app.main import create_app
from app.settings import ConfigError, Settings


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"peteollama: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=max(10, settings.tool_budget_ms // 1000 + 2),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
