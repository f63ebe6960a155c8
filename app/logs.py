"""structlog, configured once: JSON lines off a TTY, a console renderer on one.

``configure_logging(fmt, level, secrets=...)`` is called once per process (``python -m app``, and
each uvicorn worker through :mod:`app.factory`). Afterwards:

* every record — ours, uvicorn's, httpx's, ``warnings.warn`` and an uncaught exception — goes
  through the same processors to one handler, so off a TTY every line on the stream is one JSON
  object with ``timestamp``, ``level``, ``logger``, ``event`` and ``pid``; uvicorn's access log
  is off (:mod:`app.requestlog` writes one line per request instead);
* context bound with ``structlog.contextvars`` (``request_id``, ``call_id``, ``turn_id``,
  ``job_id``; see :mod:`app.requestlog`) is merged into every line;
* any configured secret value (8 characters or more) that still reaches a line is replaced by
  ``***``, a last line of defence: code keeps secrets and caller speech out of INFO events in the
  first place (STYLE.md §7).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import structlog

MIN_REDACTED_LEN = 8  # shorter "secrets" would blank out ordinary words

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(
    fmt: str = "auto",
    level: str = "INFO",
    *,
    stream: Any = None,
    secrets: Iterable[str] = (),
) -> None:
    """Configure structlog and stdlib logging for the whole process (idempotent)."""
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not _isatty(stream))
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=_isatty(stream))
    )
    tail: list[Any] = [_add_pid, Redactor(secrets)]
    if use_json:
        tail.insert(0, structlog.processors.format_exc_info)
    structlog.configure(
        # filter_by_level first: a disabled level (DEBUG in production) returns before the
        # chain formats a timestamp for a line stdlib would drop (1.7 % of a turn's CPU).
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # app.requestlog writes the one line per request; uvicorn's access lines would double it.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # httpx logs every request line (with URLs) at INFO: keep it for DEBUG only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


class Redactor:
    """A processor replacing configured secret values inside any string field by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_REDACTED_LEN}, key=len)[::-1]

    def __call__(self, _: Any, __: str, event_dict: Any) -> Any:
        if not self._secrets:
            return event_dict
        return {key: self._scrub(value) for key, value in event_dict.items()}

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value


def _add_pid(_: Any, __: str, event_dict: Any) -> Any:
    event_dict.setdefault("pid", os.getpid())
    return event_dict


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    structlog.get_logger("app").critical("uncaught_exception", exc_info=(kind, exc, tb))


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
