"""Upstream limits: keep our RunPod traffic under the endpoint's caps (runpod.md §1.8; issue #4).

RunPod limits each endpoint per operation (e.g. ``/runsync`` 400 concurrent and 2000 per 10 s,
``/run`` 200 and 1000, ``/status`` and ``/stream`` 400 and 2000) and answers 429 beyond them. A
burst of turns must not become a storm of 429s, so every request first takes a slot:

* a concurrency cap per op (a counter, not a queue: waiters poll cheaply and give up at their
  deadline), and
* a sliding 10-second window per op: never more than N requests in any 10 s, whatever RunPod's
  own limiter algorithm is.

``try_acquire`` never waits (the submit path uses it to fall back from a full ``/runsync`` to
``/run``); ``acquire`` waits while the deadline allows and raises ``BudgetExceeded`` otherwise.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping

from app.budget import Deadline
from app.errors import BudgetExceeded

WINDOW_S = 10.0


class _OpLimit:
    __slots__ = ("cap", "in_flight", "peak", "rate", "stamps")

    def __init__(self, cap: int, rate: int) -> None:
        self.cap = cap
        self.rate = rate
        self.in_flight = 0
        self.peak = 0
        self.stamps: collections.deque[float] = collections.deque()


class UpstreamLimits:
    def __init__(
        self,
        concurrency: Mapping[str, int],
        rate_per_10s: Mapping[str, int],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._ops = {
            op: _OpLimit(concurrency.get(op, 1 << 30), rate_per_10s.get(op, 1 << 30))
            for op in set(concurrency) | set(rate_per_10s)
        }
        self._changed = asyncio.Event()

    def _limit(self, op: str) -> _OpLimit | None:
        return self._ops.get(op)

    def _free_at(self, limit: _OpLimit) -> float:
        """0 when a request may start now, else seconds until the window has room."""
        now = self._clock()
        while limit.stamps and now - limit.stamps[0] >= WINDOW_S:
            limit.stamps.popleft()
        if len(limit.stamps) < limit.rate:
            return 0.0
        return WINDOW_S - (now - limit.stamps[0])

    def try_acquire(self, op: str) -> bool:
        limit = self._limit(op)
        if limit is None:
            return True
        if limit.in_flight >= limit.cap or self._free_at(limit) > 0:
            return False
        limit.in_flight += 1
        limit.peak = max(limit.peak, limit.in_flight)
        limit.stamps.append(self._clock())
        return True

    def release(self, op: str) -> None:
        limit = self._limit(op)
        if limit is not None:
            limit.in_flight -= 1
            self._changed.set()

    async def acquire(self, op: str, deadline: Deadline) -> None:
        while not self.try_acquire(op):
            limit = self._ops[op]
            wait = self._free_at(limit) if limit.in_flight < limit.cap else 0.05
            if deadline.remaining() <= max(wait, 0.001):
                raise BudgetExceeded(last_status=f"waiting for a {op} slot")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(wait or 0.05, 0.05))

    @contextlib.asynccontextmanager
    async def slot(self, op: str, deadline: Deadline) -> AsyncIterator[None]:
        await self.acquire(op, deadline)
        try:
            yield
        finally:
            self.release(op)

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {
            op: {"in_flight": lim.in_flight, "peak": lim.peak, "cap": lim.cap, "rate": lim.rate}
            for op, lim in sorted(self._ops.items())
        }
