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
    __slots__ = ("cap", "in_flight", "peak", "rate", "stamps", "waiters")

    def __init__(self, cap: int, rate: int) -> None:
        self.cap = cap
        self.rate = rate
        self.in_flight = 0
        self.peak = 0
        self.stamps: collections.deque[float] = collections.deque()
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()


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

    def _free_in(self, limit: _OpLimit) -> float:
        """0 when the rate window has room now, else seconds until it has."""
        now = self._clock()
        while limit.stamps and now - limit.stamps[0] >= WINDOW_S:
            limit.stamps.popleft()
        if len(limit.stamps) < limit.rate:
            return 0.0
        return WINDOW_S - (now - limit.stamps[0])

    def _can_start(self, limit: _OpLimit) -> bool:
        return limit.in_flight < limit.cap and self._free_in(limit) == 0

    def _start(self, limit: _OpLimit) -> None:
        limit.in_flight += 1
        limit.peak = max(limit.peak, limit.in_flight)
        limit.stamps.append(self._clock())

    def try_acquire(self, op: str) -> bool:
        """A slot now or never: False when the op is at its cap or has a queue of waiters."""
        limit = self._ops.get(op)
        if limit is None:
            return True
        if limit.waiters or not self._can_start(limit):
            return False
        self._start(limit)
        return True

    def release(self, op: str) -> None:
        limit = self._ops.get(op)
        if limit is not None:
            limit.in_flight -= 1
            self._hand_over(limit)

    def _hand_over(self, limit: _OpLimit) -> None:
        """Give free slots to the oldest waiters (FIFO), counting them as started."""
        while limit.waiters and self._can_start(limit):
            waiter = limit.waiters.popleft()
            if waiter.done():
                continue
            self._start(limit)
            waiter.set_result(None)

    async def acquire(self, op: str, deadline: Deadline) -> None:
        """Wait (FIFO) for a slot while the deadline allows; BudgetExceeded otherwise."""
        if self.try_acquire(op):
            return
        limit = self._ops[op]
        while True:
            if not any(not w.done() for w in limit.waiters) and self._can_start(limit):
                self._start(limit)
                return
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            limit.waiters.append(waiter)
            # Concurrency waits for a release; a full rate window frees on its own clock.
            free_in = self._free_in(limit) if limit.in_flight < limit.cap else None
            budget = deadline.remaining()
            try:
                async with asyncio.timeout(budget if free_in is None else min(free_in, budget)):
                    await waiter
                return
            except TimeoutError:
                if waiter.done() and not waiter.cancelled():
                    return  # granted in the same instant the timer fired: the slot is ours
                waiter.cancel()
                if deadline.expired:
                    raise BudgetExceeded(last_status=f"waiting for a {op} slot") from None
                self._hand_over(limit)  # the rate window moved on: wake whoever can go
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release(op)  # granted, but our caller gave up: pass it on
                waiter.cancel()
                raise

    @contextlib.asynccontextmanager
    async def slot(self, op: str, deadline: Deadline) -> AsyncIterator[None]:
        await self.acquire(op, deadline)
        try:
            yield
        finally:
            self.release(op)

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {
            op: {
                "in_flight": lim.in_flight,
                "peak": lim.peak,
                "cap": lim.cap,
                "rate": lim.rate,
                "waiting": sum(1 for w in lim.waiters if not w.done()),
            }
            for op, lim in sorted(self._ops.items())
        }
