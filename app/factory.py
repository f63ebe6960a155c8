"""The app as served: :func:`build_app` and the uvicorn worker factory.

``build_app(settings)`` is ``create_app(settings)`` with the operations wiring every served
gateway needs: the canonical request-line middleware (:class:`app.requestlog.RequestLog`, added
only if ``create_app`` did not add it already). ``create_app_from_env`` is the factory uvicorn
imports in each worker process when ``WEB_CONCURRENCY`` > 1
(``uvicorn.run("app.factory:create_app_from_env", factory=True, workers=N)``): a worker is a
fresh interpreter, so it reads the settings and configures logging itself.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from starlette.applications import Starlette

from app.logs import configure_logging
from app.main import create_app
from app.requestlog import RequestLog
from app.settings import Secret, Settings


def build_app(settings: Settings, **overrides: Any) -> Starlette:
    """``create_app`` plus the request-log middleware (idempotent)."""
    app = create_app(settings, **overrides)
    if not any(m.cls is RequestLog for m in app.user_middleware):
        app.add_middleware(RequestLog, metrics=app.state.metrics)
    return app


def create_app_from_env() -> Starlette:
    """uvicorn's factory for worker processes: settings from the environment, logging, app."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_format, settings.log_level, secrets=secret_values(settings))
    return build_app(settings)


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret's value, for the log redactor."""
    values = (getattr(settings, f.name) for f in dataclasses.fields(settings))
    return [v.reveal() for v in values if isinstance(v, Secret) and v]
