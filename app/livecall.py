"""Late tool results, delivered through VAPI's Live Call Control (vapi.md §5, §7 item 6).

When a tool job finishes after its turn already answered with the fallback, and the webhook
carried ``call.monitor.controlUrl``, we POST ``{"type": "say", "content": <result>}`` to that URL
so the caller still hears the answer (``LATE_RESULT_DELIVERY=on``; off by default because it
speaks over whatever the assistant is doing). One short attempt; failures are logged, not retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import structlog

from app.runpod import JobResult
from app.upstream import Upstream
from gpu_worker.contract import normalize_output

log = structlog.get_logger(__name__)

DELIVERY_TIMEOUT_S = 3.0


def say_payload(text: str) -> dict[str, object]:
    return {"type": "say", "content": text, "endCallAfterSpoken": False}


class LateDelivery:
    def __init__(self, http: Upstream) -> None:
        self._http = http

    def for_call(self, control_url: str, tool_name: str) -> Callable[[JobResult], Awaitable[None]]:
        async def deliver(result: JobResult) -> None:
            text = normalize_output(result.output).text.strip()
            if not text:
                return
            try:
                response = await self._http.request(
                    "POST", control_url, json_body=say_payload(text), timeout_s=DELIVERY_TIMEOUT_S
                )
                log.info("late_result_delivered", tool=tool_name, code=response.status_code)
            except httpx.HTTPError as exc:
                log.warning("late_result_delivery_failed", tool=tool_name, error=type(exc).__name__)

        return deliver
