"""RunPod wire rules as pure functions (runpod.md §1.2, §1.5, §1.7, §5): the job policy and
``wait`` derived from a budget, which failures are safe to retry, and tolerant parsing of the
numbers RunPod returns. Used by :mod:`app.runpod`; tested without HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx

WAIT_MIN_MS, WAIT_MAX_MS = 1000, 300_000


def job_policy(budget_ms: int) -> dict[str, int]:
    """Bound orphaned work on RunPod's side (runpod.md §1.7 limits: ttl ≥ 10 s, exec ≥ 5 s)."""
    return {"ttl": max(10_000, budget_ms + 30_000), "executionTimeout": max(5_000, budget_ms)}


def runsync_wait_ms(remaining_ms: int, margin_ms: int) -> int | None:
    """``wait`` for /runsync, or None when RunPod's 1 s minimum no longer fits the budget."""
    wait = remaining_ms - margin_ms
    if wait < WAIT_MIN_MS:
        return None
    return min(wait, WAIT_MAX_MS)


def never_sent(exc: BaseException) -> bool:
    """True only when the connection was never established, so no request byte left us
    (app/upstream.py raises these two for both of its clients)."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def ms_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def counts(raw: Any, keys: tuple[str, ...]) -> dict[str, int]:
    raw = raw if isinstance(raw, dict) else {}
    return {k: int(v) if isinstance(v := raw.get(k), int | float) else 0 for k in keys}


def error_text(error: Any) -> str | None:
    if error is None or isinstance(error, str):
        return error
    return json.dumps(error)
